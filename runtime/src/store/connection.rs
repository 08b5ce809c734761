//! One connection to the state database, whichever database it is: statements in the SQL both
//! SQLite and PostgreSQL accept (`?1`-style parameters, `RETURNING`, no dialect functions), run
//! by the backend the state directory names ([`super::Database`]).

use super::postgres::Postgres;
use super::sqlite::Sqlite;
use super::value::{DecodeError, Row, ToValue, Value};

/// A statement the database refused, or a result that did not decode.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// SQLite's error.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL's error (or the connection's).
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    /// A column was not what the code reading it expected.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The PostgreSQL database belongs to another state directory (whose identifier is given;
    /// empty when the database has none).
    #[error("the database belongs to another state directory ({0:?}), or to none")]
    Foreign(String),
    /// TLS could not be set up for a connection that asks for it.
    #[error("TLS: {0}")]
    Tls(String),
    /// A query that must return one row returned none.
    #[error("the query returned no row")]
    NoRow,
}

/// PostgreSQL's own message where the server sent one (its `Display` says only "db error").
fn postgres_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

/// An open connection.
#[derive(Debug)]
pub struct Connection {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sqlite(Sqlite),
    Postgres(Box<Postgres>),
}

/// Which database a connection talks to, where the SQL must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

fn values(params: &[&dyn ToValue]) -> Vec<Value> {
    params.iter().map(|p| p.to_value()).collect()
}

impl Connection {
    pub(super) fn sqlite(sqlite: Sqlite) -> Connection {
        Connection { backend: Backend::Sqlite(sqlite) }
    }

    pub(super) fn postgres(postgres: Postgres) -> Connection {
        Connection { backend: Backend::Postgres(Box::new(postgres)) }
    }

    /// The database behind this connection.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> Result<usize, SqlError> {
        let params = values(params);
        match &self.backend {
            Backend::Sqlite(db) => db.execute(sql, &params),
            Backend::Postgres(db) => db.execute(sql, &params),
        }
    }

    fn rows(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>, SqlError> {
        let params = values(params);
        match &self.backend {
            Backend::Sqlite(db) => db.query(sql, &params),
            Backend::Postgres(db) => db.query(sql, &params),
        }
    }

    /// Runs a query; returns its rows, each read by `read`.
    pub fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        read: impl FnMut(&Row) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, SqlError> {
        Ok(self.rows(sql, params)?.iter().map(read).collect::<Result<_, _>>()?)
    }

    /// Runs a query that returns at most one row of interest: the first, read by `read`.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        read: impl FnOnce(&Row) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, SqlError> {
        Ok(self.rows(sql, params)?.first().map(read).transpose()?)
    }

    /// Runs a query that returns a row: the first, read by `read`.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        read: impl FnOnce(&Row) -> Result<T, DecodeError>,
    ) -> Result<T, SqlError> {
        self.query_opt(sql, params, read)?.ok_or(SqlError::NoRow)
    }

    /// Runs several statements without parameters (a schema step).
    pub fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        match &self.backend {
            Backend::Sqlite(db) => db.execute_batch(sql),
            Backend::Postgres(db) => db.execute_batch(sql),
        }
    }

    /// The schema version the database is at (0 when new).
    pub(super) fn schema_version(&self) -> Result<i64, SqlError> {
        match &self.backend {
            Backend::Sqlite(db) => db.user_version(),
            Backend::Postgres(db) => db.schema_version(),
        }
    }

    /// Records the schema version, inside the migration's transaction.
    pub(super) fn set_schema_version(&self, version: i64) -> Result<(), SqlError> {
        match &self.backend {
            Backend::Sqlite(db) => db.set_user_version(version),
            Backend::Postgres(db) => db.set_schema_version(version),
        }
    }

    /// Begins a write transaction that excludes every other writer from its first statement.
    pub(super) fn begin_write(&self) -> Result<(), SqlError> {
        match &self.backend {
            Backend::Sqlite(db) => db.execute_batch("BEGIN IMMEDIATE"),
            Backend::Postgres(db) => db.begin_write(),
        }
    }

    /// Ends the transaction [`Connection::begin_write`] began: committed or rolled back.
    pub(super) fn end(&self, commit: bool) -> Result<(), SqlError> {
        match &self.backend {
            Backend::Sqlite(db) => db.execute_batch(if commit { "COMMIT" } else { "ROLLBACK" }),
            Backend::Postgres(db) => db.end(commit),
        }
    }
}
