//! Reading the datasets a project's policy grants.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use std::sync::Arc;

use arrow_array::{RecordBatch, UInt32Array};
use arrow_ipc::reader::FileReader;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use crate::units::{MOUNT_KEY, ROW_COLUMN};

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

/// A granted dataset, read as a stream of Arrow record batches with only the approved columns,
/// and each row's number in [`ROW_COLUMN`] (see [`crate::units`]).
pub struct Dataset {
    reader: FileReader<BufReader<File>>,
    schema: SchemaRef,
    next_row: u32,
}

impl Dataset {
    /// The approved columns and their types, then [`ROW_COLUMN`].
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// `batch` with its rows' numbers added as the last column.
    fn numbered(&mut self, batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
        let first = self.next_row;
        let rows = u32::try_from(batch.num_rows()).ok().and_then(|n| first.checked_add(n)).ok_or_else(|| {
            ArrowError::InvalidArgumentError("the dataset has more rows than a table can name (2^32)".into())
        })?;
        self.next_row = rows;
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(UInt32Array::from_iter_values(first..rows)));
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
    }
}

impl Iterator for Dataset {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.reader.next()?.and_then(|batch| self.numbered(batch)))
    }
}

/// `schema` with [`ROW_COLUMN`] after its columns, tagged with `mount`.
fn with_row_column(schema: &Schema, mount: &str) -> SchemaRef {
    let row = Field::new(ROW_COLUMN, DataType::UInt32, false)
        .with_metadata(std::collections::HashMap::from([(MOUNT_KEY.to_string(), mount.to_string())]));
    let fields: Vec<Arc<Field>> = schema.fields().iter().cloned().chain(std::iter::once(Arc::new(row))).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
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
    let schema = with_row_column(&reader.schema(), mount);
    Ok(Dataset { reader: trust_sandbox_data(reader), schema, next_row: 0 })
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
