//! Confirming a manifest from the data: the host recounts each cell from the data the job saw
//! and refuses any cell that claims more units than the data has.
//!
//! A guest may legitimately count fewer units than the data holds (it may filter rows), so the
//! recount is an upper bound; a cell above it is a lie the threshold rule would otherwise
//! believe. Tables over variables the data does not have (derived in the guest) cannot be
//! confirmed and are reviewed.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use arrow::ipc::reader::FileReader;
use ringfence_sdk::manifest::{OutputEntry, OutputKind};

use super::{CheckResult, Finding, Outcome, cell_label, cells_word, units};

/// Units per cell key, as the SDK labels categories.
pub type Counts = rustc_hash::FxHashMap<Vec<String>, u64>;

/// The label the SDK gives a missing category.
const MISSING: &str = "(missing)";

/// Where the checks can recount cells: the data a job saw.
pub trait Recount {
    /// Units per combination of `variables`, counting only units whose `value` (when given) is
    /// present; or why that cannot be done.
    fn counts(&self, variables: &[String], value: Option<&str>) -> Result<Counts, String>;
}

/// The projections a job had mounted: `(columns, data.arrow path)` per mount.
#[derive(Debug, Clone, Default)]
pub struct MountedData {
    mounts: Vec<(Vec<String>, PathBuf)>,
}

impl MountedData {
    /// Data made of the given mounts' columns and Arrow files.
    pub fn new(mounts: Vec<(Vec<String>, PathBuf)>) -> MountedData {
        MountedData { mounts }
    }
}

impl Recount for MountedData {
    fn counts(&self, variables: &[String], value: Option<&str>) -> Result<Counts, String> {
        let wanted: Vec<&str> = variables.iter().map(String::as_str).chain(value).collect();
        let Some((_, path)) =
            self.mounts.iter().find(|(columns, _)| wanted.iter().all(|w| columns.iter().any(|c| c == w)))
        else {
            return Err(format!("no dataset the job saw has all of {wanted:?} (derived in the analysis?)"));
        };
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let reader = FileReader::try_new(BufReader::with_capacity(1 << 20, file), None).map_err(|e| e.to_string())?;
        let schema = reader.schema();
        let indices: Vec<usize> =
            wanted.iter().map(|w| schema.index_of(w)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        let mut counts = Counts::default();
        let mut key = vec![String::new(); variables.len()];
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            let columns: Vec<_> = indices.iter().map(|&i| batch.column(i).clone()).collect();
            let (keys, value_column) = columns.split_at(variables.len());
            for row in 0..batch.num_rows() {
                if value_column.first().is_some_and(|v| v.is_null(row)) {
                    continue;
                }
                for (slot, column) in key.iter_mut().zip(keys) {
                    *slot = label(column.as_ref(), row)?;
                }
                *counts.entry(key.clone()).or_default() += 1;
            }
        }
        Ok(counts)
    }
}

/// A category label exactly as the SDK's table builders write it.
fn label(column: &dyn Array, row: usize) -> Result<String, String> {
    if column.is_null(row) {
        return Ok(MISSING.to_string());
    }
    match column.data_type() {
        DataType::Utf8 => Ok(column.as_string::<i32>().value(row).to_string()),
        DataType::Int64 => Ok(column.as_primitive::<Int64Type>().value(row).to_string()),
        other => Err(format!("a key variable has type {other}, which the checks cannot recount")),
    }
}

/// Checks each cell's count against the recount from the data.
pub(super) fn check(entry: &OutputEntry, data: &dyn Recount) -> CheckResult {
    let value = if entry.kind == OutputKind::Frequency { None } else { entry.value.as_deref() };
    let counts = match data.counts(&entry.variables, value) {
        Ok(counts) => counts,
        Err(why) => {
            return CheckResult {
                check: "recount".into(),
                outcome: Outcome::Review,
                summary: format!("the counts could not be confirmed from the data: {why}"),
                findings: vec![],
                suggestion: Some("tabulate variables of the granted data so the host can confirm the counts".into()),
            };
        }
    };
    let findings: Vec<Finding> = entry
        .cells
        .iter()
        .filter_map(|cell| {
            let actual = counts.get(&cell.key).copied().unwrap_or(0);
            (cell.count > actual).then(|| Finding {
                cell: Some(cell.key.clone()),
                message: format!(
                    "{} claims {}, but the data the job saw has only {actual}",
                    cell_label(&entry.variables, &cell.key),
                    units(cell.count)
                ),
            })
        })
        .collect();
    CheckResult::from_findings(
        "recount",
        Outcome::Fail,
        findings,
        "no cell claims more units than the data the job saw",
        |n| format!("{} claim more units than the data has: the manifest is not true", cells_word(n)),
        None,
    )
}
