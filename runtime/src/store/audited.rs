//! The one way state changes are written: a transaction that commits only together with the
//! audit entries saying what it changed, so the log and the state can neither disagree nor be
//! made to (a crash between the two is one transaction's rollback). The few writes that change
//! no state a person acts on are named by kind ([`Bookkeeping`]) where they happen.

use std::ops::Deref;

use chrono::{DateTime, Utc};

use super::{Connection, StoreError, Write};
use crate::audit::{self, Entry, Event};

/// A write transaction on the state database that commits only with at least one audit
/// entry ([`super::Store::audited`]). Statements run on it as on a connection; dropping it rolls
/// everything back.
#[derive(Debug)]
pub struct Audited<'s> {
    tx: Write<'s>,
    entries: usize,
}

impl<'s> Audited<'s> {
    pub(super) fn new(tx: Write<'s>) -> Audited<'s> {
        Audited { tx, entries: 0 }
    }

    /// Appends `event`, as of `at`, to the audit chain in this transaction.
    pub fn record(&mut self, event: Event<'_>, at: DateTime<Utc>) -> Result<Entry, StoreError> {
        let entry = audit::append(&self.tx, event, at).map_err(self.tx.store().err())?;
        self.entries += 1;
        Ok(entry)
    }

    /// Commits the change and its audit entries, or refuses a change that has none.
    pub fn commit(self) -> Result<(), StoreError> {
        if self.entries == 0 {
            return Err(StoreError::Unaudited { location: self.tx.store().location().to_string() });
        }
        self.tx.commit()
    }
}

impl Deref for Audited<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.tx
    }
}

/// The writes no audit entry describes: counters and timestamps the audited changes rest on,
/// and the schema itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bookkeeping {
    /// An upload counted against the user's daily quota, before the module is looked at (the
    /// job it is for is audited when it is accepted).
    UploadCount,
    /// When a token was last used, for its idle timeout.
    TokenUse,
    /// A schema migration, with the version it reaches.
    Migration,
}
