//! The store suite: what the export queue, the tokens and the audit log rely on the state
//! database for, run once on the embedded SQLite file and once on a real PostgreSQL server
//! (started for each test in a temporary directory, and stopped after it). Then what only
//! PostgreSQL has: a database shared by one state directory only, and connections lost.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Barrier;

use chrono::{Duration, Utc};
use common::TestLimits;
use common::postgres::{Backend, Server};
use ringfence::audit::{self, Action, Event};
use ringfence::job::{JobRequest, ModuleSource};
use ringfence::policy::{OperatorCaps, Policy, Registry};
use ringfence::queue::{ExportQueue, Status, Verdict};
use ringfence::store::{Database, Store, StoreError};
use ringfence::tokens::{self, AuthError, Revoke};

/// A fresh state directory on `backend` in `dir`, holding the fixture dataset and a registered
/// project whose researchers alice and bob may each run one job at a time.
fn project(backend: &Backend, dir: &Path) -> (PathBuf, Policy) {
    backend.attach(&dir.join("home"));
    let (home, catalog, _) = common::home_with_persons(dir);
    let limits = TestLimits {
        max_concurrent_jobs_per_user: 1,
        extra_members: "[[members]]\nuser = \"bob\"\nroles = [\"researcher\"]\n",
        ..TestLimits::default()
    };
    let path = common::write_policy(dir, limits);
    let policy = Policy::load(&path, &OperatorCaps::default(), &catalog, common::today()).expect("policy");
    Registry::open(home.root()).expect("registry").register(&policy).expect("register");
    (home.root().to_path_buf(), policy)
}

fn verify(home: &Path) {
    let verification = audit::verify(&Store::open(home).expect("store")).expect("verify");
    assert!(verification.is_intact(), "{verification:?}");
}

/// A job runs, its output is checked, approved and released, and the state is the same when
/// the database is opened again.
fn a_job_is_run_checked_approved_and_released(backend: &Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, policy) = project(backend, dir.path());
    let mut queue = ExportQueue::open(&home).expect("queue");
    let wasm = std::fs::read(common::guest("crosstab")).expect("guest");
    let args = vec!["region".to_string()];
    let request = JobRequest { policy: &policy, user: "alice", module: ModuleSource::Submitted(&wasm), args: &args };
    let run = queue.run_job(common::sandbox(), &request, common::today()).expect("job runs");
    assert!(run.record.status.is_success(), "{}", run.record.status);
    assert_eq!(run.requests.len(), 1);
    let id = run.requests[0].id;
    assert_eq!(run.requests[0].status, Status::Checked);
    let approved = queue.decide(id, &common::acting("carol"), Verdict::Approve, None).expect("approve");
    assert_eq!(approved.status, Status::Approved);
    assert_eq!(approved.decisions.len(), 1);
    let (released, bytes) = queue.release_bytes(id, &common::acting("alice"), "test").expect("release");
    assert_eq!(bytes, queue.content(&released).expect("content"), "the file released is the file checked");
    drop(queue);

    let queue = ExportQueue::open(&home).expect("open again");
    let again = queue.get(id).expect("request");
    assert_eq!((again.status, again.decisions.len(), again.sha256), (Status::Released, 1, released.sha256));
    let job = queue.job(&run.record.id).expect("job").expect("row");
    assert_eq!((job.user.as_str(), job.status.as_str()), ("alice", "succeeded"));
    verify(&home);
}

