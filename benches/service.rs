//! The service under load, on a real `ringfence serve` process over loopback:
//!
//! - `job_status_50_clients`: `GET /api/v1/jobs/{id}` (token check, role check, SQLite reads)
//!   from 50 concurrent clients, against the same server's cheapest route with no token and no
//!   database (`GET /api/v1/openapi.json`). Prints requests/s and p50/p99 latency.
//! - `submission_to_running`: from the start of the upload to the guest's `_start` (the job
//!   record's `started_at`), with the module already in the cache, against starting the same
//!   job through the library in-process (`ExportQueue::run_job`).

use std::io::{BufRead, BufReader};
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringfence::job::{JobRecord, JobRequest, ModuleSource};
use ringfence::policy::Policy;
use ringfence::queue::ExportQueue;
use ringfence::sandbox::Sandbox;
use ringfence::store::Store;

const CLIENTS: usize = 50;
const REQUESTS_PER_CLIENT: usize = 20;
const PROJECT: &str = "demo-2026-001";

/// A `ringfence serve` on a state directory prepared by `ringfence demo`, killed when dropped.
struct Server {
    dir: tempfile::TempDir,
    child: Child,
    url: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        common::demo_home(&home, 20_000);
        let store = Store::open(&home).expect("store");
        let token =
            ringfence::tokens::issue(&store, "alice", chrono::Duration::days(1), "bench").expect("token").secret;
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringfence"))
            .arg("--home")
            .arg(&home)
            .args(["serve", "--listen", "127.0.0.1:0", "--countries"])
            .arg(common::root().join("policies/countries-loopback.csv"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ringfence serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("address line");
        let url = line.trim().strip_prefix("listening on ").expect("listening line").to_string();
        Server { dir, child, url, token }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).build().into()
    }

    /// Submits `crosstab` and waits until it has ended; returns its id and when the upload began.
    fn submit_and_wait(&self, agent: &ureq::Agent) -> (String, chrono::DateTime<Utc>) {
        let wasm = common::guest("crosstab");
        let began = Utc::now();
        let mut accepted = agent
            .post(format!("{}/api/v1/projects/{PROJECT}/jobs", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .send(&wasm[..])
            .expect("submit");
        let job: serde_json::Value =
            serde_json::from_slice(&accepted.body_mut().read_to_vec().expect("body")).expect("json");
        let id = job["id"].as_str().unwrap_or_else(|| panic!("not accepted: {job}")).to_string();
        loop {
            let mut answer = agent
                .get(format!("{}/api/v1/jobs/{id}", self.url))
                .header("Authorization", format!("Bearer {}", self.token))
                .call()
                .expect("status");
            let job: serde_json::Value =
                serde_json::from_slice(&answer.body_mut().read_to_vec().expect("body")).expect("json");
            if !matches!(job["state"].as_str(), Some("queued" | "running")) {
                return (id, began);
            }
            // Poll gently: a tight loop would take CPU from the job being measured.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Runs one round: `CLIENTS` threads each sending `REQUESTS_PER_CLIENT` GETs of `path`;
/// returns the round's wall time and every request's latency.
fn round(url: &str, path: &str, token: Option<&str>) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| {
                    let agent = Server::agent();
                    (0..REQUESTS_PER_CLIENT)
                        .map(|_| {
                            let sent = Instant::now();
                            let mut request = agent.get(format!("{url}{path}"));
                            if let Some(token) = token {
                                request = request.header("Authorization", format!("Bearer {token}"));
                            }
                            let mut answer = request.call().expect("GET");
                            assert_eq!(answer.status(), 200);
                            answer.body_mut().read_to_vec().expect("body");
                            sent.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients.into_iter().flat_map(|c| c.join().expect("client")).collect()
    });
    (started.elapsed(), latencies)
}

fn report(name: &str, wall: Duration, latencies: &mut [Duration]) {
    if latencies.is_empty() {
        return;
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{name}: {} requests, {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / wall.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
    );
}

fn job_status(c: &mut Criterion) {
    let server = Server::start();
    let (job, _) = server.submit_and_wait(&Server::agent());
    let status_path = format!("/api/v1/jobs/{job}");
    let mut group = c.benchmark_group("job_status_50_clients");
    group.sample_size(10);
    group.throughput(Throughput::Elements((CLIENTS * REQUESTS_PER_CLIENT) as u64));
    for (name, path, token) in [
        ("ringfence_job_status", status_path.as_str(), Some(server.token.as_str())),
        ("static_route", "/api/v1/openapi.json", None),
    ] {
        let totals = Mutex::new((Duration::ZERO, Vec::new()));
        group.bench_function(name, |b| {
            b.iter_custom(|rounds| {
                let mut spent = Duration::ZERO;
                for _ in 0..rounds {
                    let (wall, latencies) = round(&server.url, path, token);
                    spent += wall;
                    let mut totals = totals.lock().expect("totals");
                    totals.0 += wall;
                    totals.1.extend(latencies);
                }
                spent
            })
        });
        let (wall, mut latencies) = totals.into_inner().expect("totals");
        report(name, wall, &mut latencies);
    }
    group.finish();
}

/// Time from `began` to the guest's start, from job `id`'s record.
fn to_guest_start(home: &Path, id: &str, began: chrono::DateTime<Utc>) -> Duration {
    let home = ringfence::home::Home::open(home).expect("home");
    let record = JobRecord::load(&home, id).expect("record");
    (record.started_at - began).to_std().expect("the guest started after the submission")
}

fn submission_to_running(c: &mut Criterion) {
    let server = Server::start();
    let agent = Server::agent();
    let home = server.home();
    let mut group = c.benchmark_group("submission_to_running");
    group.sample_size(20);
    group.bench_function("ringfence_http_submit", |b| {
        b.iter_custom(|jobs| {
            (0..jobs)
                .map(|_| {
                    let (id, began) = server.submit_and_wait(&agent);
                    to_guest_start(&home, &id, began)
                })
                .sum()
        })
    });
    let mut queue = ExportQueue::connect(&home).expect("queue");
    let sandbox = Sandbox::new(&queue.home().module_cache_dir()).expect("sandbox");
    let wasm = common::guest("crosstab");
    let today = Utc::now().date_naive();
    let policy_file = queue.registry().policy_file(PROJECT);
    let policy = Policy::load(&policy_file, &common::caps(&home), queue.catalog(), today).expect("policy");
    group.bench_function("library_run_job", |b| {
        b.iter_custom(|jobs| {
            (0..jobs)
                .map(|_| {
                    let began = Utc::now();
                    let request = JobRequest {
                        policy: &policy,
                        user: "alice",
                        module: ModuleSource::Submitted(&wasm),
                        args: &[],
                    };
                    let run = queue.run_job(&sandbox, &request, today).expect("run");
                    to_guest_start(&home, &run.record.id, began)
                })
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, job_status, submission_to_running);
criterion_main!(benches);
