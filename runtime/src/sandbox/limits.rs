//! Enforcement of a job's resource limits: memory through the store's resource limiter, CPU and
//! wall-clock time at every epoch tick.

use std::time::{Duration, Instant};

use cpu_time::ThreadTime;
use wasmtime::{ResourceLimiter, UpdateDeadline};

/// The limit a guest ran into. Raised as the error that stops the guest, so the job's status can
/// name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// The guest asked for more linear memory than the policy grants.
    #[error("memory limit exceeded")]
    Memory,
    /// The guest used more CPU time than the policy grants.
    #[error("CPU time limit exceeded")]
    Cpu,
    /// The job ran longer than the policy's wall-clock limit.
    #[error("wall-clock limit exceeded")]
    WallClock,
    /// The guest wrote more bytes or files under `/export/` than the policy grants.
    #[error("export limit exceeded")]
    Export,
}

/// Most table elements a guest may have: generous for function tables, small enough that
/// a table bomb cannot exhaust host memory.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Memory and table limits for one store, recording the peak memory the guest reached.
pub(super) struct JobLimiter {
    memory_limit: usize,
    pub(super) peak_memory: usize,
}

impl JobLimiter {
    pub(super) fn new(memory_limit_bytes: u64) -> Self {
        JobLimiter { memory_limit: usize::try_from(memory_limit_bytes).unwrap_or(usize::MAX), peak_memory: 0 }
    }
}

impl ResourceLimiter for JobLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            return Err(LimitExceeded::Memory.into());
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

/// CPU and wall-clock budgets, checked at each epoch tick on the thread running the guest.
pub(super) struct Deadlines {
    cpu_start: Duration,
    cpu_limit: Duration,
    wall_start: Instant,
    wall_limit: Duration,
}

impl Deadlines {
    /// Starts both budgets now. Must be called on the thread that will run the guest, since
    /// CPU time is that thread's.
    pub(super) fn start(cpu_limit: Duration, wall_limit: Duration) -> Self {
        Deadlines { cpu_start: ThreadTime::now().as_duration(), cpu_limit, wall_start: Instant::now(), wall_limit }
    }

    /// CPU time used by the guest's thread since [`Deadlines::start`].
    pub(super) fn cpu_used(&self) -> Duration {
        ThreadTime::now().as_duration().saturating_sub(self.cpu_start)
    }

    /// Wall-clock time since [`Deadlines::start`].
    pub(super) fn wall_used(&self) -> Duration {
        self.wall_start.elapsed()
    }

    /// Called at every epoch tick: stop the guest if a budget is spent, else wait one more tick.
    pub(super) fn on_tick(&self) -> wasmtime::Result<UpdateDeadline> {
        if self.cpu_used() > self.cpu_limit {
            return Err(LimitExceeded::Cpu.into());
        }
        if self.wall_used() > self.wall_limit {
            return Err(LimitExceeded::WallClock.into());
        }
        Ok(UpdateDeadline::Continue(1))
    }
}
