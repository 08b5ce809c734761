//! The state database: the job table, the export queue, the token table and the audit log, in
//! one database so that every state change and its audit entry commit together or not at all.
//!
//! The database is the embedded SQLite file `<home>/state.sqlite` ([`sqlite`]) unless the state
//! directory names a PostgreSQL database ([`Database`], [`postgres`]): one interface, two
//! backends, the same SQL. Every change goes through [`Store::audited`], which commits only with
//! its audit entries, or [`Store::bookkeeping`], which names the few writes no entry describes.
//! Both hold the database's single write lock from their first statement, so read-then-write
//! sequences inside them cannot interleave with another writer, in this process or any other.

pub(crate) mod advisory;
mod audited;
mod connection;
mod database;
mod migrations;
mod postgres;
mod sqlite;
mod value;

use std::ops::Deref;
use std::path::{Path, PathBuf};

pub use audited::{Audited, Bookkeeping};
pub use connection::{Connection, Dialect, SqlError};
pub use database::{Database, EMBEDDED, MARKER};
pub use sqlite::BUSY_TIMEOUT;
pub use value::{DecodeError, FromValue, Row, ToValue, Value};

/// A problem with the state database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused an operation.
    #[error("state database {location}: {source}")]
    Database {
        /// Where the database is ([`Database::location`]).
        location: String,
        /// The database's error.
        source: SqlError,
    },
    /// The database, or the state directory that holds it, cannot be written by this process.
    #[error(
        "state database {location} is read-only to this user: every ringfence command that changes state \
         needs to write the state directory (run it as the directory's owner)"
    )]
    ReadOnly {
        /// Where the database is.
        location: String,
    },
    /// The state directory's database cannot be chosen as asked (`--database`), or its
    /// `database.toml` cannot be read.
    #[error("state directory {}: {message}", home.display())]
    Attach {
        /// The state directory.
        home: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The database was written by a newer ringfence.
    #[error("state database {location} has schema version {found}; this ringfence knows up to {known}")]
    TooNew {
        /// Where the database is.
        location: String,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A change to the state was about to be committed without an audit entry saying what it
    /// was: refused, and rolled back.
    #[error("state database {location}: a change without its audit entry was refused (a bug in ringfence)")]
    Unaudited {
        /// Where the database is.
        location: String,
    },
    /// A stored value could not be decoded.
    #[error("state database {location}: {what} is corrupt: {message}")]
    Corrupt {
        /// Where the database is.
        location: String,
        /// What was being read.
        what: String,
        /// Why it could not be decoded.
        message: String,
    },
}

impl StoreError {
    /// The database's error on the database at `location`; a refused write is said as such.
    fn database(location: &str, source: SqlError) -> StoreError {
        match &source {
            SqlError::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) => {
                StoreError::ReadOnly { location: location.to_string() }
            }
            _ => StoreError::Database { location: location.to_string(), source },
        }
    }
}

/// An open state database.
#[derive(Debug)]
pub struct Store {
    location: String,
    conn: Connection,
}

impl Store {
    /// Opens (creating and migrating if needed) the state directory's database.
    pub fn open(home: &Path) -> Result<Store, StoreError> {
        let database = Database::of(home)?;
        let location = database.location();
        let wrap = |source| StoreError::database(&location, source);
        let conn = match &database {
            Database::Embedded(path) => Connection::sqlite(sqlite::Sqlite::open(path).map_err(wrap)?),
            Database::Postgres { url, id } => {
                let db = postgres::Postgres::open(url).map_err(wrap)?;
                db.check_identity(id).map_err(wrap)?;
                Connection::postgres(db)
            }
        };
        let store = Store { location, conn };
        migrations::apply(&store)?;
        Ok(store)
    }

    /// Where the database is, for messages ([`Database::location`]).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The connection, for reads.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Starts a write transaction that holds the database's write lock from its first
    /// statement. Only [`Store::audited`] and [`Store::bookkeeping`] call it: every write is one
    /// of theirs.
    fn begin_write(&self) -> Result<Write<'_>, StoreError> {
        self.conn.begin_write().map_err(self.err())?;
        Ok(Write { store: self, open: true })
    }

    /// Starts a change of state: a write transaction that commits only with the audit entries
    /// that say what it changed ([`Audited`]).
    pub fn audited(&self) -> Result<Audited<'_>, StoreError> {
        Ok(Audited::new(self.begin_write()?))
    }

    /// Starts one of the few writes no audit entry describes, each named by what it is
    /// ([`Bookkeeping`]).
    pub fn bookkeeping(&self, _what: Bookkeeping) -> Result<Write<'_>, StoreError> {
        self.begin_write()
    }

    /// Wraps a database error with the database's location.
    pub fn err(&self) -> impl Fn(SqlError) -> StoreError + use<> {
        let location = self.location.clone();
        move |source| StoreError::database(&location, source)
    }

    /// An error for a stored value that does not decode.
    pub fn corrupt(&self, what: impl Into<String>, message: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { location: self.location.clone(), what: what.into(), message: message.to_string() }
    }
}

/// A write transaction: statements run on it as on the connection; [`Write::commit`] commits
/// them, and dropping it uncommitted rolls them back.
#[derive(Debug)]
pub struct Write<'s> {
    store: &'s Store,
    open: bool,
}

impl<'s> Write<'s> {
    /// The store the transaction is on.
    fn store(&self) -> &'s Store {
        self.store
    }

    /// Commits the transaction.
    pub fn commit(mut self) -> Result<(), StoreError> {
        self.open = false;
        self.store.conn.end(true).map_err(self.store.err())
    }
}

impl Deref for Write<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.store.conn
    }
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing of an uncommitted transaction survives a failed rollback either: SQLite
            // and PostgreSQL both discard it when the connection closes.
            let _ = self.store.conn.end(false);
        }
    }
}
