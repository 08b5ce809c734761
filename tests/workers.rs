//! `ringfence worker`: job runners in processes of their own beside `ringfence serve
//! --workers 0`, sharing one state directory. Per-user limits hold across workers, a worker
//! killed mid-job loses nothing and leaves the service up, and the audit chain says which
//! process started each job.

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};

use common::TestLimits;
use common::postgres::Backend;
use harness::Service;
use ringfence::store::Store;

/// Researchers besides alice.
const MORE_RESEARCHERS: &str = r#"
[[members]]
user = "bob"
roles = ["researcher"]

[[members]]
user = "dave"
roles = ["researcher"]
"#;

/// A service that runs no job itself, on a policy with one running job per user.
fn service(backend: &Backend, cpu_seconds: u64) -> Service {
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let limits = TestLimits {
        cpu_seconds,
        max_concurrent_jobs_per_user: 1,
        extra_members: MORE_RESEARCHERS,
        ..TestLimits::default()
    };
    Service::launch_on(backend, limits, &["--countries", &countries, "--workers", "0"])
}

/// Starts `ringfence worker` on `home`.
fn worker(home: &Path, args: &[&str]) -> Child {
    common::ringfence_command(home)
        .arg("worker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("worker")
}

/// Submits `guest` as `token`'s user and returns the job's id.
fn submit(service: &Service, token: &str, guest: &str, args: &[&str]) -> String {
    let accepted = service.submit(token, guest, args);
    assert_eq!(accepted.status, 202, "{}", String::from_utf8_lossy(&accepted.body));
    accepted.json()["id"].as_str().expect("id").to_string()
}

/// The audit log, oldest first, as (action, job id, detail).
fn job_events(home: &Path) -> Vec<(String, String, serde_json::Value)> {
    let store = Store::open(home).expect("store");
    ringfence::audit::entries(&store, None)
        .expect("audit")
        .into_iter()
        .filter_map(|e| {
            let job = e.subject.as_deref()?.strip_prefix("job:")?.to_string();
            Some((e.action, job, serde_json::from_str(&e.detail).expect("detail")))
        })
        .collect()
}

/// `workers` workers of two job slots each drain two jobs of each of three users.
fn drain(backend: &Backend, workers: usize) {
    let service = service(backend, 1);
    let tokens: Vec<(String, String)> =
        ["alice", "bob", "dave"].iter().map(|u| (u.to_string(), service.token(u))).collect();
    // Two jobs per user, each spinning until its one-second CPU limit: queued before any
    // worker runs, so both workers find work at once.
    let jobs: Vec<(String, String)> = tokens
        .iter()
        .flat_map(|(_, token)| [token, token])
        .map(|token| (submit(&service, token, "escape", &["spin"]), token.clone()))
        .collect();
    assert!(jobs.iter().all(|(id, token)| service.job(token, id)["state"] == "queued"), "no job runs in the service");

    let mut workers: Vec<Child> =
        (0..workers).map(|_| worker(&service.home, &["--jobs", "2", "--until-idle"])).collect();
    for worker in &mut workers {
        assert!(worker.wait().expect("worker").success(), "a worker drains the queue and ends");
    }
    for (id, token) in &jobs {
        let job = service.job(token, id);
        assert_eq!(job["state"], "stopped: cpu_limit", "{job}");
    }

    // Replay the audit chain: each user's started-but-not-finished jobs, at every entry.
    let mut running: BTreeMap<String, u32> = BTreeMap::new();
    let mut user_of = BTreeMap::new();
    let mut pids = BTreeSet::new();
    for (action, job, detail) in job_events(&service.home) {
        match action.as_str() {
            "job.started" => {
                let user = detail["user"].as_str().expect("user").to_string();
                pids.insert(detail["pid"].as_u64().expect("the starting process"));
                let now = running.entry(user.clone()).or_default();
                *now += 1;
                assert!(*now <= 1, "{user} has {now} jobs running at once");
                user_of.insert(job, user);
            }
            "job.finished" | "job.interrupted" => {
                if let Some(user) = user_of.get(&job) {
                    *running.get_mut(user).expect("started") -= 1;
                }
            }
            _ => {}
        }
    }
    assert_eq!(user_of.len(), 6, "every job started once");
    assert!(pids.len() >= 2, "several workers ran jobs: {pids:?}");
    assert!(common::ringfence_command(&service.home).args(["audit", "verify"]).status().expect("verify").success());
}

fn two_workers_drain_a_queue_of_three_users_and_no_user_is_ever_above_their_limit(backend: &Backend) {
    drain(backend, 2);
}

fn four_workers_drain_a_queue_of_three_users_and_no_user_is_ever_above_their_limit(backend: &Backend) {
    drain(backend, 4);
}

fn a_worker_killed_mid_job_leaves_the_service_up_and_the_next_worker_ends_the_job_as_interrupted(backend: &Backend) {
    let service = service(backend, 30);
    let alice = service.token("alice");
    let spinning = submit(&service, &alice, "escape", &["spin"]);
    let mut first = worker(&service.home, &["--jobs", "1"]);
    service.wait_for(&alice, &spinning, |job| job["state"] == "running");
    first.kill().expect("kill -9 the worker");
    first.wait().expect("reap");

    assert_eq!(service.get("/api/v1/whoami", Some(&alice)).status, 200, "the service is up");
    assert_eq!(service.job(&alice, &spinning)["state"], "running", "until a worker looks");
    let next = submit(&service, &alice, "crosstab", &[]);
    let mut second = worker(&service.home, &["--jobs", "1", "--until-idle"]);
    assert!(second.wait().expect("worker").success());

    assert_eq!(service.job(&alice, &spinning)["state"], "interrupted");
    assert_eq!(service.job(&alice, &next)["state"], "succeeded", "the next worker runs the queue on");
    let interrupted =
        job_events(&service.home).into_iter().find(|(action, job, _)| action == "job.interrupted" && *job == spinning);
    let (_, _, detail) = interrupted.expect("the audit log says the job was interrupted");
    assert!(detail["reason"].as_str().is_some_and(|r| r.contains("process ended")), "{detail}");
    assert!(common::ringfence_command(&service.home).args(["audit", "verify"]).status().expect("verify").success());
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| {
            let child: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
            // The parent is the second field after the command, which is in parentheses.
            let parent: u32 = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
            (parent == pid).then_some(child)
        })
        .collect()
}

