//! Which database holds a state directory's state. By default the embedded SQLite file
//! `<home>/state.sqlite`; once an operator attaches a PostgreSQL database (`ringfence --database
//! postgres://… <command>`), the file `<home>/database.toml` names it, so that every process on
//! every machine that mounts the directory uses the same database without being told again.
//!
//! The file also holds an identifier that the database keeps too (table `ringfence_store`): a
//! directory cannot be pointed at another directory's database, nor two directories at one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;

/// The file that names an attached database.
pub const MARKER: &str = "database.toml";

/// The embedded database's file.
pub const EMBEDDED: &str = "state.sqlite";

/// The database of one state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded SQLite file.
    Embedded(PathBuf),
    /// A PostgreSQL database.
    Postgres {
        /// Its connection string (`postgres://user:password@host:port/name` or `host=… user=…`).
        url: String,
        /// The identifier this state directory and the database share.
        id: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Marker {
    url: String,
    id: String,
}

impl Database {
    /// The database the state directory at `home` uses.
    pub fn of(home: &Path) -> Result<Database, StoreError> {
        let marker = home.join(MARKER);
        match std::fs::read_to_string(&marker) {
            Ok(text) => {
                let Marker { url, id } = toml::from_str(&text)
                    .map_err(|e| StoreError::Attach { home: home.to_path_buf(), message: format!("{MARKER}: {e}") })?;
                Ok(Database::Postgres { url, id })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Database::Embedded(home.join(EMBEDDED))),
            Err(e) => {
                Err(StoreError::Attach { home: home.to_path_buf(), message: format!("cannot read {MARKER}: {e}") })
            }
        }
    }

    /// Where the database is, for messages: the file, or the server and database name without
    /// the password.
    pub fn location(&self) -> String {
        match self {
            Database::Embedded(path) => path.display().to_string(),
            Database::Postgres { url, .. } => redacted(url),
        }
    }

    /// Makes the PostgreSQL database at `url` the state directory's (the first time), or checks
    /// that it already is. A directory that already has an embedded database keeps it: state is
    /// never split between two databases.
    pub fn attach(home: &Path, url: &str) -> Result<(), StoreError> {
        let refuse = |message: String| StoreError::Attach { home: home.to_path_buf(), message };
        match Database::of(home)? {
            Database::Postgres { url: attached, .. } if attached == url => return Ok(()),
            Database::Postgres { url: attached, .. } => {
                return Err(refuse(format!(
                    "it already uses the PostgreSQL database {}, not {} (see {MARKER})",
                    redacted(&attached),
                    redacted(url)
                )));
            }
            Database::Embedded(path) if path.exists() => {
                return Err(refuse(format!(
                    "it already keeps its state in {}; a state directory's database cannot change",
                    path.display()
                )));
            }
            Database::Embedded(_) => {}
        }
        std::fs::create_dir_all(home).map_err(|e| refuse(format!("cannot create it: {e}")))?;
        let id = super::postgres::claim_identity(url, &new_id()).map_err(|e| refuse(e.to_string()))?;
        let marker = toml::to_string(&Marker { url: url.to_string(), id })
            .map_err(|e| refuse(format!("cannot write {MARKER}: {e}")))?;
        crate::atomic_file::write_new(&home.join(MARKER), &[marker.as_bytes()])
            .map_err(|e| refuse(format!("cannot write {MARKER}: {e}")))
    }
}

/// A fresh random identifier.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// `url` without its password.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // The key=value form: drop any password=… pair.
        return url.split_whitespace().filter(|pair| !pair.starts_with("password=")).collect::<Vec<_>>().join(" ");
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_never_show_a_password() {
        assert_eq!(redacted("postgres://rf:secret@db.example:5432/rf"), "postgres://rf@db.example:5432/rf");
        assert_eq!(redacted("host=db user=rf password=secret dbname=rf"), "host=db user=rf dbname=rf");
        assert_eq!(redacted("postgres://db.example/rf"), "postgres://db.example/rf");
    }

    #[test]
    fn a_directory_with_an_embedded_database_keeps_it() {
        let home = tempfile::tempdir().expect("dir");
        std::fs::write(home.path().join(EMBEDDED), b"").expect("file");
        let refused = Database::attach(home.path(), "postgres://rf@127.0.0.1:1/rf").expect_err("refused");
        assert!(refused.to_string().contains("state.sqlite"), "{refused}");
        assert!(!home.path().join(MARKER).exists());
    }
}
