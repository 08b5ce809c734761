//! The dataset catalog: microdata imported once, versioned, hashed, and cut down per project.
//!
//! Rule 5 of a remote-access regime: a project may use only the files, and within them only the
//! variables, approved for it. The catalog makes that exact:
//!
//! - [`Catalog::import_csv`] / [`Catalog::import_parquet`] stream a source file into an Arrow IPC
//!   file with its schema, row count, size and SHA-256 ([`DatasetVersion`]); re-importing a name
//!   makes a new version, so a job's record says exactly which bytes it ran on;
//! - [`Catalog::project`] cuts a version down to a grant's columns and rows, once per
//!   (version, grant), and that projection is all a guest ever sees.
//!
//! ```text
//! <home>/catalog/<name>/<version>/data.arrow   the imported data (Arrow IPC file format)
//! <home>/catalog/<name>/<version>/meta.json    its DatasetVersion
//! <home>/projections/<key>/data.arrow          one grant's view: its columns, its rows
//! <home>/projections/<key>/schema.json         what the guest may read
//! ```
//!
//! Every write happens in a hidden temporary directory that is renamed into place, so nothing
//! half-imported or half-projected is ever visible.

mod categories;
mod demo;
mod filter;
mod import;
mod projection;
mod schema;
mod staging;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use categories::{MAX_CATEGORIES, category_type};
pub use demo::DemoPopulation;
pub use filter::{FilterError, RowFilter};
pub use import::{ImportProgress, ProgressUnit};
pub use projection::Projection;
pub use schema::{ColumnInfo, SchemaFile};

/// Why a catalog operation failed, naming the file, line or column involved.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A dataset name that could be a path or is otherwise unusable.
    #[error("{name:?} is not a valid dataset name: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No such dataset, or no such version of it.
    #[error("dataset {name}{} is not in the catalog", version.map(|v| format!(" version {v}")).unwrap_or_default())]
    NotFound {
        /// The dataset name.
        name: String,
        /// The version asked for, if any.
        version: Option<u32>,
    },
    /// The source file is empty or has no header.
    #[error("{}: the file is empty; a dataset needs a header row", file.display())]
    EmptyFile {
        /// The source file.
        file: PathBuf,
    },
    /// Two columns share a name.
    #[error("{}: column {column:?} appears more than once in the header", file.display())]
    DuplicateColumn {
        /// The source file.
        file: PathBuf,
        /// The repeated name.
        column: String,
    },
    /// The source could not be parsed: a ragged row, a value of the wrong type, a truncated
    /// Parquet file. The message names the line or row and column where the reader says.
    #[error("{}: {message}", file.display())]
    BadSource {
        /// The source file.
        file: PathBuf,
        /// What the reader reported.
        message: String,
    },
    /// A schema file that does not describe the source.
    #[error("{}: {message}", file.display())]
    BadSchema {
        /// The schema file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A dataset version still granted to a live project.
    #[error("dataset {name} version {version} is used by live project(s) {}; remove the grants first", projects.join(", "))]
    InUse {
        /// The dataset.
        name: String,
        /// The version.
        version: u32,
        /// Projects whose policies grant it and have not expired.
        projects: Vec<String>,
    },
    /// A stored file that cannot be read back as Arrow (a corrupted catalog).
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The stored file.
        path: PathBuf,
        /// What the reader reported.
        message: String,
    },
    /// The file system refused.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl CatalogError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CatalogError + use<> {
        let path = path.to_path_buf();
        move |source| CatalogError::Io { action, path, source }
    }
}

/// The format of an imported source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Made by `ringfence dataset generate-demo`.
    Generated,
}

/// One imported version of a dataset, as recorded in its `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetVersion {
    /// Dataset name.
    pub name: String,
    /// Version number, from 1.
    pub version: u32,
    /// The columns, in order.
    pub columns: Vec<ColumnInfo>,
    /// Number of rows.
    pub rows: u64,
    /// Size of the stored Arrow IPC file, in bytes.
    pub bytes: u64,
    /// SHA-256 (hex) of the stored Arrow IPC file.
    pub sha256: String,
    /// The source file's name, or the generator's description.
    pub source: String,
    /// The source's format.
    pub format: SourceFormat,
    /// When the version was imported.
    pub imported_at: DateTime<Utc>,
}

/// The catalog under a state directory.
#[derive(Debug, Clone)]
pub struct Catalog {
    datasets: PathBuf,
    projections: PathBuf,
}

