//! Disclosure checks with every number recomputed from the units, on 10 M rows of real Arrow
//! data, each against its reference:
//!
//! - `disclosure_1m_cells`: all checks on a 1 M-cell frequency table (1 000 × 1 000
//!   categories, 10 rows a cell) — recomputation from the units, the key check, the full cross
//!   product, exact differencing and the rules — against the least any host must do with such
//!   an output: parse its manifest. Reported as cells per second and as a ratio.
//! - `recompute_10m_rows`: the checks on a magnitude table of income by region over 10 M rows,
//!   against the job itself: the `income-by-region` guest building that table in ringfence's
//!   sandbox (module loaded; instantiate, read the mount, tally, export), and the same analysis
//!   built natively (faster than the job, so that ratio is the conservative one).

mod common;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, DictionaryArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::Int32Type;
use arrow::ipc::writer::FileWriter;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringfence::disclosure::data::{Mount, MountedData};
use ringfence::disclosure::{self, NoIndex, Subject, Thresholds};
use ringfence::policy::Limits;
use ringfence::sandbox::{DataMount, JobStatus, Sandbox};
use ringfence_sdk::manifest::{Manifest, OutputEntry, UnitsRef};
use ringfence_sdk::table::{FrequencyTable, MagnitudeTable, Table};
use ringfence_sdk::units::write_block;

const SIDE: i32 = 1000;
const ROWS: usize = 10_000_000;
const BATCH: usize = 65_536;

/// A dictionary column of `n` rows whose row `i` has category `labels[of(i)]`.
fn category(labels: &StringArray, n: usize, start: usize, of: impl Fn(usize) -> i32) -> ArrayRef {
    let keys = Int32Array::from_iter_values((start..start + n).map(of));
    Arc::new(DictionaryArray::<Int32Type>::try_new(keys, Arc::new(labels.clone())).expect("dictionary"))
}

