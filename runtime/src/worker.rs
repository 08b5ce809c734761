//! `ringfence worker`: a job runner in a process of its own. It claims queued jobs from the
//! state directory, runs each in the sandbox, ingests its outputs and runs their checks, beside
//! `ringfence serve` (which only accepts, schedules and answers, and starts one worker of its
//! own unless told `--workers 0`) and any number of other workers on the same state directory.
//!
//! Claims go through [`ExportQueue::start_next`], whose write transaction counts the user's
//! running jobs, so per-user limits hold across every worker. A job's lock is held by the worker
//! that runs it; when a worker dies (`kill -9`, an out-of-memory kill), the lock goes with it
//! and the next worker to look ([`ExportQueue::recover_jobs`], whenever a worker is idle) ends
//! the job as `interrupted`, requeues it, or ingests it if its record was written, with the
//! audit entry saying which.

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
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
    /// again, unless it is woken first.
    pub poll: Duration,
    /// End once no job is queued that may start, instead of waiting for more: to drain a queue.
    pub until_idle: bool,
}

/// Runs jobs until the queue is drained (`until_idle`), `wake` ends, or a thread cannot claim
/// jobs any more (the state database unreadable, say), which it returns; `ran` hears of each
/// job that ended, and a job that failed on the host is logged. Each byte read from `wake` (the service's pipe to the worker it started)
/// wakes the idle threads at once; its end stops the worker once its running jobs have ended.
pub fn run(
    config: &WorkerConfig,
    wake: Option<Box<dyn Read + Send>>,
    ran: &(dyn Fn(&JobRun) + Sync),
) -> Result<(), QueueError> {
    // Opening recovers what dead processes left, before any job starts.
    let first = ExportQueue::open(&config.home)?;
    let sandbox = Sandbox::new(&first.home().module_cache_dir()).map_err(JobError::from)?;
    drop(first);
    let signals = Arc::new(Signals::default());
    if let Some(mut wake) = wake {
        // Not scoped: a read that never returns must not keep the worker from ending.
        let signals = Arc::clone(&signals);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 64];
            while let Ok(1..) = wake.read(&mut buffer) {
                signals.wake();
            }
            signals.stop();
        });
    }
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..config.jobs.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let result = work(config, &sandbox, &signals, ran);
                    if result.is_err() {
                        signals.stop();
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
/// end dead workers' jobs and wait to be woken (or for the poll interval).
fn work(
    config: &WorkerConfig,
    sandbox: &Sandbox,
    signals: &Signals,
    ran: &(dyn Fn(&JobRun) + Sync),
) -> Result<(), QueueError> {
    let mut queue = ExportQueue::connect(&config.home)?;
    loop {
        let (woken, stopped) = signals.now();
        if stopped {
            return Ok(());
        }
        match queue.start_next()? {
            Some(lock) => {
                let id = lock.id().to_string();
                let today = Utc::now().date_naive();
                // A job that fails on the host has been ended with the reason in its audit
                // entry; the worker goes on with the next one.
                match queue.run_started(sandbox, lock, &config.caps, today) {
                    Ok(run) => ran(&run),
                    Err(err) => tracing::error!("job {id}: {}", crate::untrusted::shown_lines(&err.to_string())),
                }
            }
            None if config.until_idle => return Ok(()),
            None => {
                queue.recover_jobs()?;
                signals.wait(woken, config.poll);
            }
        }
    }
}

/// How a worker's threads hear that a job was queued (a count of wake-ups) or that they should
/// stop.
#[derive(Default)]
struct Signals {
    state: Mutex<(u64, bool)>,
    changed: Condvar,
}

impl Signals {
    /// The wake-ups so far and whether the worker is stopping.
    fn now(&self) -> (u64, bool) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).0 += 1;
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.changed.notify_all();
    }

    /// Waits up to `timeout`, unless a wake-up came since `seen` or the worker is stopping:
    /// a job queued between a thread's look and its wait is not missed.
    fn wait(&self, seen: u64, timeout: Duration) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0 == seen && !state.1 {
            drop(self.changed.wait_timeout(state, timeout).unwrap_or_else(PoisonError::into_inner));
        }
    }
}
