//! Workers draining a queue: jobs per minute with 1, 2 and 4 `ringfence worker` processes (one
//! job at a time each, `--until-idle`) on the embedded SQLite store and on PostgreSQL (a local
//! server that syncs every commit, as SQLite's `synchronous = FULL` does), reported against one
//! worker and against SQLite. Each sample queues 32 short jobs (`crosstab` on 20 000 demo persons, alice's and
//! bob's, whose policy lets each run two at once, so four workers can all be busy), then times
//! the workers from their start to their end: process start, recovery, module load from the
//! cache, every job's run, ingest and checks.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringfence::job::{JobRequest, ModuleSource};
use ringfence::policy::Policy;
use ringfence::queue::ExportQueue;
use ringfence::sandbox::Sandbox;
use ringfence::store::Database;

/// Jobs queued for each sample: 16 a user, the most one user may have waiting.
const JOBS: usize = 32;

/// Queues [`JOBS`] crosstab jobs in `home`, half alice's, half bob's.
fn queue_jobs(home: &Path, sandbox: &Sandbox, wasm: &[u8]) {
    let mut queue = ExportQueue::open(home).expect("queue");
    let today = chrono::Utc::now().date_naive();
    let policy =
        Policy::load(&home.join("bench-demo.toml"), &common::caps(home), queue.catalog(), today).expect("policy");
    for user in ["alice", "bob"].iter().cycle().take(JOBS) {
        let request = JobRequest { policy: &policy, user, module: ModuleSource::Submitted(wasm), args: &[] };
        queue.enqueue(sandbox, &request, today).expect("queued");
    }
}

/// Starts `workers` workers on `home` and waits for them to drain the queue.
fn drain(home: &Path, workers: usize) -> Duration {
    let started = Instant::now();
    let children: Vec<_> = (0..workers)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_ringfence"))
                .arg("--home")
                .arg(home)
                .args(["worker", "--jobs", "1", "--until-idle"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("worker")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("worker").success());
    }
    started.elapsed()
}

fn workers(c: &mut Criterion) {
    let wasm = common::guest("crosstab");
    let server = common::postgres::Server::start_durable();
    let mut group = c.benchmark_group("workers_drain_32_jobs");
    group.sample_size(10);
    group.throughput(Throughput::Elements(JOBS as u64));
    for (store, workers) in ["sqlite", "postgres"].into_iter().flat_map(|s| [1, 2, 4].map(|w| (s, w))) {
        // A state directory of its own for each count, so every count's checks compare with as
        // many earlier outputs.
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        if store == "postgres" {
            Database::attach(&home, &server.database()).expect("attach");
        }
        common::demo_home(&home, 20_000);
        let sandbox =
            Sandbox::new(&ExportQueue::open(&home).expect("queue").home().module_cache_dir()).expect("sandbox");
        group.bench_with_input(BenchmarkId::new(store, workers), &workers, |b, &workers| {
            b.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| {
                        queue_jobs(&home, &sandbox, &wasm);
                        drain(&home, workers)
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, workers);
criterion_main!(benches);
