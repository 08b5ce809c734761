//! `kill -9` at any moment leaves the export queue and the audit log consistent: the real
//! binary is started, killed at varying points of a job or a decision, and the state directory
//! is reopened and checked.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::TestLimits;
use ringfence::audit;
use ringfence::job::{JobRequest, ModuleSource};
use ringfence::policy::{OperatorCaps, Policy};
use ringfence::queue::ExportQueue;
use ringfence::store::Store;

fn start(home: &Path, args: &[&str]) -> Child {
    common::ringfence_command(home)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ringfence")
}

fn finish(home: &Path, args: &[&str]) -> std::process::Output {
    let out = common::ringfence_command(home).args(args).output().expect("run ringfence");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A state directory with the fixture data and the test policy registered.
fn setup(limits: TestLimits) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, _, _) = common::home_with_persons(dir.path());
    let policy = common::write_policy(dir.path(), limits).display().to_string();
    let home = home.root().to_path_buf();
    finish(&home, &["policy", "register", &policy]);
    (dir, home, policy)
}

fn kill(mut child: Child) {
    child.kill().expect("kill -9");
    child.wait().expect("reap");
}

/// What every reopened state directory must satisfy.
fn assert_consistent(home: &Path) {
    // Opening the queue (any command) recovers from the killed process.
    finish(home, &["exports", "list"]);
    let store = Store::open(home).expect("store");
    let verification = audit::verify(&store).expect("verify");
    assert!(verification.is_intact(), "{verification:?}");
    let conn = store.conn();
    let count = |sql: &str| -> i64 { conn.query_row(sql, &[], |r| r.get(0)).expect(sql) };
    assert_eq!(count("SELECT COUNT(*) FROM jobs WHERE status = 'running'"), 0, "no job left running");
    assert_eq!(count("SELECT COUNT(*) FROM requests WHERE status = 'pending'"), 0, "every request checked");
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM requests r WHERE r.job NOT IN (SELECT id FROM jobs WHERE status NOT IN ('running', 'interrupted'))"
        ),
        0,
        "requests only from finished jobs"
    );
    let blobs: Vec<String> = conn.query("SELECT sha256 FROM requests", &[], |r| r.get(0)).expect("query");
    for sha in blobs {
        assert!(home.join("blobs").join(&sha).exists(), "every request's file is stored");
    }
    let leftovers: Vec<_> = std::fs::read_dir(home.join("work")).expect("work").collect();
    assert!(leftovers.is_empty(), "scratch left behind: {leftovers:?}");
    let partial = std::fs::read_dir(home.join("jobs"))
        .expect("jobs")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with('.'));
    assert!(!partial, "half-assembled job record left behind");
}

fn job_statuses(home: &Path) -> Vec<String> {
    let store = Store::open(home).expect("store");
    store.conn().query("SELECT status FROM jobs ORDER BY id", &[], |r| r.get(0)).expect("query")
}

