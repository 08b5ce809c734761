//! Analysis throughput: `income-by-region` and `crosstab` on 1 M and 10 M demo rows, each read
//! from the same catalog projection (Arrow IPC), as
//!
//! - `ringfence_wasm`: the guest in ringfence's sandbox (module already loaded; instantiate,
//!   WASI mounts, read `/data/persons/data.arrow`, aggregate, write the table and manifest);
//! - `native`: the same Rust program built natively (release), as a process reading the same
//!   file through `RINGFENCE_DATA_DIR`;
//! - `duckdb_memory` / `duckdb_file`: DuckDB 1 thread doing the same GROUP BY over the data as
//!   an in-memory Arrow table, and including opening the file (`benches/duckdb_groupby.py`,
//!   run as one Python process for the whole benchmark).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringfence::catalog::{Catalog, DemoPopulation};
use ringfence::sandbox::{DataMount, JobStatus, Sandbox};

/// The Python process running DuckDB.
struct DuckDb {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl DuckDb {
    fn start() -> DuckDb {
        let mut child = Command::new("python3")
            .arg(common::root().join("benches/duckdb_groupby.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with duckdb and pyarrow (scripts/bench installs them)");
        let input = child.stdin.take().expect("stdin");
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        DuckDb { child, input, output }
    }

    /// Runs `query` `repeats` times over `file`; returns the time DuckDB took.
    fn time(&mut self, file: &Path, query: &str, repeats: u64, mode: &str) -> Duration {
        writeln!(self.input, "{} {query} {repeats} {mode}", file.display()).expect("ask duckdb");
        let mut line = String::new();
        self.output.read_line(&mut line).expect("duckdb answers");
        Duration::from_secs_f64(line.trim().parse().unwrap_or_else(|_| panic!("duckdb said {line:?}")))
    }
}

impl Drop for DuckDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One of the example analyses and what it reads.
struct Analysis {
    name: &'static str,
    columns: [&'static str; 2],
    query: &'static str,
}

const ANALYSES: [Analysis; 2] = [
    Analysis { name: "income-by-region", columns: ["region", "income"], query: "income" },
    Analysis { name: "crosstab", columns: ["region", "employment_status"], query: "crosstab" },
];

fn analyses(c: &mut Criterion) {
    let home = tempfile::tempdir().expect("home");
    let catalog = Catalog::open(home.path()).expect("catalog");
    let sandbox = Sandbox::new(&home.path().join("module-cache")).expect("sandbox");
    let mut duckdb = DuckDb::start();
    for rows in [1_000_000u64, 10_000_000] {
        let name = format!("persons{}m", rows / 1_000_000);
        let persons = catalog.generate_demo(&name, DemoPopulation { rows, seed: 1 }, &()).expect("demo data");
        for analysis in &ANALYSES {
            let columns: Vec<String> = analysis.columns.iter().map(|c| c.to_string()).collect();
            let projection = catalog.project(&persons, &columns, None, false).expect("projection");
            let file = projection.dir.join("data.arrow");
            let wasm = common::guest(analysis.name);
            let module = sandbox.load_module(&wasm).expect("module");
            let native = common::root().join("target/release").join(analysis.name);
            assert!(native.exists(), "{} is missing (scripts/bench builds it)", native.display());
            let native_data = tempfile::tempdir().expect("native data dir");
            std::os::unix::fs::symlink(&projection.dir, native_data.path().join("persons")).expect("link data");

            let mut group = c.benchmark_group(format!("{}_{}m_rows", analysis.name, rows / 1_000_000));
            group.sample_size(10);
            group.throughput(Throughput::Elements(rows));
            group.bench_function("ringfence_wasm", |b| {
                b.iter(|| {
                    let export = tempfile::tempdir().expect("export dir");
                    let mounts = [DataMount { name: "persons".into(), host_dir: projection.dir.clone() }];
                    let outcome =
                        sandbox.run(&module, &common::limits(2 << 30), &mounts, &[], export.path()).expect("run");
                    assert_eq!(outcome.status, JobStatus::Succeeded);
                })
            });
            group.bench_function("native", |b| {
                b.iter(|| {
                    let export = tempfile::tempdir().expect("export dir");
                    let status = Command::new(&native)
                        .env("RINGFENCE_DATA_DIR", native_data.path())
                        .env("RINGFENCE_EXPORT_DIR", export.path())
                        .status()
                        .expect("native analysis");
                    assert!(status.success());
                })
            });
            group.bench_function("duckdb_memory", |b| {
                b.iter_custom(|n| duckdb.time(&file, analysis.query, n, "memory"))
            });
            group.bench_function("duckdb_file", |b| b.iter_custom(|n| duckdb.time(&file, analysis.query, n, "file")));
            group.finish();
        }
    }
}

criterion_group!(benches, analyses);
criterion_main!(benches);
