//! Importing CSV and Parquet files into the catalog, streaming, in bounded memory.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use arrow::csv::reader::{Format, ReaderBuilder};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::FileReader;
use arrow::record_batch::RecordBatch;
use chrono::Utc;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::categories::{Dictionaries, Distinct, decode, decoded_schema};
use super::schema::{SchemaFile, describe, to_arrow};
use super::staging::{Staging, Written, write_arrow, write_json};
use super::{Catalog, CatalogError, DatasetVersion, SourceFormat, check_name};

/// Rows per record batch: large enough for fast columnar work, small enough that an import's
/// memory stays a few tens of MiB whatever the file size.
pub(super) const BATCH_ROWS: usize = 64 * 1024;

/// Rows read to infer column types when no schema file is given.
const INFER_ROWS: usize = 10_000;

/// What an import's progress is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressUnit {
    /// Bytes of the source file (CSV).
    Bytes,
    /// Rows (Parquet, generated data).
    Rows,
}

/// Receives an import's progress; the binary draws it as a progress bar.
pub trait ImportProgress {
    /// The total to expect, once known.
    fn start(&self, total: u64, unit: ProgressUnit);
    /// How far the import has got.
    fn advance_to(&self, done: u64);
}

/// Progress that goes nowhere.
impl ImportProgress for () {
    fn start(&self, _: u64, _: ProgressUnit) {}
    fn advance_to(&self, _: u64) {}
}

/// A reader that reports how many bytes have passed.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    progress: &'a dyn ImportProgress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.advance_to(self.done);
        Ok(n)
    }
}

fn bad_source(file: &Path) -> impl Fn(arrow::error::ArrowError) -> CatalogError + '_ {
    move |e| CatalogError::BadSource { file: file.to_path_buf(), message: e.to_string() }
}

/// Restates arrow-csv's value errors ("Error while parsing value 'x' as type 'Int64' for column
/// 2 at line 41. Row data: ..."; its line is the 0-based record index, header included) as the
/// 1-based file line and the column's name, without echoing the row. Other errors (ragged rows
/// already name their 1-based line) pass through.
fn csv_error<'a>(file: &'a Path, schema: &'a Schema) -> impl Fn(arrow::error::ArrowError) -> CatalogError + 'a {
    move |e| {
        let text = e.to_string();
        let restated = (|| {
            let rest = text.split_once("Error while parsing value '")?.1;
            let (value, rest) = rest.split_once("' as type '")?;
            let (data_type, rest) = rest.split_once("' for column ")?;
            let (column, rest) = rest.split_once(" at line ")?;
            let record: usize = rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
            let name = schema.fields().get(column.parse::<usize>().ok()?)?.name();
            Some(format!("line {}, column {name:?}: {value:?} is not a valid {data_type}", record + 1))
        })();
        CatalogError::BadSource { file: file.to_path_buf(), message: restated.unwrap_or(text) }
    }
}

fn check_unique_columns(file: &Path, schema: &Schema) -> Result<(), CatalogError> {
    let mut seen = HashSet::new();
    for field in schema.fields() {
        if !seen.insert(field.name().as_str()) {
            return Err(CatalogError::DuplicateColumn { file: file.to_path_buf(), column: field.name().clone() });
        }
    }
    Ok(())
}

/// The header row's names, as the CSV reader will see them.
fn csv_header(file: &Path) -> Result<Vec<String>, CatalogError> {
    let mut reader = BufReader::new(File::open(file).map_err(CatalogError::io("open", file))?);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| CatalogError::BadSource { file: file.to_path_buf(), message: e.to_string() })?;
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Err(CatalogError::EmptyFile { file: file.to_path_buf() });
    }
    Ok(line.split(',').map(|name| name.trim_matches('"').to_string()).collect())
}

impl Catalog {
    /// Imports a CSV file with a header row as a new version of dataset `name`. Column types
    /// come from `schema_file` when given, else are inferred from the first rows; a later value
    /// that does not parse as its column's type fails the import with its line and column.
    pub fn import_csv(
        &self,
        name: &str,
        file: &Path,
        schema_file: Option<&Path>,
        progress: &dyn ImportProgress,
    ) -> Result<DatasetVersion, CatalogError> {
        check_name(name)?;
        let header = csv_header(file)?;
        let schema: SchemaRef = match schema_file {
            Some(path) => csv_schema_from_file(path, &header)?,
            None => {
                let mut source = File::open(file).map_err(CatalogError::io("open", file))?;
                let (schema, _) = Format::default()
                    .with_header(true)
                    .infer_schema(&mut source, Some(INFER_ROWS))
                    .map_err(bad_source(file))?;
                Arc::new(schema)
            }
        };
        check_unique_columns(file, &schema)?;
        let mut source = File::open(file).map_err(CatalogError::io("open", file))?;
        let total = source.seek(SeekFrom::End(0)).and_then(|end| source.seek(SeekFrom::Start(0)).map(|_| end));
        progress.start(total.map_err(CatalogError::io("read", file))?, ProgressUnit::Bytes);
        let counting = Counting { inner: source, done: 0, progress };
        let reader = ReaderBuilder::new(Arc::clone(&schema))
            .with_header(true)
            .with_batch_size(BATCH_ROWS)
            .build(BufReader::with_capacity(1 << 20, counting))
            .map_err(bad_source(file))?;
        self.store(name, file, SourceFormat::Csv, &schema, reader, csv_error(file, &schema))
    }

