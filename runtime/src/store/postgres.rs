//! The scale-out backend: a PostgreSQL database that every worker and service of one state
//! directory connects to, on one machine or several.
//!
//! Writers are serialised as SQLite serialises them: a write transaction first takes the
//! transaction-level advisory lock [`WRITE_LOCK`], so every read-then-write sequence inside it
//! (a claim counting its user's running jobs, an audit append reading the chain's head) sees
//! every earlier write and no concurrent one. With one audit chain every audited change is
//! ordered anyway (each entry names the one before it), so little concurrency is given up; and
//! claims need no `FOR UPDATE SKIP LOCKED`, as no two transactions ever contend for one job row.
//! Reads run outside transactions, each statement on its own snapshot, as on SQLite. A connection
//! lost between transactions (the server restarted, the backend was killed) is opened again on
//! the next statement; one lost inside a transaction fails that transaction, whose changes the
//! server then discards.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::error::Error;
use std::str::FromStr;
use std::time::Duration;

use bytes::BytesMut;
use postgres::config::SslMode;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, NoTls, Statement};
use rustls_platform_verifier::BuilderVerifierExt;

use super::connection::SqlError;
use super::value::{DecodeError, Row, Value};

/// The advisory lock every write transaction holds until it ends (`pg_advisory_xact_lock`):
/// the database's counterpart of SQLite's single writer.
pub(super) const WRITE_LOCK: i64 = 0x7269_6e67_0001;

/// How long connecting to the server may take before the command fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's settings for a connection string, with the timeouts and keep-alives every
/// ringfence connection uses: a peer that vanishes without closing its socket (a worker's
/// machine lost) is noticed within about a minute, and its locks released.
pub(crate) fn config(url: &str) -> Result<Config, postgres::Error> {
    let mut config = Config::from_str(url)?;
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .keepalives_interval(Duration::from_secs(10))
        .keepalives_retries(3)
        .application_name(&format!("ringfence {}", std::process::id()));
    Ok(config)
}

/// Opens a connection with [`config`]: over TLS when the connection string says
/// `sslmode=require`, with the server's certificate verified against the host's trust store
/// and its name (as libpq's `verify-full` does); otherwise in clear.
pub(crate) fn connect(url: &str) -> Result<Client, SqlError> {
    let config = config(url)?;
    if config.get_ssl_mode() != SslMode::Require {
        return Ok(config.connect(NoTls)?);
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|e| SqlError::Tls(e.to_string()))?
        .with_no_client_auth();
    Ok(config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))?)
}

/// The tables a database gets when it is attached: the identity (one row, naming the state
/// directory the database belongs to) and the schema version (one row).
const ATTACH: &str = "CREATE TABLE IF NOT EXISTS ringfence_store (id TEXT NOT NULL);
                      CREATE TABLE IF NOT EXISTS ringfence_schema (version BIGINT NOT NULL)";

/// Makes `id` the identity of the (empty) database at `url` and returns it; a database that
/// already belongs to a state directory is refused.
pub(super) fn claim_identity(url: &str, id: &str) -> Result<String, SqlError> {
    let mut client = connect(url)?;
    let mut tx = client.transaction()?;
    tx.batch_execute(ATTACH)?;
    tx.execute("LOCK TABLE ringfence_store", &[])?;
    if let Some(row) = tx.query_opt("SELECT id FROM ringfence_store", &[])? {
        let theirs: String = row.try_get(0)?;
        return Err(SqlError::Foreign(theirs));
    }
    tx.execute("INSERT INTO ringfence_store (id) VALUES ($1)", &[&id])?;
    tx.commit()?;
    Ok(id.to_string())
}

/// An open connection and the statements prepared on it.
pub(super) struct Postgres {
    url: String,
    client: RefCell<Client>,
    statements: RefCell<HashMap<String, Statement>>,
    in_transaction: Cell<bool>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").field("in_transaction", &self.in_transaction.get()).finish_non_exhaustive()
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound as {ty}").into()),
            },
            Value::Real(r) => match *ty {
                Type::FLOAT8 => r.to_sql(ty, out),
                _ => Err(format!("a real cannot be bound as {ty}").into()),
            },
            Value::Text(t) => t.as_str().to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// `?N` parameters as PostgreSQL writes them (`$N`); text in quotes is left as it is.
fn dollar_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// Whether `e` says the connection is gone: closed, or ended by the server (SQLSTATE class 57P:
/// terminated by an administrator, or by the crash of another server process) or by the network
/// (class 08). The client may learn that the socket closed only after it returned the error.
fn lost(e: &SqlError) -> bool {
    match e {
        SqlError::Postgres(e) => {
            e.is_closed() || e.code().is_some_and(|code| ["57P", "08"].iter().any(|c| code.code().starts_with(c)))
        }
        _ => false,
    }
}

