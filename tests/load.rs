//! A bounded load test over loopback: 100 researchers each keep three jobs in flight against a
//! real `ringfence serve` — submitting, polling until each ends, submitting again — for
//! `RINGFENCE_LOAD_SECONDS` (20 s in the test suite; `scripts/load` runs 120 s). It stops by
//! itself. Every job must end (or be refused with a reason), no user may ever have more than
//! their two running jobs (read back from the audit log), and the service's memory must stay
//! bounded. The figures — throughput, request latency p50/p99, peak memory — are printed and
//! written to `target/load-figures.txt`.

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::TestLimits;
use harness::Service;

const USERS: usize = 100;
const IN_FLIGHT: usize = 3;

/// What one researcher's client saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    completed: u64,
    refused: Vec<String>,
    unfinished: u64,
}

/// The service's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn researcher(service: &Service, token: &str, wasm: &[u8], until: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut timed = |f: &mut dyn FnMut() -> harness::Answer| {
        let started = Instant::now();
        let answer = f();
        tally.latencies.push(started.elapsed());
        answer
    };
    let mut flying: Vec<String> = Vec::new();
    while Instant::now() < until || !flying.is_empty() {
        while Instant::now() < until && flying.len() < IN_FLIGHT {
            let path = "/api/v1/projects/test-project/jobs?arg=region";
            let answer = timed(&mut || service.post(path, token, "application/wasm", wasm));
            if answer.status == 202 {
                flying.push(answer.json()["id"].as_str().expect("id").to_string());
            } else {
                let reason = answer.json()["error"].as_str().unwrap_or("").to_string();
                assert!(!reason.is_empty(), "a refusal says why ({})", answer.status);
                tally.refused.push(reason);
                break;
            }
        }
        let mut still = Vec::new();
        for id in flying.drain(..) {
            let answer = timed(&mut || service.get(&format!("/api/v1/jobs/{id}"), Some(token)));
            match answer.json()["state"].as_str() {
                Some("succeeded") => tally.completed += 1,
                Some("queued" | "running") if Instant::now() < until + Duration::from_secs(120) => still.push(id),
                Some("queued" | "running") => tally.unfinished += 1,
                other => panic!("job {id} ended {other:?}"),
            }
        }
        flying = still;
        std::thread::sleep(Duration::from_millis(100));
    }
    tally
}

/// The most jobs each user had running at once, from the audit log's starts and ends.
fn most_running(service: &Service) -> usize {
    let store = ringfence::store::Store::open(&service.home).expect("store");
    let entries = ringfence::audit::entries(&store, None).expect("audit");
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut running: HashMap<String, usize> = HashMap::new();
    let mut most = 0;
    for e in entries {
        let Some(job) = e.subject.as_deref().and_then(|s| s.strip_prefix("job:")) else { continue };
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        match e.action.as_str() {
            "job.submitted" => {
                owner.insert(job.to_string(), e.actor.clone());
                if detail["status"] == "running" {
                    *running.entry(e.actor.clone()).or_default() += 1;
                }
            }
            "job.started" => *running.entry(detail["user"].as_str().unwrap_or("").to_string()).or_default() += 1,
            "request.checked" | "job.finished" | "job.interrupted" => {
                if e.action != "request.checked"
                    && let Some(user) = owner.get(job)
                {
                    let n = running.entry(user.clone()).or_default();
                    *n = n.saturating_sub(1);
                }
            }
            _ => {}
        }
        most = most.max(running.values().copied().max().unwrap_or(0));
    }
    most
}

#[test]
fn a_hundred_researchers_at_once_are_served_within_their_limits() {
    let seconds: u64 = std::env::var("RINGFENCE_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let members: String =
        (0..USERS).map(|i| format!("[[members]]\nuser = \"r{i:03}\"\nroles = [\"researcher\"]\n\n")).collect();
    let limits = TestLimits {
        extra_members: Box::leak(members.into_boxed_str()),
        max_jobs_per_day: 100,
        ..TestLimits::default()
    };
    let countries = common::root().join("policies/countries-loopback.csv").display().to_string();
    let service = Service::launch(limits, &["--countries", &countries, "--workers", "2"]);
    let wasm = std::fs::read(common::guest("crosstab")).expect("guest");
    let tokens: Vec<String> = (0..USERS).map(|i| service.token(&format!("r{i:03}"))).collect();
    let pid = service.pid();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let (tallies, peak_kib) = std::thread::scope(|scope| {
        let clients: Vec<_> = tokens.iter().map(|t| scope.spawn(|| researcher(&service, t, &wasm, until))).collect();
        let mut peak = 0;
        while clients.iter().any(|c| !c.is_finished()) {
            peak = peak.max(rss_kib(pid));
            std::thread::sleep(Duration::from_millis(200));
        }
        (clients.into_iter().map(|c| c.join().expect("client")).collect::<Vec<Tally>>(), peak)
    });
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = tallies.iter().flat_map(|t| t.latencies.iter().copied()).collect();
    latencies.sort();
    let completed: u64 = tallies.iter().map(|t| t.completed).sum();
    let unfinished: u64 = tallies.iter().map(|t| t.unfinished).sum();
    let refused: Vec<&String> = tallies.iter().flat_map(|t| &t.refused).collect();
    let figures = format!(
        "load: {USERS} researchers, {IN_FLIGHT} jobs in flight each, {seconds} s of submitting, 2 workers\n\
         jobs completed {completed} ({:.1}/s over {:.1} s), refused {}, unfinished {unfinished}\n\
         requests {} ({:.0}/s), latency p50 {:.1} ms, p99 {:.1} ms\n\
         service peak RSS {} MiB\n",
        completed as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        refused.len(),
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        peak_kib / 1024,
    );
    eprint!("{figures}");
    let _ = std::fs::write(common::root().join("target/load-figures.txt"), &figures);
    assert_eq!(unfinished, 0, "every job ends");
    assert!(completed > USERS as u64, "{figures}");
    assert!(refused.iter().all(|r| r.contains("jobs to project") || r.contains("jobs waiting")), "{refused:?}");
    assert!(most_running(&service) <= 2, "a user had more than two jobs running");
    assert!(peak_kib < 1 << 20, "the service stays under 1 GiB: {figures}");
}
