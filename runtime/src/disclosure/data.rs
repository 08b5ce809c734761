//! The data a job saw, as the checks read it: the projections it had mounted, column by
//! column, so that every published number can be recomputed from the rows a cell names.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use arrow::array::{Array, ArrayData, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use arrow::ipc::reader::FileReader;

/// Units per cell key, as the SDK labels categories.
pub type Counts = rustc_hash::FxHashMap<Vec<String>, u64>;

/// The label the SDK gives a missing category.
const MISSING: &str = ringfence_sdk::table::MISSING;

/// The data a job saw, as the checks need it.
pub trait JobData {
    /// Units per combination of `variables`, counting only units whose `value` (when given) is
    /// present, from any mount that has them all; or why that cannot be done. For outputs that
    /// name no units, whose counts can only be bounded.
    fn counts(&self, variables: &[String], value: Option<&str>) -> Result<Counts, String>;
    /// The mount called `name`, or why there is none.
    fn mount(&self, name: &str) -> Result<&dyn MountData, String>;
}

/// One mounted projection, column by column.
pub trait MountData {
    /// Its rows: row numbers run from 0 to this, exclusive.
    fn rows(&self) -> u64;
    /// Its columns.
    fn columns(&self) -> &[String];
    /// What identifies its rows across jobs: the dataset version and row filter it was cut
    /// with, so that units of two jobs can be compared whatever columns each was granted.
    fn unit_space(&self) -> &str;
    /// Every row's category of `column`, labelled as the SDK labels them.
    fn categorical(&self, column: &str) -> Result<Categorical, String>;
    /// Every row's value of the numeric `column`; NaN where it is missing, as the SDK reads it.
    fn numeric(&self, column: &str) -> Result<Vec<f64>, String>;
}

/// A key column: every row's category number, and the categories.
#[derive(Debug, Clone, Default)]
pub struct Categorical {
    /// The categories' labels, by number.
    pub labels: Vec<String>,
    /// Each row's category number.
    pub ids: Vec<u32>,
    /// Whether some row has the category, by number.
    pub present: Vec<bool>,
    /// Each label's number.
    pub by_label: rustc_hash::FxHashMap<String, u32>,
}

impl Categorical {
    /// The number of the category labelled `label`, if the column has it.
    pub fn id(&self, label: &str) -> Option<u32> {
        self.by_label.get(label).copied()
    }
}

/// One mounted projection: its name, columns, rows, unit space and `data.arrow`.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Its name under `/data/`.
    pub name: String,
    /// Its columns.
    pub columns: Vec<String>,
    /// Its rows.
    pub rows: u64,
    /// See [`MountData::unit_space`].
    pub unit_space: String,
    /// Its `data.arrow`.
    pub path: PathBuf,
}

impl Mount {
    /// The file's batches with only `wanted` columns decoded, in `wanted` order.
    fn read(&self, wanted: &[&str]) -> Result<FileReader<BufReader<File>>, String> {
        let open = |projection| {
            let file = File::open(&self.path).map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
            FileReader::try_new(BufReader::with_capacity(1 << 20, file), projection).map_err(|e| e.to_string())
        };
        let schema = open(None)?.schema();
        let indices: Vec<usize> =
            wanted.iter().map(|w| schema.index_of(w)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        open(Some(indices))
    }
}

impl MountData for Mount {
    fn rows(&self) -> u64 {
        self.rows
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn unit_space(&self) -> &str {
        &self.unit_space
    }

    fn categorical(&self, column: &str) -> Result<Categorical, String> {
        let mut categories = Categories::default();
        let mut ids = Vec::with_capacity(self.rows as usize);
        for batch in self.read(&[column])? {
            let batch = batch.map_err(|e| e.to_string())?;
            ids.extend(categories.ids(batch.column(0).as_ref())?);
        }
        let mut present = vec![false; categories.labels.len()];
        for &id in &ids {
            present[id as usize] = true;
        }
        Ok(Categorical { labels: categories.labels, ids, present, by_label: categories.by_text })
    }

    fn numeric(&self, column: &str) -> Result<Vec<f64>, String> {
        let mut values = Vec::with_capacity(self.rows as usize);
        for batch in self.read(&[column])? {
            let batch = batch.map_err(|e| e.to_string())?;
            let array = batch.column(0);
            let nulls = array.logical_nulls();
            let present = |row: usize| nulls.as_ref().is_none_or(|n| n.is_valid(row));
            match array.data_type() {
                DataType::Int64 => {
                    let ints = array.as_primitive::<Int64Type>();
                    values.extend((0..ints.len()).map(|r| if present(r) { ints.value(r) as f64 } else { f64::NAN }));
                }
                DataType::Float64 => {
                    let floats = array.as_primitive::<Float64Type>();
                    values.extend((0..floats.len()).map(|r| if present(r) { floats.value(r) } else { f64::NAN }));
                }
                other => return Err(format!("column {column:?} has type {other}, which is not numeric")),
            }
        }
        Ok(values)
    }
}

/// The projections a job had mounted.
#[derive(Debug, Clone, Default)]
pub struct MountedData {
    mounts: Vec<Mount>,
}

impl MountedData {
    /// Data made of the given mounts.
    pub fn new(mounts: Vec<Mount>) -> MountedData {
        MountedData { mounts }
    }
}

impl JobData for MountedData {
    fn mount(&self, name: &str) -> Result<&dyn MountData, String> {
        self.mounts
            .iter()
            .find(|m| m.name == name)
            .map(|m| m as &dyn MountData)
            .ok_or_else(|| format!("the job had no dataset mounted at /data/{name}"))
    }

    fn counts(&self, variables: &[String], value: Option<&str>) -> Result<Counts, String> {
        let wanted: Vec<&str> = variables.iter().map(String::as_str).chain(value).collect();
        let Some(mount) = self.mounts.iter().find(|m| wanted.iter().all(|w| m.columns.iter().any(|c| c == w))) else {
            return Err(format!("no dataset the job saw has all of {wanted:?} (derived in the analysis?)"));
        };
        let reader = mount.read(&wanted)?;
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
