//! Writing a catalog entry where nobody can see it until it is complete.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::csv::WriterBuilder;
use arrow::datatypes::Schema;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use sha2::{Digest, Sha256};

use super::CatalogError;
use super::schema::{SchemaFile, describe};

/// A hidden directory that is removed unless [`Staging::publish`] renames it into place.
pub(super) struct Staging {
    dir: PathBuf,
    published: bool,
}

impl Staging {
    /// Creates `<parent>/.<purpose>-<uuid>`.
    pub(super) fn new(parent: &Path, purpose: &str) -> Result<Staging, CatalogError> {
        let dir = parent.join(format!(".{purpose}-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).map_err(CatalogError::io("create", &dir))?;
        Ok(Staging { dir, published: false })
    }

    pub(super) fn path(&self) -> &Path {
        &self.dir
    }

    /// Renames the directory to `target`. When `target` already exists (someone else published
    /// there first) the staging directory is handed back untouched.
    pub(super) fn publish(mut self, target: &Path) -> Result<Option<Staging>, CatalogError> {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(CatalogError::io("create", parent))?;
        }
        match std::fs::rename(&self.dir, target) {
            Ok(()) => {
                self.published = true;
                Ok(None)
            }
            Err(_) if target.exists() => Ok(Some(self)),
            Err(e) => Err(CatalogError::io("move into place", target)(e)),
        }
    }
}

/// Removes every staging directory a crashed process left directly under `parent`. Only safe
/// while no other process is staging (under the state directory's exclusive lock).
pub(super) fn sweep(parent: &Path) -> Result<usize, CatalogError> {
    let entries = match std::fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(CatalogError::io("read", parent)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(CatalogError::io("read", parent))?;
        let name = entry.file_name();
        let hidden = name.to_str().is_some_and(|n| n.starts_with('.') && n.contains('-'));
        if hidden && entry.path().is_dir() {
            std::fs::remove_dir_all(entry.path()).map_err(CatalogError::io("remove", &entry.path()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What [`write_arrow`] wrote.
pub(super) struct Written {
    /// Rows written.
    pub rows: u64,
    /// Size of the Arrow file.
    pub bytes: u64,
    /// SHA-256 of the Arrow file.
    pub sha256: String,
}

/// Streams `batches` into an Arrow IPC file at `path` and a `schema.json` beside it, hashing
/// as it writes, and also into a CSV file (with a header row) at `csv` when given; the files
/// are synced before this returns. `source_error` turns a failing batch into the caller's error
/// (it names the source file).
pub(super) fn write_arrow<E>(
    path: &Path,
    csv: Option<&Path>,
    schema: &Arc<Schema>,
    batches: impl Iterator<Item = Result<RecordBatch, E>>,
    source_error: impl Fn(E) -> CatalogError,
) -> Result<Written, CatalogError> {
    let corrupt =
        |e: arrow::error::ArrowError| CatalogError::Corrupt { path: path.to_path_buf(), message: e.to_string() };
    let file = File::create(path).map_err(CatalogError::io("create", path))?;
    let sink = Hashing { inner: BufWriter::with_capacity(1 << 20, file), hasher: Sha256::new(), bytes: 0 };
    let mut writer = FileWriter::try_new(sink, schema).map_err(corrupt)?;
    let mut csv_writer = match csv {
        Some(csv_path) => {
            let file = File::create(csv_path).map_err(CatalogError::io("create", csv_path))?;
            Some(WriterBuilder::new().with_header(true).build(BufWriter::with_capacity(1 << 20, file)))
        }
        None => None,
    };
    let mut rows = 0u64;
    for batch in batches {
        let batch = batch.map_err(&source_error)?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(corrupt)?;
        if let Some(csv_writer) = csv_writer.as_mut() {
            csv_writer.write(&batch).map_err(corrupt)?;
        }
    }
    if let (Some(csv_writer), Some(csv_path)) = (csv_writer, csv) {
        let file =
            csv_writer.into_inner().into_inner().map_err(|e| CatalogError::io("write", csv_path)(e.into_error()))?;
        file.sync_all().map_err(CatalogError::io("sync", csv_path))?;
    }
    writer.finish().map_err(corrupt)?;
    let Hashing { inner, hasher, bytes } = writer.into_inner().map_err(corrupt)?;
    let file = inner.into_inner().map_err(|e| CatalogError::io("write", path)(e.into_error()))?;
    file.sync_all().map_err(CatalogError::io("sync", path))?;
    let schema_path = path.with_file_name("schema.json");
    let description = SchemaFile { columns: describe(schema), rows: Some(rows) };
    let json =
        serde_json::to_vec_pretty(&description).map_err(|e| CatalogError::io("encode", &schema_path)(e.into()))?;
    std::fs::write(&schema_path, json).map_err(CatalogError::io("write", &schema_path))?;
    Ok(Written { rows, bytes, sha256: hex::encode(hasher.finalize()) })
}

/// Writes `value` as pretty JSON to `path`.
pub(super) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), CatalogError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| CatalogError::io("encode", path)(e.into()))?;
    std::fs::write(path, json).map_err(CatalogError::io("write", path))
}
