//! Helpers shared by the end-to-end tests: built guests, policy files, a shared sandbox.

#![allow(dead_code)]

pub mod postgres;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ringfence::catalog::{Catalog, DatasetVersion};
use ringfence::home::Home;
use ringfence::job::{self, JobRecord, JobRequest, ModuleSource};
use ringfence::policy::{OperatorCaps, Policy};
use ringfence::sandbox::Sandbox;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("runtime/ has a parent").to_path_buf()
}

/// Path of a guest built by `scripts/test` (`cargo build --profile guest --target wasm32-wasip1`).
pub fn guest(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let path = target.join("wasm32-wasip1/guest").join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run scripts/test, which builds the guests first", path.display());
    path
}

/// The small fixed person file the tests import: 2 000 rows, columns person_id, region, age,
/// sex, household_size, income, employment_status, education.
pub fn persons_csv() -> PathBuf {
    root().join("tests/fixtures/persons.csv")
}

/// The columns test policies grant: everything but person_id and household_size.
pub const GRANTED_COLUMNS: [&str; 6] = ["region", "age", "sex", "income", "employment_status", "education"];

/// A state directory whose catalog holds the fixture as dataset `persons` version 1.
pub fn home_with_persons(dir: &Path) -> (Home, Catalog, DatasetVersion) {
    let home = Home::open(&dir.join("home")).expect("home");
    let catalog = Catalog::open(home.root()).expect("catalog");
    let persons = catalog.import_csv("persons", &persons_csv(), None, &()).expect("import fixture");
    (home, catalog, persons)
}

/// Limits for test policies; each test overrides what it attacks.
#[derive(Debug, Clone, Copy)]
pub struct TestLimits {
    pub memory_mb: u64,
    pub cpu_seconds: u64,
    pub wall_seconds: u64,
    pub export_max_bytes: u64,
    pub export_max_files: u64,
    pub output_max_bytes: u64,
    pub max_concurrent_jobs_per_user: u32,
    pub max_jobs_per_day: u32,
    /// Extra lines for `[project]`, e.g. `runtimes = ["python"]`.
    pub project_extra: &'static str,
    /// Extra lines for the dataset grant, e.g. `filter = "age >= 18"`.
    pub grant_extra: &'static str,
    /// Extra `[[members]]` entries.
    pub extra_members: &'static str,
    /// Extra lines for `[limits]`, e.g. `retry_interrupted = true`.
    pub limits_extra: &'static str,
    /// Extra tables at the end, e.g. a `[disclosure]` table.
    pub extra_sections: &'static str,
}

impl Default for TestLimits {
    fn default() -> Self {
        TestLimits {
            memory_mb: 128,
            cpu_seconds: 30,
            wall_seconds: 60,
            export_max_bytes: 1 << 20,
            export_max_files: 10,
            output_max_bytes: 1 << 20,
            max_concurrent_jobs_per_user: 2,
            max_jobs_per_day: 20,
            project_extra: "",
            grant_extra: "",
            extra_members: "",
            limits_extra: "",
            extra_sections: "",
        }
    }
}

/// Writes a policy granting `persons` version 1 ([`GRANTED_COLUMNS`]) to researcher `alice`
/// (checker `carol`).
pub fn write_policy(dir: &Path, limits: TestLimits) -> PathBuf {
    let path = dir.join("policy.toml");
    let text = format!(
        r#"[project]
id = "test-project"
title = "Test project"
purpose = "End-to-end tests"
expires = 2099-01-01
{project_extra}

[[members]]
user = "alice"
roles = ["researcher"]

[[members]]
user = "carol"
roles = ["checker"]

{extra_members}
[[datasets]]
mount = "persons"
dataset = "persons"
version = 1
columns = {columns:?}
{grant_extra}

[limits]
memory_mb = {memory_mb}
cpu_seconds = {cpu_seconds}
wall_seconds = {wall_seconds}
export_max_bytes = {export_max_bytes}
export_max_files = {export_max_files}
output_max_bytes = {output_max_bytes}
max_concurrent_jobs_per_user = {max_jobs}
max_jobs_per_day = {per_day}
{limits_extra}

{extra_sections}
"#,
        columns = GRANTED_COLUMNS,
        project_extra = limits.project_extra,
        grant_extra = limits.grant_extra,
        extra_members = limits.extra_members,
        extra_sections = limits.extra_sections,
        limits_extra = limits.limits_extra,
        memory_mb = limits.memory_mb,
        cpu_seconds = limits.cpu_seconds,
        wall_seconds = limits.wall_seconds,
        export_max_bytes = limits.export_max_bytes,
        export_max_files = limits.export_max_files,
        output_max_bytes = limits.output_max_bytes,
        max_jobs = limits.max_concurrent_jobs_per_user,
        per_day = limits.max_jobs_per_day,
    );
    std::fs::write(&path, text).expect("write policy");
    path
}

/// The `ringfence` binary, on state directory `home`, ignoring any `RINGFENCE_HOME` around.
pub fn ringfence_command(home: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ringfence"));
    command.arg("--home").arg(home).env_remove("RINGFENCE_HOME");
    command
}

/// Today, as the library sees it in tests.
pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// One sandbox for the whole test binary, its module cache under `target/`, so each guest is
/// compiled once per engine configuration.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let cache = root().join("target/test-module-cache");
        Sandbox::new(&cache).expect("sandbox")
    })
}

/// A job run in a fresh state directory.
pub struct Ran {
    pub record: JobRecord,
    pub home: Home,
    pub dir: tempfile::TempDir,
}

impl Ran {
    /// The guest's captured stdout, as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.home.job_dir(&self.record.id).join("stdout")).expect("stdout"))
            .into_owned()
    }

    /// The guest's captured stderr, as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.home.job_dir(&self.record.id).join("stderr")).expect("stderr"))
            .into_owned()
    }

    /// The bytes of an export kept in the job record.
    pub fn export(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.home.job_dir(&self.record.id).join("exports").join(name)).expect("export")
    }
}

/// Runs `wasm` as `alice` under a test policy with `limits`.
pub fn run_wasm(wasm: &[u8], args: &[&str], limits: TestLimits) -> Ran {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, catalog, _) = home_with_persons(dir.path());
    let policy_path = write_policy(dir.path(), limits);
    let policy = Policy::load(&policy_path, &OperatorCaps::default(), &catalog, today()).expect("policy");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let request = JobRequest { policy: &policy, user: "alice", module: ModuleSource::Submitted(wasm), args: &args };
    let record = job::run(&home, &catalog, sandbox(), &request, today()).expect("job runs");
    Ran { record, home, dir }
}

/// Runs a built guest by name.
pub fn run_guest(name: &str, args: &[&str], limits: TestLimits) -> Ran {
    let wasm = std::fs::read(guest(name)).expect("read guest");
    run_wasm(&wasm, args, limits)
}

/// Runs a WAT guest.
pub fn run_wat(wat: &str, limits: TestLimits) -> Ran {
    let wasm = wat::parse_str(wat).expect("valid WAT");
    run_wasm(&wasm, &[], limits)
}

/// `user` acting through the library as an operator at the host would for them.
pub fn acting(user: &str) -> ringfence::tokens::Actor {
    ringfence::tokens::Actor::on_behalf_of(user, "operator:test")
}