/// Writes `<dir>/persons/data.arrow`, 10 M rows of the columns `columns` makes for the rows
/// from `start` on, and the mount the checks read it as.
fn write_data(dir: &Path, columns: impl Fn(usize, usize) -> Vec<(&'static str, ArrayRef)>) -> Mount {
    let mount = dir.join("persons");
    std::fs::create_dir_all(&mount).expect("mount dir");
    let path = mount.join("data.arrow");
    let mut writer = None;
    for start in (0..ROWS).step_by(BATCH) {
        let batch = RecordBatch::try_from_iter(columns(start, BATCH.min(ROWS - start))).expect("batch");
        let writer = writer.get_or_insert_with(|| {
            FileWriter::try_new(std::fs::File::create(&path).expect("create"), &batch.schema()).expect("writer")
        });
        writer.write(&batch).expect("write");
    }
    let mut writer = writer.expect("rows");
    let columns = writer.schema().fields().iter().map(|f| f.name().clone()).collect();
    writer.finish().expect("finish");
    Mount { name: "persons".into(), columns, rows: ROWS as u64, unit_space: "bench".into(), path }
}

/// `row` and `col`, 1 000 categories each, every combination 10 times.
fn crosstab_columns() -> impl Fn(usize, usize) -> Vec<(&'static str, ArrayRef)> {
    let sides = StringArray::from_iter_values((0..SIDE).map(|i| format!("{i:04}")));
    move |start, n| {
        let cell = |i: usize| (i % (SIDE as usize * SIDE as usize)) as i32;
        vec![
            ("row", category(&sides, n, start, |i| cell(i) / SIDE)),
            ("col", category(&sides, n, start, |i| cell(i) % SIDE)),
        ]
    }
}

/// `region` (12 categories) and `income`, as the `income-by-region` guest reads them.
fn income_columns() -> impl Fn(usize, usize) -> Vec<(&'static str, ArrayRef)> {
    let regions = StringArray::from_iter_values((0..12).map(|i| format!("region{i:02}")));
    move |start, n| {
        let incomes = Int64Array::from_iter_values((start..start + n).map(|i| (i * 7919 % 100_000) as i64));
        vec![("region", category(&regions, n, start, |i| (i * 7 % 12) as i32)), ("income", Arc::new(incomes))]
    }
}

/// Builds `table` from the dataset under `dir` as an analysis would, natively.
fn tabulate<T: Table>(dir: &Path, mut table: T, add: impl Fn(&mut T, &RecordBatch)) -> T {
    // SAFETY: the benchmark reads the environment on this thread only.
    unsafe { std::env::set_var(ringfence_sdk::data::DATA_DIR_ENV, dir) };
    for batch in ringfence_sdk::data::dataset("persons").expect("dataset") {
        add(&mut table, &batch.expect("batch"));
    }
    table
}

/// The manifest entry, CSV and units block the SDK writes for `table`.
fn exported(table: &impl Table) -> (OutputEntry, String, Vec<u8>) {
    let units = table.units().expect("units");
    let block = write_block(&units.cells);
    let entry = OutputEntry {
        file: "table.csv".into(),
        kind: table.kind(),
        description: "benchmark".into(),
        variables: table.variables(),
        value: table.value(),
        cells: table.cells(),
        regression: None,
        units: Some(UnitsRef { mount: "persons".into(), offset: 0, length: block.len() as u64 }),
    };
    (entry, table.to_csv(), block)
}

fn check(entry: &OutputEntry, csv: &str, block: &[u8], data: &MountedData) -> disclosure::Report {
    let subject = Subject {
        file: "table.csv",
        bytes: csv.as_bytes(),
        entry: Some(entry),
        manifest_problem: None,
        units: Some(Ok(block)),
        data,
        index: &NoIndex,
    };
    disclosure::check(&subject, &Thresholds::default()).report
}

fn checks(c: &mut Criterion) {
    let crosstab_dir = tempfile::tempdir().expect("tempdir");
    let data = MountedData::new(vec![write_data(crosstab_dir.path(), crosstab_columns())]);
    let add_frequency = |t: &mut FrequencyTable, b: &RecordBatch| t.add(b).expect("add");
    let crosstab = tabulate(crosstab_dir.path(), FrequencyTable::new(&["row", "col"]).expect("table"), add_frequency);
    let (entry, csv, block) = exported(&crosstab);
    let report = check(&entry, &csv, &block, &data);
    assert_eq!(entry.cells.len(), (SIDE * SIDE) as usize);
    assert!(report.results.iter().all(|r| r.check != "recount" || r.outcome == disclosure::Outcome::Pass));
    let manifest = serde_json::to_vec(&Manifest { version: 2, outputs: vec![entry.clone()] }).expect("manifest");
    let mut group = c.benchmark_group("disclosure_1m_cells");
    group.sample_size(10);
    group.throughput(Throughput::Elements((SIDE * SIDE) as u64));
    group.bench_function("ringfence_checks", |b| b.iter(|| black_box(check(&entry, &csv, &block, &data))));
    group.bench_function("reference_parse_manifest", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Manifest>(&manifest).expect("parse")))
    });
    group.finish();

    let income_dir = tempfile::tempdir().expect("tempdir");
    let data = MountedData::new(vec![write_data(income_dir.path(), income_columns())]);
    let add_magnitude = |t: &mut MagnitudeTable, b: &RecordBatch| t.add(b).expect("add");
    let by_region =
        || tabulate(income_dir.path(), MagnitudeTable::new(&["region"], "income").expect("table"), add_magnitude);
    let (entry, csv, block) = exported(&by_region());
    let report = check(&entry, &csv, &block, &data);
    assert!(report.results.iter().all(|r| r.check != "recount" || r.outcome == disclosure::Outcome::Pass));
    let home = tempfile::tempdir().expect("home");
    let sandbox = Sandbox::new(&home.path().join("module-cache")).expect("sandbox");
    let module = sandbox.load_module(&common::guest("income-by-region")).expect("module");
    let mounts = [DataMount { name: "persons".into(), host_dir: income_dir.path().join("persons") }];
    // The units of 10 M rows take about 15 MB.
    let limits = Limits { export_max_bytes: 64 << 20, ..common::limits(2 << 30) };
    let mut group = c.benchmark_group("recompute_10m_rows");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("ringfence_checks", |b| b.iter(|| black_box(check(&entry, &csv, &block, &data))));
    group.bench_function("reference_job_in_sandbox", |b| {
        b.iter(|| {
            let export = tempfile::tempdir().expect("export dir");
            let outcome = sandbox.run(&module, &limits, &mounts, &[], export.path()).expect("run");
            assert_eq!(outcome.status, JobStatus::Succeeded);
        })
    });
    group.bench_function("reference_analysis_native", |b| b.iter(|| black_box(by_region().units())));
    group.finish();
}

criterion_group!(benches, checks);
criterion_main!(benches);