fn the_service_runs_jobs_in_a_worker_of_its_own_and_stays_up_when_that_worker_is_killed(backend: &Backend) {
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let limits = TestLimits { cpu_seconds: 30, ..TestLimits::default() };
    let service = Service::launch_on(backend, limits, &["--countries", &countries, "--workers", "1"]);
    let alice = service.token("alice");
    let spinning = submit(&service, &alice, "escape", &["spin"]);
    service.wait_for(&alice, &spinning, |job| job["state"] == "running");
    let started =
        job_events(&service.home).into_iter().find(|(action, job, _)| action == "job.started" && *job == spinning);
    let pid = started.expect("started").2["pid"].clone();
    let workers = children(service.pid());
    assert_eq!(workers.len(), 1, "one worker process: {workers:?}");
    assert_eq!(pid, serde_json::json!(workers[0]), "the job runs in the worker, not in the service");

    // SAFETY: kill(2) on a process id just read from /proc, a child of the service we started.
    assert_eq!(unsafe { libc::kill(workers[0], libc::SIGKILL) }, 0, "kill -9 the worker");
    assert_eq!(service.get("/api/v1/whoami", Some(&alice)).status, 200, "the service is up");
    let interrupted = service.wait_for(&alice, &spinning, |job| job["state"] != "running");
    assert_eq!(interrupted["state"], "interrupted", "the next worker ended it: {interrupted}");
    let next = service.run(&alice, "crosstab", &[]);
    assert_eq!(next["state"], "succeeded", "the service started another worker: {next}");
    let restarted = children(service.pid());
    assert!(restarted.len() == 1 && restarted[0] != workers[0], "{restarted:?}");
}

