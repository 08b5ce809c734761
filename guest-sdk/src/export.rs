//! Writing results to the export queue.
//!
//! Everything written here becomes an export request that passes disclosure checks and an
//! output checker before the researcher can see it.

use std::fmt;
use std::path::PathBuf;

/// Environment variable naming the export directory when the analysis runs natively. Inside the
/// sandbox the directory is `/export`.
pub const EXPORT_DIR_ENV: &str = "RINGFENCE_EXPORT_DIR";

use std::io::Write;

use crate::manifest::{MANIFEST_FILE, Manifest, OutputEntry, OutputKind, UnitsRef, export_name_problem};
use crate::table::Table;
use crate::units::{UNITS_FILE, Units, write_block};

/// Why an export could not be written.
#[derive(Debug)]
pub enum ExportError {
    /// The name is not a safe export name ([`crate::manifest::export_name_problem`]): the
    /// name, and what is wrong with it.
    BadName(String, &'static str),
    /// The manifest already in the export directory cannot be read.
    BadManifest(String),
    /// Writing failed, e.g. because the project's export limit was reached.
    Io(std::io::Error),
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::BadName(name, problem) => write!(
                f,
                "{name:?} is not a valid export name ({problem}): use a plain file name of at most 100 bytes \
                 from A-Z a-z 0-9 . _ -, such as table.csv"
            ),
            ExportError::BadManifest(why) => write!(f, "the export manifest cannot be read: {why}"),
            ExportError::Io(err) => write!(f, "cannot write the export: {err}"),
        }
    }
}

impl std::error::Error for ExportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExportError::BadName(..) | ExportError::BadManifest(_) => None,
            ExportError::Io(err) => Some(err),
        }
    }
}

/// The export directory: `/export` in the sandbox, `$RINGFENCE_EXPORT_DIR` natively.
pub fn dir() -> PathBuf {
    std::env::var_os(EXPORT_DIR_ENV).map_or_else(|| PathBuf::from("/export"), PathBuf::from)
}

/// Checks that `name` is a safe export name (see [`crate::manifest::export_name_problem`]):
/// the host refuses any other.
///
/// ```
/// assert!(ringfence_sdk::export::check_name("table.csv").is_ok());
/// assert!(ringfence_sdk::export::check_name("../escape.csv").is_err());
/// ```
pub fn check_name(name: &str) -> Result<(), ExportError> {
    match export_name_problem(name) {
        Some(problem) => Err(ExportError::BadName(name.to_string(), problem)),
        None => Ok(()),
    }
}

/// Writes `bytes` as the free-form export `name` (a plot, a text, a table the SDK did not
/// build) and records it in the manifest with `description`. Checks cannot judge free-form
/// outputs, so they always go to an output checker.
///
/// ```no_run
/// ringfence_sdk::export::file("summary.txt", b"42 regions\n", "Number of regions in the data")?;
/// # Ok::<(), ringfence_sdk::export::ExportError>(())
/// ```
pub fn file(name: &str, bytes: &[u8], description: &str) -> Result<(), ExportError> {
    check_name(name)?;
    let entry = OutputEntry {
        file: name.to_string(),
        kind: OutputKind::File,
        description: description.to_string(),
        variables: Vec::new(),
        value: None,
        cells: Vec::new(),
        regression: None,
        units: None,
    };
    write_with_entry(name, bytes, entry)
}

/// Writes `table` as the CSV export `name` and records its cells in the export manifest, and
/// their units in [`UNITS_FILE`], so the disclosure checks can judge it.
///
/// ```no_run
/// use ringfence_sdk::table::FrequencyTable;
///
/// let mut table = FrequencyTable::new(&["region"])?;
/// for batch in ringfence_sdk::data::dataset("persons")? {
///     table.add(&batch?)?;
/// }
/// ringfence_sdk::export::table("persons_by_region.csv", &table, "Persons by region")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn table(name: &str, table: &impl Table, description: &str) -> Result<(), ExportError> {
    check_name(name)?;
    let entry = OutputEntry {
        file: name.to_string(),
        kind: table.kind(),
        description: description.to_string(),
        variables: table.variables(),
        value: table.value(),
        cells: table.cells(),
        regression: table.regression(),
        units: table.units().map(append_units).transpose()?,
    };
    write_with_entry(name, table.to_csv().as_bytes(), entry)
}

/// Appends a table's units to [`UNITS_FILE`] and says where they are.
fn append_units(units: Units) -> Result<UnitsRef, ExportError> {
    let block = write_block(&units.cells);
    let mut file =
        std::fs::OpenOptions::new().create(true).append(true).open(dir().join(UNITS_FILE)).map_err(ExportError::Io)?;
    let offset = file.metadata().map_err(ExportError::Io)?.len();
    file.write_all(&block).map_err(ExportError::Io)?;
    Ok(UnitsRef { mount: units.mount, offset, length: block.len() as u64 })
}

/// Writes the output file, then replaces its entry in the manifest.
fn write_with_entry(name: &str, bytes: &[u8], entry: OutputEntry) -> Result<(), ExportError> {
    let manifest_path = dir().join(MANIFEST_FILE);
    let mut manifest = match std::fs::read(&manifest_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ExportError::BadManifest(e.to_string()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => return Err(ExportError::Io(e)),
    };
    manifest.outputs.retain(|o| o.file != name);
    manifest.outputs.push(entry);
    std::fs::write(dir().join(name), bytes).map_err(ExportError::Io)?;
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| ExportError::BadManifest(e.to_string()))?;
    std::fs::write(manifest_path, json).map_err(ExportError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_export_directory_are_refused() {
        let long = "x".repeat(101);
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "..\\x",
            "nul\0byte",
            "manifest.json",
            "manifest.units",
            "red\u{1b}[31m.csv",
            "a b.csv",
            &long,
        ] {
            assert!(matches!(check_name(bad), Err(ExportError::BadName(..))), "{bad:?} accepted");
        }
        assert!(check_name("table-1.csv").is_ok());
        assert!(check_name(&"x".repeat(100)).is_ok());
    }
}
