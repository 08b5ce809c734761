//! The embedded state database: one SQLite file, `<home>/state.sqlite`, holding the job table,
//! the export queue and the audit log, so that every state change and its audit entry commit
//! together or not at all.
//!
//! The database runs in WAL mode with `synchronous = FULL`: a committed transaction survives a
//! crash or `kill -9` of the process, and an uncommitted one leaves no trace. Several processes
//! (CLI invocations, the service) may open it at once; writers wait for each other up to
//! [`BUSY_TIMEOUT`].

mod audited;
mod migrations;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use audited::{Audited, Bookkeeping};

/// How long a writer waits for another process's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A problem with the state database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("state database {}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database, or the state directory that holds it, cannot be written by this process.
    #[error(
        "state database {} is read-only to this user: every ringfence command that changes state needs \
         to write the state directory (run it as the directory's owner)",
        path.display()
    )]
    ReadOnly {
        /// The database file.
        path: PathBuf,
    },
    /// The database was written by a newer ringfence.
    #[error("state database {} has schema version {found}; this ringfence knows up to {known}", path.display())]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A change to the state was about to be committed without an audit entry saying what it
    /// was: refused, and rolled back.
    #[error("state database {}: a change without its audit entry was refused (a bug in ringfence)", path.display())]
    Unaudited {
        /// The database file.
        path: PathBuf,
    },
    /// A stored value could not be decoded.
    #[error("state database {}: {what} is corrupt: {message}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// Why it could not be decoded.
        message: String,
    },
}

impl StoreError {
    /// SQLite's error on the database at `path`; a refused write is said as such.
    fn sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
        match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ReadOnly) => StoreError::ReadOnly { path: path.to_path_buf() },
            _ => StoreError::Sqlite { path: path.to_path_buf(), source },
        }
    }
}

/// An open state database.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    conn: Connection,
}

impl Store {
    /// Opens (creating and migrating if needed) the state database in the state directory.
    pub fn open(home: &Path) -> Result<Store, StoreError> {
        let path = home.join("state.sqlite");
        let wrap = |source| StoreError::sqlite(&path, source);
        let conn = Connection::open(&path).map_err(wrap)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(wrap)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(wrap)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(wrap)?;
        let store = Store { path, conn };
        migrations::apply(&store)?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for reads.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Starts a write transaction that holds the database's write lock from its first
    /// statement, so read-then-write sequences inside it cannot interleave with another writer.
    /// Only [`Store::audited`] and [`Store::bookkeeping`] call it: every write is one of theirs.
    fn begin_write(&self) -> Result<Transaction<'_>, StoreError> {
        Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).map_err(self.err())
    }

    /// Starts a change of state: a write transaction that commits only with the audit entries
    /// that say what it changed ([`Audited`]).
    pub fn audited(&self) -> Result<Audited<'_>, StoreError> {
        Ok(Audited::new(self, self.begin_write()?))
    }

    /// Starts one of the few writes no audit entry describes, each named by what it is
    /// ([`Bookkeeping`]).
    pub fn bookkeeping(&self, _what: Bookkeeping) -> Result<Transaction<'_>, StoreError> {
        self.begin_write()
    }

    /// Wraps a SQLite error with the database's path.
    pub fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + use<> {
        let path = self.path.clone();
        move |source| StoreError::sqlite(&path, source)
    }

    /// An error for a stored value that does not decode.
    pub fn corrupt(&self, what: impl Into<String>, message: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), what: what.into(), message: message.to_string() }
    }
}