/// Four claimers race for six queued jobs of two users allowed one running job each: each job
/// is claimed once, no user ever has two running, and the jobs whose claimers went away without
/// running them (their locks released) end as `interrupted`.
fn claims_are_exclusive_and_per_user_limits_hold_across_claimers(backend: &Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, policy) = project(backend, dir.path());
    let mut queue = ExportQueue::open(&home).expect("queue");
    let wasm = std::fs::read(common::guest("crosstab")).expect("guest");
    for user in ["alice", "bob", "alice", "bob", "alice", "bob"] {
        let request = JobRequest { policy: &policy, user, module: ModuleSource::Submitted(&wasm), args: &[] };
        queue.enqueue(common::sandbox(), &request, common::today()).expect("queued");
    }
    let barrier = Barrier::new(4);
    let claimed: Vec<Vec<String>> = std::thread::scope(|scope| {
        let claimers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut queue = ExportQueue::connect(&home).expect("connect");
                    barrier.wait();
                    let mut locks = Vec::new();
                    while let Some(lock) = queue.start_next().expect("claim") {
                        locks.push(lock);
                    }
                    // Held until every claimer has tried: a job ends only when its lock goes.
                    barrier.wait();
                    locks.iter().map(|l| l.id().to_string()).collect::<Vec<_>>()
                })
            })
            .collect();
        claimers.into_iter().map(|c| c.join().expect("claimer")).collect()
    });
    let mut all: Vec<&String> = claimed.iter().flatten().collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(all.len(), before, "no job claimed twice: {claimed:?}");
    assert_eq!(all.len(), 2, "one job per user, whoever claimed it: {claimed:?}");
    let mut per_user = BTreeMap::new();
    for id in &all {
        *per_user.entry(queue.job(id).expect("job").expect("row").user).or_insert(0) += 1;
    }
    assert_eq!(per_user, BTreeMap::from([("alice".to_string(), 1), ("bob".to_string(), 1)]));

    let recovered = queue.recover_jobs().expect("recover");
    let mut interrupted = recovered.interrupted.clone();
    interrupted.sort();
    assert_eq!(interrupted.iter().collect::<Vec<_>>(), all, "the released locks' jobs end");
    assert!(queue.start_next().expect("claim").is_some(), "and free their users' slots");
    verify(&home);
}

/// Eight writers on connections of their own append 200 entries: one chain, in order, intact.
fn the_audit_chain_is_one_chain_with_concurrent_writers(backend: &Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, _) = project(backend, dir.path());
    let before = audit::entries(&Store::open(&home).expect("store"), None).expect("entries").len();
    std::thread::scope(|scope| {
        for writer in 0..8 {
            let home = &home;
            scope.spawn(move || {
                let store = Store::open(home).expect("store");
                for i in 0..25 {
                    let event = Event {
                        actor: "test",
                        action: Action::PolicyRegistered,
                        project: Some("p"),
                        subject: Some(format!("writer:{writer}")),
                        detail: serde_json::json!({ "i": i }),
                    };
                    audit::record(&store, event).expect("append");
                }
            });
        }
    });
    let store = Store::open(&home).expect("store");
    let entries = audit::entries(&store, None).expect("entries");
    assert_eq!(entries.len(), before + 200);
    assert!(entries.iter().enumerate().all(|(i, e)| e.seq == i as i64 + 1), "sequence numbers without gaps");
    assert!(entries.windows(2).all(|w| w[1].prev == w[0].hash), "each entry chained to the one before");
    let verification = audit::verify(&store).expect("verify");
    assert!(verification.is_intact(), "{verification:?}");
    assert_eq!(audit::entries(&store, Some("p")).expect("by project").len(), 200);
}

/// A token works until it is revoked, and its use is recorded.
fn tokens_authenticate_until_revoked(backend: &Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, _) = project(backend, dir.path());
    let store = Store::open(&home).expect("store");
    let token = tokens::issue(&store, "alice", Duration::days(1), "test").expect("issue");
    let later = Utc::now() + Duration::minutes(5);
    let actor = tokens::authenticate(&store, Some(&token.secret), later, Duration::hours(1)).expect("valid");
    assert_eq!(actor.user(), "alice");
    let listed = tokens::list(&store, Some("alice")).expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "the use was recorded");
    assert_eq!(tokens::revoke(&store, Revoke::User("alice"), "test").expect("revoke"), 1);
    assert!(matches!(
        tokens::authenticate(&store, Some(&token.secret), later, Duration::hours(1)),
        Err(AuthError::Revoked(_))
    ));
    assert_eq!(tokens::revoke(&store, Revoke::User("alice"), "test").expect("revoke none"), 0);
    verify(&home);
}