/// Starts a job whose guest spins until killed and waits until it is recorded as running.
fn start_spinning(home: &Path, policy: &str) -> Child {
    let escape = common::guest("escape").display().to_string();
    let child = start(home, &["run", "--policy", policy, "--user", "alice", &escape, "--", "spin"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let running = || -> bool {
        let Ok(conn) = rusqlite::Connection::open(home.join("state.sqlite")) else { return false };
        conn.query_row("SELECT COUNT(*) FROM jobs WHERE status = 'running'", [], |r| r.get::<_, i64>(0))
            .is_ok_and(|n| n == 1)
    };
    while !running() {
        assert!(Instant::now() < deadline, "the job never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

#[test]
fn a_job_killed_while_its_guest_runs_is_marked_interrupted() {
    let (_dir, home, policy) = setup(TestLimits::default());
    kill(start_spinning(&home, &policy));
    assert_consistent(&home);
    assert_eq!(job_statuses(&home), ["interrupted"]);
    let store = Store::open(&home).expect("store");
    let actions: Vec<String> = audit::entries(&store, None).expect("entries").into_iter().map(|e| e.action).collect();
    assert!(actions.ends_with(&["job.submitted".to_string(), "job.interrupted".to_string()]), "{actions:?}");
}

#[test]
fn a_job_killed_at_any_point_leaves_the_queue_consistent() {
    let (_dir, home, policy) = setup(TestLimits::default());
    let crosstab = common::guest("crosstab").display().to_string();
    let args = ["run", "--policy", &policy, "--user", "alice", &crosstab, "--", "region"];
    // Warm the module cache, time one whole run, then kill runs at points spread over it.
    finish(&home, &args);
    let started = Instant::now();
    finish(&home, &args);
    let whole = started.elapsed();
    let points = 16;
    for i in 0..points {
        let child = start(&home, &args);
        std::thread::sleep(whole * i / points);
        kill(child);
        assert_consistent(&home);
    }
    let statuses = job_statuses(&home);
    assert!(statuses.iter().all(|s| s == "succeeded" || s == "interrupted"), "{statuses:?}");
}

#[test]
fn a_worker_killed_at_any_point_of_a_job_leaves_the_queue_consistent() {
    let (_dir, home, policy) = setup(TestLimits { max_jobs_per_day: 40, ..TestLimits::default() });
    let wasm = std::fs::read(common::guest("crosstab")).expect("guest");
    let queue_one = || {
        let mut queue = ExportQueue::open(&home).expect("queue");
        let policy = Policy::load(Path::new(&policy), &OperatorCaps::default(), queue.catalog(), common::today())
            .expect("policy");
        let args = ["region".to_string()];
        let request =
            JobRequest { policy: &policy, user: "alice", module: ModuleSource::Submitted(&wasm), args: &args };
        queue.enqueue(common::sandbox(), &request, common::today()).expect("queued");
    };
    let drain = ["worker", "--jobs", "1", "--until-idle"];
    // Warm the module cache, time one whole drain, then kill workers at points spread over it:
    // before the claim, in the guest, in ingest, in the checks.
    queue_one();
    finish(&home, &drain);
    queue_one();
    let started = Instant::now();
    finish(&home, &drain);
    let whole = started.elapsed();
    let points = 16;
    for i in 0..points {
        queue_one();
        let child = start(&home, &drain);
        std::thread::sleep(whole * i / points);
        kill(child);
        assert_consistent(&home);
    }
    finish(&home, &drain);
    assert_consistent(&home);
    let statuses = job_statuses(&home);
    assert_eq!(statuses.len(), 2 + points as usize);
    assert!(statuses.iter().all(|s| s == "succeeded" || s == "interrupted"), "{statuses:?}");
}

#[test]
fn a_decision_killed_at_any_point_is_all_or_nothing() {
    let (_dir, home, policy) = setup(TestLimits { export_max_files: 20, ..TestLimits::default() });
    let escape = common::guest("escape").display().to_string();
    let mut args = vec!["run", "--policy", &policy, "--user", "alice", &escape, "--", "export"];
    let names: Vec<String> = (0..12).map(|i| format!("note-{i}.txt")).collect();
    for name in &names {
        args.extend([name.as_str(), "free text"]);
    }
    finish(&home, &args);
    let started = Instant::now();
    finish(&home, &["exports", "approve", "1", "--on-behalf-of", "carol", "--reason", "reviewed"]);
    let whole = started.elapsed();
    for id in 2..=12u32 {
        let id_text = id.to_string();
        let child = start(&home, &["exports", "approve", &id_text, "--on-behalf-of", "carol", "--reason", "reviewed"]);
        std::thread::sleep(whole * (id - 2) / 10);
        kill(child);
    }
    assert_consistent(&home);
    let store = Store::open(&home).expect("store");
    let conn = store.conn();
    let rows: Vec<(i64, String, i64, i64)> = conn
        .query(
            "SELECT r.id, r.status, (SELECT COUNT(*) FROM decisions d WHERE d.request = r.id),
                    (SELECT COUNT(*) FROM audit a WHERE a.action = 'request.approved' AND a.subject = 'request:' || r.id)
             FROM requests r ORDER BY r.id",
            &[],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("query")
        .into_iter()
        .collect();
    assert_eq!(rows.len(), 12);
    for (id, status, decisions, entries) in rows {
        match status.as_str() {
            "approved" => assert_eq!((decisions, entries), (1, 1), "request {id}"),
            "checked" => assert_eq!((decisions, entries), (0, 0), "request {id}"),
            other => panic!("request {id} is {other}"),
        }
    }
}

#[test]
fn a_user_at_the_running_job_limit_is_refused_until_a_job_ends() {
    let (_dir, home, policy) = setup(TestLimits { max_concurrent_jobs_per_user: 1, ..TestLimits::default() });
    let spinning = start_spinning(&home, &policy);
    let crosstab = common::guest("crosstab").display().to_string();
    let second = common::ringfence_command(&home)
        .args(["run", "--policy", &policy, "--user", "alice", &crosstab])
        .output()
        .expect("run");
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("\"alice\" already has 1 running jobs; the policy allows at most 1"), "{stderr}");
    kill(spinning);
    finish(&home, &["run", "--policy", &policy, "--user", "alice", &crosstab]);
    assert_eq!(job_statuses(&home), ["interrupted", "succeeded"]);
}

/// Every version the catalog lists is whole: its file is there and hashes to what it says, and
/// it has the fixture's rows.
fn assert_catalog_whole(home: &Path, name: &str) -> usize {
    let catalog = ringfence::catalog::Catalog::open(home).expect("catalog");
    let versions = catalog.versions(name).unwrap_or_default();
    for version in &versions {
        let bytes = std::fs::read(catalog.data_path(version)).expect("a listed version has its file");
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), version.sha256, "{name} v{}", version.version);
        assert_eq!(version.rows, 2000);
    }
    let staging: Vec<_> = std::fs::read_dir(home.join("catalog"))
        .expect("catalog dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(staging.is_empty(), "staging left behind: {staging:?}");
    versions.len()
}

/// Every finished job's exported files are requests exactly once, and every released file is
/// byte-identical to its request's.
fn assert_exports_exactly_once(home: &Path) {
    let store = Store::open(home).expect("store");
    let conn = store.conn();
    let ids: Vec<String> = conn
        .query(
            "SELECT id FROM jobs WHERE status NOT IN ('running', 'interrupted', 'queued', 'refused', 'host_error')",
            &[],
            |r| r.get(0),
        )
        .expect("query");
    for id in ids {
        let record =
            ringfence::job::JobRecord::load(&ringfence::home::Home::open(home).expect("home"), &id).expect("record");
        let exported = record
            .exports
            .iter()
            .filter(|e| !ringfence_sdk::manifest::MANIFEST_FILES.contains(&e.name.as_str()))
            .count() as i64;
        let requests: i64 = conn
            .query_row("SELECT COUNT(*) FROM requests WHERE job = ?1", ringfence::params![id], |r| r.get(0))
            .expect("count");
        assert_eq!(requests, exported, "job {id}: every exported file is one request");
    }
}

/// Runs `args` `points` times, killing each run at a point spread over how long one whole run
/// takes, and checks the state directory after each kill with `check`.
fn kill_spread(home: &Path, args: &[&str], points: u32, check: impl Fn(&Path)) -> u32 {
    let started = Instant::now();
    finish(home, args);
    let whole = started.elapsed();
    for i in 0..points {
        let child = start(home, args);
        std::thread::sleep(whole * i / points);
        kill(child);
        check(home);
    }
    points
}

#[test]
fn kill_nine_at_two_hundred_points_loses_and_duplicates_nothing() {
    let (dir, home, policy) =
        setup(TestLimits { export_max_files: 60, max_jobs_per_day: 100, ..TestLimits::default() });
    std::fs::write(home.join("caps.toml"), "max_jobs_per_day = 100000\nmax_uploads_per_day = 100000\n").expect("caps");
    let policy_text =
        std::fs::read_to_string(&policy).expect("policy").replace("max_jobs_per_day = 100", "max_jobs_per_day = 10000");
    std::fs::write(&policy, policy_text).expect("policy");
    finish(&home, &["policy", "register", &policy]);
    let mut survived = 0;

    let fixture = common::persons_csv().display().to_string();
    survived += kill_spread(&home, &["dataset", "import", "--name", "extra", &fixture], 50, |home| {
        finish(home, &["dataset", "list"]);
        // Opening the queue (any export or audit command) sweeps what a killed import left.
        finish(home, &["audit", "verify"]);
        assert_catalog_whole(home, "extra");
    });
    let imported = assert_catalog_whole(&home, "extra");
    assert!(imported > 1 && imported < 51, "kills landed before and after the import's end: {imported} versions");

    let crosstab = common::guest("crosstab").display().to_string();
    let job = ["run", "--policy", &policy, "--user", "alice", &crosstab, "--", "region", "sex"];
    finish(&home, &job);
    survived += kill_spread(&home, &job, 70, |home| {
        assert_consistent(home);
        assert_exports_exactly_once(home);
    });

    let statuses = job_statuses(&home);
    let ended = |status: &str| statuses.iter().filter(|s| *s == status).count();
    assert!(ended("interrupted") > 0 && ended("succeeded") > 2, "kills landed during and after runs: {statuses:?}");
    let escape = common::guest("escape").display().to_string();
    finish(&home, &["run", "--policy", &policy, "--user", "alice", &escape, "--", "export-files", "45"]);
    let requests: Vec<i64> = {
        let store = Store::open(&home).expect("store");
        store
            .conn()
            .query("SELECT id FROM requests WHERE status = 'checked' ORDER BY id", &[], |r| r.get(0))
            .expect("q")
    };
    assert!(requests.len() >= 41, "{} requests to decide and release", requests.len());
    let approve = |id: i64| {
        vec!["exports".to_string(), "approve".into(), id.to_string(), "--on-behalf-of".into(), "carol".into()]
    };
    let decided = requests[0];
    survived += kill_each_once(&home, decided, &requests[1..41], approve, |_| {});
    for id in &requests[1..41] {
        let args = approve(*id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = common::ringfence_command(&home).args(&args).output().expect("approve");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("is approved") || text.contains("is approved; it cannot become approved"), "{text}");
    }

    let store_bytes = |id: i64| -> Vec<u8> {
        let queue = ringfence::queue::ExportQueue::connect(&home).expect("queue");
        queue.content(&queue.get(id).expect("request")).expect("content")
    };
    let release = |id: i64, to: &Path| {
        vec![
            "exports".to_string(),
            "release".into(),
            id.to_string(),
            "--to".into(),
            to.display().to_string(),
            "--on-behalf-of".into(),
            "alice".into(),
        ]
    };
    let out = |id: i64| dir.path().join(format!("out-{id}"));
    let released_whole = |id: i64| {
        let written: Vec<_> =
            std::fs::read_dir(out(id)).map(|d| d.filter_map(Result::ok).collect()).unwrap_or_default();
        for entry in written {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp") {
                continue;
            }
            assert_eq!(std::fs::read(entry.path()).expect("released"), store_bytes(id), "a released file is whole");
        }
    };
    survived += kill_each_once(&home, decided, &requests[1..41], |id| release(id, &out(id)), released_whole);
    assert!(survived >= 200, "{survived} kill points");
}

/// Runs `command(timed)` to its end to time it, then `command(id)` for each of `ids`, killed
/// after the i-th of `ids.len()` parts of that time, each followed by [`assert_consistent`] and
/// `check(id)`. Returns the number of kill points.
fn kill_each_once(
    home: &Path,
    timed: i64,
    ids: &[i64],
    command: impl Fn(i64) -> Vec<String>,
    check: impl Fn(i64),
) -> u32 {
    let timing = command(timed);
    let started = Instant::now();
    finish(home, &timing.iter().map(String::as_str).collect::<Vec<_>>());
    let whole = started.elapsed();
    let parts = u32::try_from(ids.len()).expect("few ids");
    for (i, &id) in (0u32..).zip(ids) {
        let args = command(id);
        let child = start(home, &args.iter().map(String::as_str).collect::<Vec<_>>());
        std::thread::sleep(whole * i / parts);
        kill(child);
        assert_consistent(home);
        check(id);
    }
    parts
}

/// `ringfence ARGS` as if the disk filled after `bytes` more of any one file: the file-size
/// limit makes every write past it fail with `EFBIG` (its signal ignored, as a full disk gives
/// `ENOSPC` without one).
fn on_a_full_disk(home: &Path, args: &[&str], bytes: u64) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut command = common::ringfence_command(home);
    command.args(args);
    // SAFETY: between fork and exec only async-signal-safe calls (signal, setrlimit) are made.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.output().expect("run ringfence")
}

#[test]
fn a_full_disk_is_a_clear_error_and_corrupts_nothing() {
    let (_dir, home, policy) = setup(TestLimits::default());
    let fixture = common::persons_csv().display().to_string();
    let import = on_a_full_disk(&home, &["dataset", "import", "--name", "extra", &fixture], 16 << 10);
    let stderr = String::from_utf8_lossy(&import.stderr);
    assert!(!import.status.success(), "the import cannot have succeeded");
    assert!(stderr.starts_with("error: ") && stderr.contains("File too large"), "a clear error: {stderr}");
    assert_eq!(assert_catalog_whole(&home, "extra"), 0, "no half version");

    let state = std::fs::metadata(home.join("state.sqlite")).expect("state").len();
    let crosstab = common::guest("crosstab").display().to_string();
    let run = on_a_full_disk(&home, &["run", "--policy", &policy, "--user", "alice", &crosstab], state);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "the job cannot be recorded on a full disk");
    assert!(
        stderr.lines().any(|l| l.starts_with("error: ") && l.contains("File too large")),
        "a clear error: {stderr}"
    );
    assert_consistent(&home);
    assert_exports_exactly_once(&home);
    finish(&home, &["run", "--policy", &policy, "--user", "alice", &crosstab]);
    assert_consistent(&home);
}

/// `ringfence ARGS` by a user who may read the state directory but not write it: as root, the
/// unprivileged `nobody` (permission bits bind root only through its capabilities), else the
/// caller itself.
fn without_write_access(home: &Path, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut command = common::ringfence_command(home);
    command.args(args);
    // SAFETY: getuid has no preconditions. (Dropping to another uid as root, std also drops the
    // supplementary groups.)
    if unsafe { libc::getuid() } == 0 {
        command.uid(65534).gid(65534);
    }
    command.output().expect("run ringfence")
}

/// Sets the mode bits of `path` and everything under it: read and traverse for everyone, write
/// for the owner only when `writable`.
fn set_writable(path: &Path, writable: bool) {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::symlink_metadata(path).expect("metadata");
    if metadata.is_symlink() {
        return;
    }
    let mode = match (metadata.is_dir(), writable) {
        (true, true) => 0o755,
        (true, false) => 0o555,
        (false, true) => 0o644,
        (false, false) => 0o444,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            set_writable(&entry.expect("entry").path(), writable);
        }
    }
}