fn value(row: &postgres::Row, column: usize) -> Result<Value, DecodeError> {
    let ty = row.columns()[column].type_();
    let decoded = match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(column).map(|v| v.map(Value::Integer)),
        Type::INT4 => row.try_get::<_, Option<i32>>(column).map(|v| v.map(|i| Value::Integer(i.into()))),
        Type::INT2 => row.try_get::<_, Option<i16>>(column).map(|v| v.map(|i| Value::Integer(i.into()))),
        Type::OID => row.try_get::<_, Option<u32>>(column).map(|v| v.map(|i| Value::Integer(i.into()))),
        Type::BOOL => row.try_get::<_, Option<bool>>(column).map(|v| v.map(|b| Value::Integer(b.into()))),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(column).map(|v| v.map(Value::Real)),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
            row.try_get::<_, Option<String>>(column).map(|v| v.map(Value::Text))
        }
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(column).map(|v| v.map(Value::Blob)),
        _ => return Err(DecodeError { column, message: format!("the store reads no {ty} columns") }),
    };
    decoded.map(|v| v.unwrap_or(Value::Null)).map_err(|e| DecodeError { column, message: e.to_string() })
}

impl Postgres {
    /// Connects to the database at `url`.
    pub(super) fn open(url: &str) -> Result<Postgres, SqlError> {
        Ok(Postgres {
            url: url.to_string(),
            client: RefCell::new(connect(url)?),
            statements: RefCell::new(HashMap::new()),
            in_transaction: Cell::new(false),
        })
    }

    /// Checks that the database is the one the state directory names.
    pub(super) fn check_identity(&self, id: &str) -> Result<(), SqlError> {
        let rows = self.query("SELECT id FROM ringfence_store", &[])?;
        let theirs: Option<String> = rows.first().map(|r| r.get(0)).transpose()?;
        match theirs {
            Some(theirs) if theirs == id => Ok(()),
            Some(theirs) => Err(SqlError::Foreign(theirs)),
            None => Err(SqlError::Foreign(String::new())),
        }
    }

    /// The schema version, kept in the table `ringfence_schema`.
    pub(super) fn schema_version(&self) -> Result<i64, SqlError> {
        let rows = self.query("SELECT version FROM ringfence_schema", &[])?;
        Ok(rows.first().map(|r| r.get(0)).transpose()?.unwrap_or(0))
    }

    /// Sets the schema version (inside the migration's transaction).
    pub(super) fn set_schema_version(&self, version: i64) -> Result<(), SqlError> {
        self.execute("DELETE FROM ringfence_schema", &[])?;
        self.execute("INSERT INTO ringfence_schema (version) VALUES (?1)", &[Value::Integer(version)])?;
        Ok(())
    }

    /// Runs `work` on the client. Outside a transaction, a connection found lost (before or
    /// by `work`) is opened again and `work` run once more: outside a transaction the store
    /// runs only reads, `BEGIN` and single idempotent updates, which may run twice.
    fn with_client<T>(&self, work: impl Fn(&Self, &mut Client) -> Result<T, SqlError>) -> Result<T, SqlError> {
        let mut client = self.client.borrow_mut();
        if self.in_transaction.get() {
            return work(self, &mut client);
        }
        if client.is_closed() {
            self.reconnect(&mut client)?;
        }
        match work(self, &mut client) {
            Err(e) if client.is_closed() || lost(&e) => {
                self.reconnect(&mut client)?;
                work(self, &mut client)
            }
            done => done,
        }
    }

    fn reconnect(&self, client: &mut Client) -> Result<(), SqlError> {
        *client = connect(&self.url)?;
        self.statements.borrow_mut().clear();
        Ok(())
    }

    fn prepared(&self, client: &mut Client, sql: &str) -> Result<Statement, SqlError> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(&dollar_parameters(sql))?;
        self.statements.borrow_mut().insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(super) fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, SqlError> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let changed = self.with_client(|db, client| {
            let statement = db.prepared(client, sql)?;
            Ok(client.execute(&statement, &params)?)
        })?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    pub(super) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self.with_client(|db, client| {
            let statement = db.prepared(client, sql)?;
            Ok(client.query(&statement, &params)?)
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let values = (0..row.len()).map(|i| value(row, i)).collect::<Result<_, _>>()?;
            out.push(Row::new(values));
        }
        Ok(out)
    }

    pub(super) fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        self.with_client(|_, client| Ok(client.batch_execute(sql)?))
    }

    pub(super) fn begin_write(&self) -> Result<(), SqlError> {
        self.with_client(|_, client| Ok(client.batch_execute("BEGIN")?))?;
        let mut client = self.client.borrow_mut();
        self.in_transaction.set(true);
        if let Err(e) = client.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]) {
            // The transaction never began for the caller, so nothing else will end it.
            let _ = client.batch_execute("ROLLBACK");
            self.in_transaction.set(false);
            return Err(e.into());
        }
        Ok(())
    }

    pub(super) fn end(&self, commit: bool) -> Result<(), SqlError> {
        let result = self.client.borrow_mut().batch_execute(if commit { "COMMIT" } else { "ROLLBACK" });
        self.in_transaction.set(false);
        Ok(result?)
    }
}

#[cfg(test)]
mod tests {
    use super::dollar_parameters;

    #[test]
    fn parameters_are_renumbered_outside_quotes_only() {
        assert_eq!(
            dollar_parameters("SELECT a FROM t WHERE b = ?1 AND c = '?2' OR d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' OR d = $12"
        );
    }
}
