//! Projections: a dataset version cut down to one grant's columns and rows — the only data a
//! guest ever sees.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::ipc::reader::FileReader;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::filter::RowFilter;
use super::staging::{Staging, write_arrow, write_json};
use super::{Catalog, CatalogError, DatasetVersion};

/// A built projection, as recorded in its `projection.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// The directory to mount at `/data/<mount>/`: `data.arrow` and `schema.json`, nothing else.
    #[serde(skip)]
    pub dir: PathBuf,
    /// The dataset version it was cut from.
    pub dataset: String,
    /// That version's number.
    pub version: u32,
    /// That version's SHA-256.
    pub dataset_sha256: String,
    /// The columns kept, in grant order.
    pub columns: Vec<String>,
    /// The row filter applied, if any.
    pub filter: Option<RowFilter>,
    /// Whether a CSV copy (`data.csv`) sits next to `data.arrow`, for guests without Arrow.
    #[serde(default)]
    pub csv: bool,
    /// Rows kept.
    pub rows: u64,
    /// SHA-256 of the projection's `data.arrow`.
    pub sha256: String,
    /// Whether this call found the projection already built.
    #[serde(skip)]
    pub reused: bool,
}

/// The cache key of a projection: the dataset's bytes, the columns, the filter, the formats.
fn key(dataset_sha256: &str, columns: &[String], filter: Option<&RowFilter>, csv: bool) -> String {
    let mut hasher = Sha256::new();
    hasher.update(dataset_sha256.as_bytes());
    for column in columns {
        hasher.update(b"\x00");
        hasher.update(column.as_bytes());
    }
    hasher.update(b"\x01");
    hasher.update(filter.map(|f| f.to_string()).unwrap_or_default().as_bytes());
    hasher.update(if csv { "\x02csv" } else { "\x02" });
    hex::encode(hasher.finalize())
}

impl Catalog {
    /// The projection of `dataset` to `columns` (in that order) and the rows `filter` keeps,
    /// as `data.arrow` and, when `csv`, also `data.csv`; built on first use and reused after.
    pub fn project(
        &self,
        dataset: &DatasetVersion,
        columns: &[String],
        filter: Option<&RowFilter>,
        csv: bool,
    ) -> Result<Projection, CatalogError> {
        let root = self.projections.join(key(&dataset.sha256, columns, filter, csv));
        let dir = root.join("data");
        let record = root.join("projection.json");
        if let Ok(text) = std::fs::read(&record) {
            let mut projection: Projection = serde_json::from_slice(&text)
                .map_err(|e| CatalogError::Corrupt { path: record.clone(), message: e.to_string() })?;
            projection.dir = dir;
            projection.reused = true;
            return Ok(projection);
        }
        let source = self.data_path(dataset);
        let corrupt = |path: &Path| {
            let path = path.to_path_buf();
            move |e: arrow::error::ArrowError| CatalogError::Corrupt { path: path.clone(), message: e.to_string() }
        };
        let reader = FileReader::try_new(
            BufReader::with_capacity(1 << 20, File::open(&source).map_err(CatalogError::io("open", &source))?),
            None,
        )
        .map_err(corrupt(&source))?;
        let full = reader.schema();
        let indices =
            columns.iter().map(|c| full.index_of(c)).collect::<Result<Vec<_>, _>>().map_err(corrupt(&source))?;
        let schema = Arc::new(full.project(&indices).map_err(corrupt(&source))?);
        let batches = reader.map(|batch| {
            let batch = batch?;
            let kept = match filter {
                Some(filter) => filter.apply(&batch)?,
                None => batch,
            };
            kept.project(&indices)
        });
        let staging = Staging::new(&self.projections, "projection")?;
        let data = staging.path().join("data");
        std::fs::create_dir(&data).map_err(CatalogError::io("create", &data))?;
        let csv_path = csv.then(|| data.join("data.csv"));
        let written = write_arrow(&data.join("data.arrow"), csv_path.as_deref(), &schema, batches, corrupt(&source))?;
        let projection = Projection {
            dir: dir.clone(),
            dataset: dataset.name.clone(),
            version: dataset.version,
            dataset_sha256: dataset.sha256.clone(),
            columns: columns.to_vec(),
            filter: filter.cloned(),
            csv,
            rows: written.rows,
            sha256: written.sha256,
            reused: false,
        };
        write_json(&staging.path().join("projection.json"), &projection)?;
        // Someone else may have built the same projection meanwhile; theirs is identical.
        staging.publish(&root)?;
        Ok(projection)
    }

    /// The directory a recorded projection was mounted from (e.g. one named in a job record),
    /// for re-reading exactly the data a job saw.
    pub fn projection_dir(&self, projection: &Projection) -> PathBuf {
        let key = key(&projection.dataset_sha256, &projection.columns, projection.filter.as_ref(), projection.csv);
        self.projections.join(key).join("data")
    }

    /// The Arrow schema of a stored dataset version.
    pub fn schema(&self, dataset: &DatasetVersion) -> Result<Arc<Schema>, CatalogError> {
        let path = self.data_path(dataset);
        let file = File::open(&path).map_err(CatalogError::io("open", &path))?;
        let reader = FileReader::try_new(BufReader::new(file), None)
            .map_err(|e| CatalogError::Corrupt { path: path.clone(), message: e.to_string() })?;
        Ok(reader.schema())
    }
}