#[test]
fn a_read_only_state_directory_is_a_clear_error_and_corrupts_nothing() {
    let (dir, home, policy) = setup(TestLimits::default());
    let crosstab = common::guest("crosstab").display().to_string();
    finish(&home, &["run", "--policy", &policy, "--user", "alice", &crosstab]);
    let fixture = common::persons_csv().display().to_string();
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    set_writable(dir.path(), false);
    let attempts: [&[&str]; 5] = [
        &["run", "--policy", &policy, "--user", "alice", &crosstab],
        &["dataset", "import", "--name", "extra", &fixture],
        &["exports", "approve", "1", "--on-behalf-of", "carol", "--reason", "reviewed"],
        &["exports", "list"],
        &["serve", "--listen", "127.0.0.1:0", "--countries", &countries],
    ];
    for args in attempts {
        let out = without_write_access(&home, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} cannot succeed on a read-only state directory");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ")
                && first.contains(&home.display().to_string())
                && (first.contains("read-only") || first.contains("readonly") || first.contains("Permission denied")),
            "{args:?}: a clear error naming the state directory: {stderr}"
        );
        let parts: Vec<&str> = first.split(": ").collect();
        let said: BTreeSet<&str> = parts.iter().copied().collect();
        assert_eq!(said.len(), parts.len(), "each cause said once: {stderr}");
    }
    let listing = without_write_access(&home, &["dataset", "list"]);
    assert!(listing.status.success(), "reading the catalog needs no write access");
    set_writable(dir.path(), true);
    assert_consistent(&home);
    assert_exports_exactly_once(&home);
    assert_eq!(job_statuses(&home), ["succeeded"]);
    finish(&home, &["exports", "approve", "1", "--on-behalf-of", "carol", "--reason", "reviewed"]);
}