    /// Imports a Parquet file as a new version of dataset `name`, keeping its column types.
    pub fn import_parquet(
        &self,
        name: &str,
        file: &Path,
        progress: &dyn ImportProgress,
    ) -> Result<DatasetVersion, CatalogError> {
        check_name(name)?;
        let source = File::open(file).map_err(CatalogError::io("open", file))?;
        let parquet_error = |e: parquet::errors::ParquetError| CatalogError::BadSource {
            file: file.to_path_buf(),
            message: e.to_string(),
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(source).map_err(parquet_error)?;
        let schema = decoded_schema(builder.schema());
        check_unique_columns(file, &schema)?;
        let total = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        progress.start(total, ProgressUnit::Rows);
        let reader = builder.with_batch_size(BATCH_ROWS).build().map_err(parquet_error)?;
        let mut done = 0u64;
        let batches = reader.map(|batch| {
            let batch = decode(&batch?, &schema)?;
            done += batch.num_rows() as u64;
            progress.advance_to(done);
            Ok(batch)
        });
        self.store(name, file, SourceFormat::Parquet, &schema, batches, bad_source(file))
    }

    /// Writes `batches` as the next version of `name`: staged, synced, then renamed into place.
    pub(super) fn store<E>(
        &self,
        name: &str,
        source: &Path,
        format: SourceFormat,
        schema: &SchemaRef,
        batches: impl Iterator<Item = Result<RecordBatch, E>>,
        source_error: impl Fn(E) -> CatalogError,
    ) -> Result<DatasetVersion, CatalogError> {
        let staging = Staging::new(&self.datasets, "import")?;
        let plain = staging.path().join("plain.arrow");
        let mut distinct = Distinct::new(schema);
        let batches = batches.inspect(|batch| {
            if let Ok(batch) = batch {
                distinct.observe(batch);
            }
        });
        let written = write_arrow(&plain, None, schema, batches, source_error)?;
        let data = staging.path().join("data.arrow");
        let (written, schema) = categorize(&plain, &data, written, schema, distinct.dictionaries())?;
        let mut version = self.versions(name)?.last().map_or(1, |v| v.version + 1);
        let mut meta = DatasetVersion {
            name: name.to_string(),
            version,
            columns: describe(&schema),
            rows: written.rows,
            bytes: written.bytes,
            sha256: written.sha256,
            source: source
                .file_name()
                .map_or_else(|| source.display().to_string(), |n| n.to_string_lossy().into_owned()),
            format,
            imported_at: Utc::now(),
        };
        // Another import of the same name may take this number first; then take the next one.
        let mut staging = staging;
        loop {
            write_json(&staging.path().join("meta.json"), &meta)?;
            match staging.publish(&self.version_dir(name, version))? {
                None => return Ok(meta),
                Some(back) => staging = back,
            }
            version += 1;
            meta.version = version;
        }
    }
}

/// Rewrites the just-imported file `plain` to `data` with the columns `dictionaries` (gathered
/// while `plain` was written) stored as categories (see [`super::categories`]); with none, the
/// file is only renamed. Returns what is now at `data` and its schema.
fn categorize(
    plain: &Path,
    data: &Path,
    written: Written,
    schema: &SchemaRef,
    dictionaries: Option<Dictionaries>,
) -> Result<(Written, SchemaRef), CatalogError> {
    let Some(dictionaries) = dictionaries else {
        std::fs::rename(plain, data).map_err(CatalogError::io("rename", plain))?;
        return Ok((written, Arc::clone(schema)));
    };
    let corrupt = |e: ArrowError| CatalogError::Corrupt { path: plain.to_path_buf(), message: e.to_string() };
    let file = File::open(plain).map_err(CatalogError::io("open", plain))?;
    let reader = FileReader::try_new(BufReader::with_capacity(1 << 20, file), None).map_err(corrupt)?;
    let encoded = dictionaries.schema(schema);
    let batches = reader.map(|batch| batch.and_then(|batch| dictionaries.encode(&batch, &encoded)));
    let written = write_arrow(data, None, &encoded, batches, corrupt)?;
    std::fs::remove_file(plain).map_err(CatalogError::io("remove", plain))?;
    Ok((written, encoded))
}

/// Reads an import's schema file and checks it names the header's columns in order.
fn csv_schema_from_file(path: &Path, header: &[String]) -> Result<SchemaRef, CatalogError> {
    let bad = |message: String| CatalogError::BadSchema { file: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(CatalogError::io("read", path))?;
    let file: SchemaFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let names: Vec<&str> = file.columns.iter().map(|c| c.name.as_str()).collect();
    if names != header {
        return Err(bad(format!("the schema lists columns {names:?} but the CSV header has {header:?}")));
    }
    to_arrow(&file.columns).map_err(bad)
}
