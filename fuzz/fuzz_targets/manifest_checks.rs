//! Any bytes as a job's manifest, its output file and its units block (split at the first two
//! NULs): parsed, and every entry run through every check, its numbers recomputed from the
//! units against real data, never a panic and never a report without an outcome.

#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringfence::disclosure::data::{Mount, MountedData};
use ringfence::disclosure::{self, NoIndex, Subject, Thresholds};
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
        let data = MountedData::new(vec![Mount {
            name: "persons".into(),
            columns,
            rows: version.rows,
            unit_space: "fuzz".into(),
            path: catalog.data_path(&version),
        }]);
        Fixture { _dir: dir, data }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (manifest, file, units) =
        (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let Ok(manifest) = serde_json::from_slice::<Manifest>(manifest) else { return };
    let fixture = fixture();
    for entry in &manifest.outputs {
        let subject = Subject {
            file: &entry.file,
            bytes: file,
            entry: Some(entry),
            manifest_problem: None,
            units: Some(Ok(units)),
            data: &fixture.data,
            index: &NoIndex,
        };
        let report = disclosure::check(&subject, &Thresholds::default()).report;
        assert!(!report.results.is_empty());
        assert!(report.results.iter().all(|r| r.findings.len() <= disclosure::MAX_FINDINGS + 1));
    }
});
