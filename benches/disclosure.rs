//! Disclosure checks on a 1 M-cell frequency table (1 000 × 1 000 categories), against the
//! least any host must do with such an output: parse its manifest. Reported as cells per
//! second and as a ratio to that reference.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringfence::disclosure::recount::{Counts, Recount};
use ringfence::disclosure::{self, Subject, Thresholds};
use ringfence_sdk::manifest::{Cell, Manifest, OutputEntry, OutputKind};

const SIDE: u64 = 1000;

/// A recount that agrees with the table (the data scan itself is not part of this benchmark).
struct Truthful(Counts);

impl Recount for Truthful {
    fn counts(&self, _: &[String], _: Option<&str>) -> Result<Counts, String> {
        Ok(self.0.clone())
    }
}

/// A table with mostly large cells and one small cell in every 50.
fn table() -> OutputEntry {
    let cells = (0..SIDE * SIDE)
        .map(|i| {
            let count = if i % 50 == 0 { 3 } else { 10 + i % 90 };
            Cell { key: vec![format!("r{}", i / SIDE), format!("c{}", i % SIDE)], count, ..Cell::default() }
        })
        .collect();
    OutputEntry {
        file: "big.csv".into(),
        kind: OutputKind::Frequency,
        description: "benchmark".into(),
        variables: vec!["row".into(), "col".into()],
        value: None,
        cells,
        regression: None,
    }
}

fn csv(entry: &OutputEntry) -> String {
    let mut csv = String::from("row,col,count\n");
    for cell in &entry.cells {
        csv.push_str(&format!("{},{},{}\n", cell.key[0], cell.key[1], cell.count));
    }
    csv
}

fn checks(c: &mut Criterion) {
    let entry = table();
    let csv = csv(&entry);
    let manifest = serde_json::to_vec(&Manifest { version: 1, outputs: vec![entry.clone()] }).expect("manifest");
    let recount = Truthful(entry.cells.iter().map(|c| (c.key.clone(), c.count)).collect());
    let mut group = c.benchmark_group("disclosure_1m_cells");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SIDE * SIDE));
    group.bench_function("ringfence_checks", |b| {
        b.iter(|| {
            let subject = Subject {
                file: "big.csv",
                bytes: csv.as_bytes(),
                entry: Some(&entry),
                manifest_problem: None,
                recount: &recount,
                released: &[],
            };
            black_box(disclosure::check(&subject, &Thresholds::default()))
        })
    });
    group.bench_function("reference_parse_manifest", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Manifest>(&manifest).expect("parse")))
    });
    group.finish();
}

criterion_group!(benches, checks);
criterion_main!(benches);