/// A change with no audit entry is refused and leaves nothing behind; one with it commits.
fn a_change_without_its_audit_entry_leaves_nothing(backend: &Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, _) = project(backend, dir.path());
    let store = Store::open(&home).expect("store");
    let count = || -> i64 { store.conn().query_row("SELECT COUNT(*) FROM uploads", &[], |r| r.get(0)).expect("count") };
    let insert = "INSERT INTO uploads (username, project, at, bytes) VALUES ('alice', 'p', 'now', 1)";
    let tx = store.audited().expect("begin");
    tx.execute(insert, &[]).expect("insert");
    assert!(matches!(tx.commit(), Err(StoreError::Unaudited { .. })));
    assert_eq!(count(), 0);
    let tx = store.audited().expect("begin");
    tx.execute(insert, &[]).expect("insert");
    drop(tx);
    assert_eq!(count(), 0, "dropped is rolled back");
    let mut tx = store.audited().expect("begin");
    tx.execute(insert, &[]).expect("insert");
    let event = Event {
        actor: "alice",
        action: Action::JobSubmitted,
        project: None,
        subject: None,
        detail: serde_json::json!({}),
    };
    tx.record(event, Utc::now()).expect("record");
    tx.commit().expect("commit");
    assert_eq!(count(), 1);
}

crate::on_both_stores!(
    a_job_is_run_checked_approved_and_released,
    claims_are_exclusive_and_per_user_limits_hold_across_claimers,
    the_audit_chain_is_one_chain_with_concurrent_writers,
    tokens_authenticate_until_revoked,
    a_change_without_its_audit_entry_leaves_nothing,
);

#[test]
fn a_postgres_database_belongs_to_one_state_directory() {
    let server = Server::start();
    let url = server.database();
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    Database::attach(&first, &url).expect("attach");
    Database::attach(&first, &url).expect("attaching again is a no-op");
    Store::open(&first).expect("store");
    assert!(!first.join("state.sqlite").exists(), "no embedded database beside it");
    let refused = Database::attach(&second, &url).expect_err("another directory's database");
    assert!(refused.to_string().contains("belongs to another state directory"), "{refused}");
    let other = server.database();
    let refused = Database::attach(&first, &other).expect_err("a directory keeps its database");
    assert!(refused.to_string().contains("already uses the PostgreSQL database"), "{refused}");
    assert!(!refused.to_string().contains("password"));
}

#[test]
fn a_store_whose_connection_was_killed_connects_again_and_loses_nothing() {
    let backend = Backend::postgres();
    let server = backend.server().expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, _) = project(&backend, dir.path());
    let store = Store::open(&home).expect("store");
    let entries = audit::entries(&store, None).expect("entries").len();
    let pids = server.backends_of(std::process::id());
    assert!(!pids.is_empty(), "this process's connections are visible to the server");
    // kill -9 of the server process behind the connection: PostgreSQL then ends every
    // connection and replays its log.
    let status = std::process::Command::new("kill").args(["-9", &pids[0].to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let again = loop {
        match audit::entries(&store, None) {
            Ok(again) => break again,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "the store never connected again: {e}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    };
    assert_eq!(again.len(), entries, "every committed entry survived");
    let event = Event {
        actor: "test",
        action: Action::PolicyRegistered,
        project: None,
        subject: None,
        detail: serde_json::json!({}),
    };
    audit::record(&store, event).expect("the store writes again");
    verify(&home);
}

#[test]
fn a_postgres_connection_that_asks_for_tls_gets_one_verified_against_the_trust_store() {
    let server = Server::start_tls_only();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("{}?sslmode=require", server.database());
    let verify = |home: &str, url: &str, ca: &Path| {
        common::ringfence_command(&dir.path().join(home))
            .args(["--database", url, "audit", "verify"])
            .env("SSL_CERT_FILE", ca)
            .output()
            .expect("ringfence")
    };
    let trusted = verify("home", &url, &server.ca_certificate());
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("audit log intact"));

    // The server takes no connection in clear, and a certificate the trust store does not
    // vouch for is refused.
    let plain = verify("plain", &server.database(), &server.ca_certificate());
    assert!(!plain.status.success());
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("no encryption"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let other_ca = dir.path().join("other-ca.crt");
    std::fs::copy(common::root().join("tests/fixtures/other-ca.crt"), &other_ca).expect("another CA");
    let untrusted = verify("untrusted", &format!("{}?sslmode=require", server.database()), &other_ca);
    assert!(!untrusted.status.success());
    let said = String::from_utf8_lossy(&untrusted.stderr);
    assert!(said.contains("certificate") && !said.contains("panicked"), "{said}");
}
