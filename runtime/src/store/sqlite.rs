//! The embedded backend: one SQLite file in WAL mode with `synchronous = FULL`, so a committed
//! transaction survives a crash or `kill -9` and an uncommitted one leaves no trace. Several
//! processes may open it; writers wait for each other up to [`BUSY_TIMEOUT`].

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};

use super::connection::SqlError;
use super::value::{Row, Value};

/// How long a writer waits for another process's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// An open SQLite database.
#[derive(Debug)]
pub(super) struct Sqlite {
    conn: rusqlite::Connection,
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn value(column: ValueRef<'_>, index: usize) -> Result<Value, rusqlite::Error> {
    Ok(match column {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => {
            Value::Text(String::from_utf8(t.to_vec()).map_err(|e| rusqlite::Error::Utf8Error(index, e.utf8_error()))?)
        }
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

impl Sqlite {
    /// Opens (creating if needed) the database file at `path`.
    pub(super) fn open(path: &Path) -> Result<Sqlite, SqlError> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Sqlite { conn })
    }

    pub(super) fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, SqlError> {
        let mut statement = self.conn.prepare_cached(sql)?;
        Ok(statement.execute(rusqlite::params_from_iter(params))?)
    }

    pub(super) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        let mut statement = self.conn.prepare_cached(sql)?;
        let columns = statement.column_count();
        let mut rows = statement.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..columns).map(|i| value(row.get_ref(i)?, i)).collect::<Result<_, _>>()?;
            out.push(Row::new(values));
        }
        Ok(out)
    }

    pub(super) fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        Ok(self.conn.execute_batch(sql)?)
    }

    /// The schema version, kept in SQLite's `user_version`.
    pub(super) fn user_version(&self) -> Result<i64, SqlError> {
        Ok(self.conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    /// Sets the schema version (inside the migration's transaction).
    pub(super) fn set_user_version(&self, version: i64) -> Result<(), SqlError> {
        Ok(self.conn.pragma_update(None, "user_version", version)?)
    }
}
