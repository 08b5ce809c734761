//! Failures per client address and window: after too many refused tokens in a window, the
//! address gets `429` until the window ends, whatever it presents (guessing 256-bit tokens is
//! hopeless anyway; this keeps a noisy client from filling the audit log and flags it there).
//! Refused origins are counted the same way, so that their audit entries can be aggregated.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed authentications an address may have per window.
pub(crate) const MAX_FAILURES: u32 = 10;
/// The window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// Failures per address in the current window (entries older than the window are dropped on
/// every count, so the map holds only addresses seen within it).
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    /// Whether `address` is locked out now.
    pub(crate) fn is_blocked(&self, address: IpAddr, now: Instant) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failures
            .get(&address)
            .is_some_and(|(since, count)| now.duration_since(*since) < WINDOW && *count >= MAX_FAILURES)
    }

    /// Counts a failure (a refused token, a refused origin) from `address`; returns how many
    /// it has had in the current window, this one included.
    pub(crate) fn fail(&self, address: IpAddr, now: Instant) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.retain(|_, (since, _)| now.duration_since(*since) < WINDOW);
        let entry = failures.entry(address).or_insert((now, 0));
        entry.1 = entry.1.saturating_add(1);
        entry.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_too_many_failures_until_the_window_ends() {
        let throttle = Throttle::default();
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.fail(address, start);
        }
        assert!(!throttle.is_blocked(address, start));
        throttle.fail(address, start);
        assert!(throttle.is_blocked(address, start));
        assert!(!throttle.is_blocked(other, start), "per address");
        assert!(!throttle.is_blocked(address, start + WINDOW), "the window ends");
    }
}
