//! `ringfence worker`: a job runner in a process of its own. It claims queued jobs from the
//! state directory, runs each in the sandbox, ingests its outputs and runs their checks, beside
//! `ringfence serve` (which then only accepts, schedules and answers, with `--workers 0`) and any
//! number of other workers on the same state directory.
//!
//! Claims go through [`ExportQueue::start_next`], whose write transaction counts the user's
//! running jobs, so per-user limits hold across every worker. A job's lock is held by the worker
//! that runs it; when a worker dies (`kill -9`, an out-of-memory kill), the lock goes with it and
//! the next worker to look ([`ExportQueue::recover`], run whenever a worker is idle) ends the job
//! as `interrupted`, or ingests it if its record was written, with the audit entry saying which.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;

use crate::job::JobError;
use crate::policy::OperatorCaps;
use crate::queue::{ExportQueue, JobRun, QueueError};
use crate::sandbox::Sandbox;

/// What a worker runs with.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The state directory.
    pub home: PathBuf,
    /// The operator's caps, which every job's policy is checked against again when it starts.
    pub caps: OperatorCaps,
    /// Jobs this worker runs at once (each on a thread of its own).
    pub jobs: u32,
    /// How long an idle worker waits before it looks for queued jobs (and dead workers' jobs)
    /// again.
    pub poll: Duration,
    /// End once no job is queued that may start, instead of waiting for more: to drain a queue.
    pub until_idle: bool,
}

/// Runs jobs until the queue is drained (`until_idle`) or a thread meets an error it cannot go
/// on from (the state database unreadable, say), which it returns; `ran` hears of each job
/// that ended.
pub fn run(config: &WorkerConfig, ran: &(dyn Fn(&JobRun) + Sync)) -> Result<(), QueueError> {
    // Opening recovers what dead processes left, before any job starts.
    let first = ExportQueue::open(&config.home)?;
    let sandbox = Sandbox::new(&first.home().module_cache_dir()).map_err(JobError::from)?;
    drop(first);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..config.jobs.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let result = work(config, &sandbox, &stop, ran);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    result
                })
            })
            .collect();
        threads.into_iter().try_for_each(|thread| match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    })
}

/// One thread's loop: start the next job this process may run, run it, and when there is none,
/// end dead workers' jobs and wait.
fn work(
    config: &WorkerConfig,
    sandbox: &Sandbox,
    stop: &AtomicBool,
    ran: &(dyn Fn(&JobRun) + Sync),
) -> Result<(), QueueError> {
    let mut queue = ExportQueue::connect(&config.home)?;
    while !stop.load(Ordering::Relaxed) {
        match queue.start_next()? {
            Some(lock) => {
                let today = Utc::now().date_naive();
                ran(&queue.run_started(sandbox, lock, &config.caps, today)?);
            }
            None if config.until_idle => break,
            None => {
                queue.recover()?;
                std::thread::sleep(config.poll);
            }
        }
    }
    Ok(())
}
