//! Any bytes as a job's manifest and its output file (split at the first NUL): parsed, and
//! every entry run through every check against real data, never a panic and never a report
//! without an outcome.

#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringfence::disclosure::recount::MountedData;
use ringfence::disclosure::{self, Subject, Thresholds};
use ringfence_sdk::manifest::Manifest;

struct Fixture {
    _dir: tempfile::TempDir,
    data: MountedData,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (catalog, version) = common::catalog_with_persons(
            dir.path(),
            "region,sex,income\nUtrecht,f,41000\nUtrecht,m,52000\nZeeland,f,38000\n",
        );
        let columns = version.columns.iter().map(|c| c.name.clone()).collect();
        let data = MountedData::new(vec![(columns, catalog.data_path(&version))]);
        Fixture { _dir: dir, data }
    })
}

fuzz_target!(|data: &[u8]| {
    let (manifest, file) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(manifest) = serde_json::from_slice::<Manifest>(manifest) else { return };
    let fixture = fixture();
    for entry in &manifest.outputs {
        let subject = Subject {
            file: &entry.file,
            bytes: file,
            entry: Some(entry),
            manifest_problem: None,
            recount: &fixture.data,
            released: &[],
        };
        let report = disclosure::check(&subject, &Thresholds::default());
        assert!(!report.results.is_empty());
        assert!(report.results.iter().all(|r| r.findings.len() <= disclosure::MAX_FINDINGS + 1));
    }
});
