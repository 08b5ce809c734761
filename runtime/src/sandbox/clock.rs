//! Coarse clocks: the guest reads time only at the resolution its policy grants.
//!
//! Fine-grained timers are the raw material of timing side channels; an analysis needs dates
//! and rough durations at most.

use std::time::{Duration, Instant, SystemTime};

use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

fn floor(value: Duration, resolution: Duration) -> Duration {
    let step = resolution.as_nanos().max(1);
    let floored = value.as_nanos() / step * step;
    Duration::from_nanos(u64::try_from(floored).unwrap_or(u64::MAX))
}

/// Wall-clock time since the Unix epoch, rounded down to the resolution.
pub(super) struct CoarseWallClock {
    pub(super) resolution: Duration,
}

impl HostWallClock for CoarseWallClock {
    fn resolution(&self) -> Duration {
        self.resolution
    }

    fn now(&self) -> Duration {
        let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        floor(since_epoch, self.resolution)
    }
}

/// Nanoseconds since the job started, rounded down to the resolution.
pub(super) struct CoarseMonotonicClock {
    pub(super) resolution: Duration,
    pub(super) start: Instant,
}

impl HostMonotonicClock for CoarseMonotonicClock {
    fn resolution(&self) -> u64 {
        u64::try_from(self.resolution.as_nanos()).unwrap_or(u64::MAX)
    }

    fn now(&self) -> u64 {
        u64::try_from(floor(self.start.elapsed(), self.resolution).as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_drops_everything_below_the_resolution() {
        let second = Duration::from_secs(1);
        assert_eq!(floor(Duration::from_millis(2_999), second), Duration::from_secs(2));
        assert_eq!(floor(Duration::from_millis(3_000), second), Duration::from_secs(3));
        assert_eq!(floor(Duration::from_nanos(7), Duration::ZERO), Duration::from_nanos(7));
    }
}
