//! Locks held in the PostgreSQL database, for state directories that several machines share:
//! a file lock on one host says nothing to another, but a session-level advisory lock is seen
//! by every connection to the database, and the server releases it when the session ends,
//! however its process ended (exit, `kill -9`, its machine lost and its keep-alives unanswered).
//!
//! Each held lock is its own connection, so dropping the lock closes the session and releases
//! it; a probe connection answers whether a lock is held without holding it.

use std::sync::Mutex;

use postgres::Client;
use sha2::{Digest, Sha256};

use super::SqlError;
use super::postgres::connect;

/// The key of the state directory's own lock (shared by writers, exclusive for the sweep).
pub const HOME_LOCK: i64 = 0x7269_6e67_0002;

/// The key of job `id`'s lock: 63 bits of a hash of the id, so that no two jobs of a directory
/// share one in practice, and none equals [`HOME_LOCK`] or the write lock.
pub fn job_key(id: &str) -> i64 {
    let digest = Sha256::digest(format!("ringfence job {id}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    // The top bit clear: the constant keys above are small, and all of these are positive.
    i64::from_be_bytes(bytes) & i64::MAX | 1 << 62
}

/// An advisory lock this process holds, on a connection of its own; dropped, the connection
/// closes and the server releases the lock.
pub struct AdvisoryLock {
    session: Mutex<Client>,
}

impl AdvisoryLock {
    /// Whether the session that holds the lock still lives (and so still holds it): asked of
    /// the server, since a connection whose server process was killed looks open until used.
    pub fn is_alive(&self) -> bool {
        let mut session = self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        !session.is_closed() && session.simple_query("SELECT 1").is_ok()
    }
}

impl std::fmt::Debug for AdvisoryLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdvisoryLock")
    }
}

/// How a lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exclusively, waiting for every holder to release it.
    Exclusive,
    /// Shared with other shared holders, waiting for an exclusive holder.
    Shared,
}

/// Takes the lock `key` in `mode` on a new connection to `url`, waiting as long as it takes.
pub fn hold(url: &str, key: i64, mode: Mode) -> Result<AdvisoryLock, SqlError> {
    let mut session = connect(url)?;
    let sql = match mode {
        Mode::Exclusive => "SELECT pg_advisory_lock($1)",
        Mode::Shared => "SELECT pg_advisory_lock_shared($1)",
    };
    session.execute(sql, &[&key])?;
    Ok(AdvisoryLock { session: Mutex::new(session) })
}

/// Takes the lock `key` exclusively if nobody holds it.
pub fn try_hold(url: &str, key: i64) -> Result<Option<AdvisoryLock>, SqlError> {
    let mut session = connect(url)?;
    let taken: bool = session.query_one("SELECT pg_try_advisory_lock($1)", &[&key])?.get(0);
    Ok(taken.then_some(AdvisoryLock { session: Mutex::new(session) }))
}

/// A connection that asks whether locks are held, opened when first needed and again after it
/// was lost.
#[derive(Default)]
pub struct Probe {
    session: Mutex<Option<Client>>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

impl Probe {
    /// Whether some session holds the lock `key`: taken and released at once if nobody does.
    /// A probe whose connection was lost (the server restarted) connects again, once.
    pub fn is_held(&self, url: &str, key: i64) -> Result<bool, SqlError> {
        let mut session = self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let ask = |client: &mut Client| -> Result<bool, postgres::Error> {
            let free: bool = client.query_one("SELECT pg_try_advisory_lock($1)", &[&key])?.get(0);
            if free {
                client.execute("SELECT pg_advisory_unlock($1)", &[&key])?;
            }
            Ok(!free)
        };
        if let Some(client) = session.as_mut().filter(|client| !client.is_closed())
            && let Ok(held) = ask(client)
        {
            return Ok(held);
        }
        let client = session.insert(connect(url)?);
        Ok(ask(client)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_keys_are_distinct_from_each_other_and_from_the_fixed_locks() {
        let keys: std::collections::HashSet<i64> = (0..10_000).map(|i| job_key(&format!("job-{i}"))).collect();
        assert_eq!(keys.len(), 10_000);
        assert!(keys.iter().all(|&k| k > HOME_LOCK.max(super::super::postgres::WRITE_LOCK)));
    }
}
