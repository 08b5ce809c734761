//! `kill -9` at any moment leaves the export queue and the audit log consistent: the real
//! binary is started, killed at varying points of a job or a decision, and the state directory
//! is reopened and checked.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::TestLimits;
use ringfence::audit;
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
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    assert_eq!(count("SELECT COUNT(*) FROM jobs WHERE status = 'running'"), 0, "no job left running");
    assert_eq!(count("SELECT COUNT(*) FROM requests WHERE status = 'pending'"), 0, "every request checked");
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM requests r WHERE r.job NOT IN (SELECT id FROM jobs WHERE status NOT IN ('running', 'interrupted'))"
        ),
        0,
        "requests only from finished jobs"
    );
    let mut statement = conn.prepare("SELECT sha256 FROM requests").expect("query");
    let blobs: Vec<String> = statement.query_map([], |r| r.get(0)).expect("rows").map(Result::unwrap).collect();
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
    let mut statement = store.conn().prepare("SELECT status FROM jobs ORDER BY id").expect("query");
    statement.query_map([], |r| r.get(0)).expect("rows").map(Result::unwrap).collect()
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
    let mut statement = conn
        .prepare(
            "SELECT r.id, r.status, (SELECT COUNT(*) FROM decisions d WHERE d.request = r.id),
                    (SELECT COUNT(*) FROM audit a WHERE a.action = 'request.approved' AND a.subject = 'request:' || r.id)
             FROM requests r ORDER BY r.id",
        )
        .expect("query");
    let rows: Vec<(i64, String, i64, i64)> = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows")
        .map(Result::unwrap)
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