fn a_policy_may_have_a_job_whose_worker_died_run_once_more_and_the_audit_chain_says_so(backend: &Backend) {
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let limits = TestLimits { cpu_seconds: 2, limits_extra: "retry_interrupted = true", ..TestLimits::default() };
    let service = Service::launch_on(backend, limits, &["--countries", &countries, "--workers", "0"]);
    let alice = service.token("alice");
    let spinning = submit(&service, &alice, "escape", &["spin"]);
    let starts = || -> Vec<serde_json::Value> {
        job_events(&service.home)
            .into_iter()
            .filter(|(action, job, _)| action == "job.started" && *job == spinning)
            .map(|(_, _, detail)| detail["pid"].clone())
            .collect()
    };
    // Waits until the job has started `n` times, the last by `worker`.
    let started_by = |worker: &Child, n: usize| {
        service.wait_for(&alice, &spinning, |job| job["state"] == "running" && starts().len() == n);
        assert_eq!(starts().last(), Some(&serde_json::json!(worker.id())));
    };

    // The first worker dies mid-job: the next one queues the job once more and runs it.
    let mut first = worker(&service.home, &["--jobs", "1"]);
    started_by(&first, 1);
    first.kill().expect("kill -9");
    first.wait().expect("reap");
    let mut second = worker(&service.home, &["--jobs", "1"]);
    started_by(&second, 2);
    // It dies too: the retry is used, so the job ends interrupted.
    second.kill().expect("kill -9");
    second.wait().expect("reap");
    let mut third = worker(&service.home, &["--jobs", "1", "--until-idle"]);
    assert!(third.wait().expect("worker").success());
    assert_eq!(service.job(&alice, &spinning)["state"], "interrupted");

    let actions: Vec<String> = job_events(&service.home)
        .into_iter()
        .filter(|(_, job, _)| *job == spinning)
        .map(|(action, _, _)| action)
        .collect();
    assert_eq!(actions, ["job.submitted", "job.started", "job.requeued", "job.started", "job.interrupted"]);
    assert!(common::ringfence_command(&service.home).args(["audit", "verify"]).status().expect("verify").success());
}

/// On PostgreSQL: the server processes behind a worker's connections are killed (`kill -9`)
/// while its job runs. The server resets every connection; the service answers again, the job
/// ends (finished by its worker, or interrupted once its lock went with its connection), the
/// queue runs on, and the audit chain verifies.
#[test]
fn postgres_connections_killed_mid_job_lose_nothing() {
    let backend = Backend::postgres();
    let server = backend.server().expect("server");
    let service = service(&backend, 3);
    let alice = service.token("alice");
    let spinning = submit(&service, &alice, "escape", &["spin"]);
    let mut first = worker(&service.home, &["--jobs", "1"]);
    service.wait_for(&alice, &spinning, |job| job["state"] == "running");
    let backends = server.backends_of(first.id());
    assert!(backends.len() >= 2, "the worker's store and its job's lock: {backends:?}");
    // One is enough: PostgreSQL answers a backend's crash by ending every connection.
    let killed = std::process::Command::new("kill").args(["-9", &backends[0].to_string()]).status().expect("kill");
    assert!(killed.success());
    // While the server replays its log, the service answers what needs the database with a
    // 500 (no state), then connects again.
    let ended_as = |job: &serde_json::Value| job["state"].as_str().is_some_and(|s| !["queued", "running"].contains(&s));
    let ended = service.wait_for(&alice, &spinning, ended_as);
    assert!(["stopped: cpu_limit", "interrupted"].contains(&ended["state"].as_str().unwrap_or_default()), "{ended}");
    let next = submit(&service, &alice, "crosstab", &[]);
    let done = service.wait_for(&alice, &next, ended_as);
    assert_eq!(done["state"], "succeeded", "the same worker runs the queue on: {done}");
    first.kill().expect("stop the worker");
    first.wait().expect("reap");
    assert!(common::ringfence_command(&service.home).args(["audit", "verify"]).status().expect("verify").success());
}

crate::on_both_stores!(
    two_workers_drain_a_queue_of_three_users_and_no_user_is_ever_above_their_limit,
    four_workers_drain_a_queue_of_three_users_and_no_user_is_ever_above_their_limit,
    a_worker_killed_mid_job_leaves_the_service_up_and_the_next_worker_ends_the_job_as_interrupted,
    the_service_runs_jobs_in_a_worker_of_its_own_and_stays_up_when_that_worker_is_killed,
    a_policy_may_have_a_job_whose_worker_died_run_once_more_and_the_audit_chain_says_so,
);
