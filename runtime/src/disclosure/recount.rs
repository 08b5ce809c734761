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

use arrow::array::{Array, ArrayData, AsArray};
use arrow::datatypes::{DataType, Int32Type, Int64Type};
use arrow::ipc::reader::FileReader;
use ringfence_sdk::manifest::{OutputEntry, OutputKind};

use super::{Check, CheckResult, Finding, Outcome, cell_label, cells_word, units};

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
        let open = |projection| {
            let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            FileReader::try_new(BufReader::with_capacity(1 << 20, file), projection).map_err(|e| e.to_string())
        };
        let schema = open(None)?.schema();
        let indices: Vec<usize> =
            wanted.iter().map(|w| schema.index_of(w)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        // Only the wanted columns are decoded, in `wanted` order.
        let reader = open(Some(indices))?;
        let mut interned: Vec<Categories> = variables.iter().map(|_| Categories::default()).collect();
        let mut by_id: rustc_hash::FxHashMap<Vec<u32>, u64> = rustc_hash::FxHashMap::default();
        let mut key = vec![0u32; variables.len()];
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            let (keys, value_column) = batch.columns().split_at(variables.len());
            let ids: Vec<Vec<u32>> =
                keys.iter().zip(&mut interned).map(|(column, c)| c.ids(column.as_ref())).collect::<Result<_, _>>()?;
            for row in 0..batch.num_rows() {
                if value_column.first().is_some_and(|v| v.is_null(row)) {
                    continue;
                }
                for (slot, column) in key.iter_mut().zip(&ids) {
                    *slot = column[row];
                }
                match by_id.get_mut(key.as_slice()) {
                    Some(units) => *units += 1,
                    None => {
                        by_id.insert(key.clone(), 1);
                    }
                }
            }
        }
        Ok(by_id
            .into_iter()
            .map(|(ids, units)| {
                let labels = ids.iter().zip(&interned).map(|(&id, c)| c.labels[id as usize].clone()).collect();
                (labels, units)
            })
            .collect())
    }
}

/// The categories of one key variable seen so far, each with a small number, so that rows are
/// counted without building their labels.
#[derive(Default)]
struct Categories {
    labels: Vec<String>,
    by_text: rustc_hash::FxHashMap<String, u32>,
    by_integer: rustc_hash::FxHashMap<i64, u32>,
    /// The last dictionary seen and its values' numbers: a file shares one across batches.
    dictionary: Option<(ArrayData, Vec<u32>)>,
}

impl Categories {
    fn intern(&mut self, label: &str) -> u32 {
        if let Some(&id) = self.by_text.get(label) {
            return id;
        }
        let id = self.labels.len() as u32;
        self.labels.push(label.to_string());
        self.by_text.insert(label.to_string(), id);
        id
    }

    fn intern_integer(&mut self, value: i64) -> u32 {
        if let Some(&id) = self.by_integer.get(&value) {
            return id;
        }
        let id = self.intern(&value.to_string());
        self.by_integer.insert(value, id);
        id
    }

    /// The number of each row's category in `column`, labelled exactly as the SDK's table
    /// builders do.
    fn ids(&mut self, column: &dyn Array) -> Result<Vec<u32>, String> {
        let missing = self.intern(MISSING);
        let nulls = column.logical_nulls();
        let present = |row: usize| nulls.as_ref().is_none_or(|n| n.is_valid(row));
        match column.data_type() {
            DataType::Utf8 => {
                let values = column.as_string::<i32>();
                Ok((0..column.len())
                    .map(|row| if present(row) { self.intern(values.value(row)) } else { missing })
                    .collect())
            }
            DataType::Int64 => {
                let values = column.as_primitive::<Int64Type>();
                Ok((0..column.len())
                    .map(|row| if present(row) { self.intern_integer(values.value(row)) } else { missing })
                    .collect())
            }
            DataType::Dictionary(key, _) if **key == DataType::Int32 => {
                let dictionary = column.as_dictionary::<Int32Type>();
                let values = dictionary.values().to_data();
                let known = self.dictionary.take().filter(|(data, _)| data.ptr_eq(&values));
                let (values, mapped) = match known {
                    Some(known) => known,
                    None => {
                        let mapped = self.ids(dictionary.values().as_ref())?;
                        (values, mapped)
                    }
                };
                let keys = dictionary.keys();
                let ids = (0..column.len())
                    .map(|row| if present(row) { mapped[keys.value(row) as usize] } else { missing })
                    .collect();
                self.dictionary = Some((values, mapped));
                Ok(ids)
            }
            other => Err(format!("a key variable has type {other}, which the checks cannot recount")),
        }
    }
}

/// Checks each cell's count against the recount from the data.
pub(super) fn check(entry: &OutputEntry, data: &dyn Recount) -> CheckResult {
    let value = if entry.kind == OutputKind::Frequency { None } else { entry.value.as_deref() };
    let counts = match data.counts(&entry.variables, value) {
        Ok(counts) => counts,
        Err(why) => {
            return CheckResult {
                check: Check::Recount,
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
        Check::Recount,
        Outcome::Fail,
        findings,
        "no cell claims more units than the data the job saw",
        |n| format!("{} claim more units than the data has: the manifest is not true", cells_word(n)),
        None,
    )
}