/// Checks that a dataset name is safe as a directory name: `[a-z0-9_-]`, 1 to 64 characters,
/// starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), CatalogError> {
    let invalid = |reason| Err(CatalogError::InvalidName { name: name.to_string(), reason });
    if name.is_empty() || name.len() > 64 {
        return invalid("use 1 to 64 characters");
    }
    if name.contains('/') || name.contains("..") || name.contains('\\') {
        return invalid("it may not contain '/', '\\' or '..'");
    }
    let first_ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !first_ok || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
        return invalid("use lower-case letters, digits, '_' and '-', starting with a letter or digit");
    }
    Ok(())
}

impl Catalog {
    /// Opens (creating if needed) the catalog kept under the state directory `home`.
    pub fn open(home: &Path) -> Result<Catalog, CatalogError> {
        let catalog = Catalog { datasets: home.join("catalog"), projections: home.join("projections") };
        for dir in [&catalog.datasets, &catalog.projections] {
            std::fs::create_dir_all(dir).map_err(CatalogError::io("create", dir))?;
        }
        Ok(catalog)
    }

    fn version_dir(&self, name: &str, version: u32) -> PathBuf {
        self.datasets.join(name).join(version.to_string())
    }

    /// Removes the staging directories of imports and projections that a crashed process left
    /// behind; returns how many. Call only under the state directory's exclusive lock.
    pub fn sweep_staging(&self) -> Result<usize, CatalogError> {
        Ok(staging::sweep(&self.datasets)? + staging::sweep(&self.projections)?)
    }

    /// Every version of every dataset, by name then version.
    pub fn list(&self) -> Result<Vec<DatasetVersion>, CatalogError> {
        let mut all = Vec::new();
        for name in self.names()? {
            all.extend(self.versions(&name)?);
        }
        Ok(all)
    }

    fn names(&self) -> Result<Vec<String>, CatalogError> {
        let mut names: Vec<String> =
            read_dir_names(&self.datasets)?.into_iter().filter(|n| check_name(n).is_ok()).collect();
        names.sort();
        Ok(names)
    }

    /// Every version of dataset `name`, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<DatasetVersion>, CatalogError> {
        check_name(name)?;
        let dir = self.datasets.join(name);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut numbers: Vec<u32> = read_dir_names(&dir)?.iter().filter_map(|n| n.parse().ok()).collect();
        numbers.sort_unstable();
        numbers.into_iter().map(|v| self.get(name, v)).collect()
    }

    /// Version `version` of dataset `name`.
    pub fn get(&self, name: &str, version: u32) -> Result<DatasetVersion, CatalogError> {
        check_name(name)?;
        let meta = self.version_dir(name, version).join("meta.json");
        let text = match std::fs::read(&meta) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CatalogError::NotFound { name: name.to_string(), version: Some(version) });
            }
            Err(e) => return Err(CatalogError::io("read", &meta)(e)),
        };
        serde_json::from_slice(&text).map_err(|e| CatalogError::Corrupt { path: meta, message: e.to_string() })
    }

    /// The newest version of dataset `name`.
    pub fn latest(&self, name: &str) -> Result<DatasetVersion, CatalogError> {
        self.versions(name)?.pop().ok_or_else(|| CatalogError::NotFound { name: name.to_string(), version: None })
    }

    /// The stored Arrow IPC file of a version: operators' and projections' input, never a guest's.
    pub fn data_path(&self, dataset: &DatasetVersion) -> PathBuf {
        self.version_dir(&dataset.name, dataset.version).join("data.arrow")
    }

    /// Removes a version, refusing while `live_projects` (projects whose policies grant it and
    /// have not expired) is not empty.
    pub fn remove(&self, name: &str, version: u32, live_projects: Vec<String>) -> Result<(), CatalogError> {
        self.get(name, version)?;
        if !live_projects.is_empty() {
            return Err(CatalogError::InUse { name: name.to_string(), version, projects: live_projects });
        }
        let dir = self.version_dir(name, version);
        let trash = self.datasets.join(format!(".removing-{name}-{version}-{}", uuid::Uuid::now_v7()));
        std::fs::rename(&dir, &trash).map_err(CatalogError::io("remove", &dir))?;
        std::fs::remove_dir_all(&trash).map_err(CatalogError::io("remove", &trash))
    }
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>, CatalogError> {
    let entries = std::fs::read_dir(dir).map_err(CatalogError::io("read", dir))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(CatalogError::io("read", dir))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_be_paths_are_refused() {
        for bad in ["", "a/b", "..", "../x", "x..y", "Persons", ".hidden", "-x", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["persons", "p1", "income_2024", "firm-register"] {
            assert!(check_name(good).is_ok(), "{good:?} refused");
        }
    }
}
