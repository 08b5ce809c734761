//! Any bytes as a policy file: validated into a policy or refused with an error naming the
//! file, never a panic.

#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringfence::catalog::Catalog;
use ringfence::policy::{OperatorCaps, Policy};

struct Fixture {
    dir: tempfile::TempDir,
    catalog: Catalog,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (catalog, _) =
            common::catalog_with_persons(dir.path(), "region,age,income\nUtrecht,34,41000\nZeeland,51,38000\n");
        Fixture { dir, catalog }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let path = fixture.dir.path().join("policy.toml");
    std::fs::write(&path, data).expect("write");
    if let Err(err) = Policy::load(&path, &OperatorCaps::default(), &fixture.catalog, chrono::Utc::now().date_naive()) {
        assert!(err.to_string().contains("policy.toml"), "{err}");
    }
});
