//! Reading the datasets a project's policy grants.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_ipc::reader::FileReader;
use arrow_schema::{ArrowError, SchemaRef};

/// Environment variable naming the data root when the analysis runs natively. Inside the
/// sandbox no environment variables exist and the root is `/data`.
pub const DATA_DIR_ENV: &str = "RINGFENCE_DATA_DIR";

/// The file holding a granted dataset's rows, inside its mount directory.
pub const DATA_FILE: &str = "data.arrow";

/// The directory holding the dataset granted under `mount`: `/data/<mount>` in the sandbox,
/// `$RINGFENCE_DATA_DIR/<mount>` natively.
///
/// ```
/// let dir = ringfence_sdk::data::dir("persons");
/// assert!(dir.ends_with("persons"));
/// ```
pub fn dir(mount: &str) -> PathBuf {
    let root = std::env::var_os(DATA_DIR_ENV).map_or_else(|| PathBuf::from("/data"), PathBuf::from);
    root.join(mount)
}

/// A granted dataset, read as a stream of Arrow record batches with only the approved columns.
pub struct Dataset {
    reader: FileReader<BufReader<File>>,
}

impl Dataset {
    /// The approved columns and their types.
    pub fn schema(&self) -> SchemaRef {
        self.reader.schema()
    }
}

impl Iterator for Dataset {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.reader.next()
    }
}

/// Opens the dataset granted under `mount`.
///
/// ```no_run
/// let persons = ringfence_sdk::data::dataset("persons")?;
/// println!("{} columns", persons.schema().fields().len());
/// # Ok::<(), ringfence_sdk::arrow_schema::ArrowError>(())
/// ```
pub fn dataset(mount: &str) -> Result<Dataset, ArrowError> {
    let path = dir(mount).join(DATA_FILE);
    let file = File::open(&path).map_err(|e| ArrowError::IoError(format!("cannot open {}: {e}", path.display()), e))?;
    let reader = FileReader::try_new(BufReader::with_capacity(1 << 20, file), None)?;
    Ok(Dataset { reader: trust_sandbox_data(reader) })
}

/// Inside the sandbox, `/data` only ever holds a projection the host wrote itself with Arrow's
/// writer, from data it validated on import, mounted read-only: re-validating every offset and
/// every string's UTF-8 would cost about a third of a typical tabulation. Natively, where the
/// file is whatever the developer points `RINGFENCE_DATA_DIR` at, everything is validated.
#[cfg(target_family = "wasm")]
fn trust_sandbox_data<R: std::io::Read + std::io::Seek>(reader: FileReader<R>) -> FileReader<R> {
    // SAFETY: see above: the file is the host's own Arrow IPC output, and should it ever be
    // malformed, the damage stays inside this guest's sandbox.
    unsafe { reader.with_skip_validation(true) }
}

/// Natively, the file is validated as it is read (see the wasm version).
#[cfg(not(target_family = "wasm"))]
fn trust_sandbox_data<R: std::io::Read + std::io::Seek>(reader: FileReader<R>) -> FileReader<R> {
    reader
}
