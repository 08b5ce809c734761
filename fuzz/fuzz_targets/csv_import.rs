//! Any bytes as a CSV (or, when they start with Parquet's magic, a Parquet file) to import:
//! a new version that reads back whole, or a refusal that leaves nothing behind.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence::catalog::Catalog;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(dir.path()).expect("catalog");
    let parquet = data.starts_with(b"PAR1");
    let source = dir.path().join(if parquet { "in.parquet" } else { "in.csv" });
    std::fs::write(&source, data).expect("write");
    let imported = if parquet {
        catalog.import_parquet("fuzzed", &source, &())
    } else {
        catalog.import_csv("fuzzed", &source, None, &())
    };
    match imported {
        Ok(version) => {
            let stored = std::fs::metadata(catalog.data_path(&version)).expect("stored file");
            assert_eq!(stored.len(), version.bytes);
        }
        Err(_) => assert!(catalog.versions("fuzzed").unwrap_or_default().is_empty(), "a refused import left a version"),
    }
});
