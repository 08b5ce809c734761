//! Cell keys: the categories of up to four variables, interned and packed into one `u64`.

use rustc_hash::FxHashMap as HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use super::TableError;

/// Most key variables a table may have.
const MAX_VARIABLES: usize = 4;
/// Bits of the packed key given to each variable.
const BITS: u32 = 16;
/// Label for a missing category.
pub(crate) const MISSING: &str = "(missing)";

/// The distinct categories seen in one key variable.
#[derive(Debug, Default, Clone)]
struct Categories {
    labels: Vec<String>,
    by_text: HashMap<String, u32>,
    by_integer: HashMap<i64, u32>,
}

impl Categories {
    fn intern_text(&mut self, text: &str) -> Result<u32, TableError> {
        if let Some(&id) = self.by_text.get(text) {
            return Ok(id);
        }
        let id = self.next_id()?;
        self.labels.push(text.to_string());
        self.by_text.insert(text.to_string(), id);
        Ok(id)
    }

    fn intern_integer(&mut self, value: i64) -> Result<u32, TableError> {
        if let Some(&id) = self.by_integer.get(&value) {
            return Ok(id);
        }
        let label = value.to_string();
        let id = self.intern_text(&label)?;
        self.by_integer.insert(value, id);
        Ok(id)
    }

    fn next_id(&self) -> Result<u32, TableError> {
        let id = self.labels.len() as u32;
        if id >= 1 << BITS {
            return Err(TableError::TooManyCells(format!("a key variable has more than {} categories", 1u32 << BITS)));
        }
        Ok(id)
    }
}

/// The key variables of a table and their categories.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    names: Vec<String>,
    categories: Vec<Categories>,
}

impl Keys {
    pub(crate) fn new(names: &[&str]) -> Result<Keys, TableError> {
        if names.is_empty() || names.len() > MAX_VARIABLES {
            return Err(TableError::TooManyCells(format!("a table needs 1 to {MAX_VARIABLES} key variables")));
        }
        Ok(Keys {
            names: names.iter().map(|n| n.to_string()).collect(),
            categories: vec![Categories::default(); names.len()],
        })
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The packed key of every row of `batch`, in row order, written into `out`.
    pub(crate) fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u64>) -> Result<(), TableError> {
        out.clear();
        out.resize(batch.num_rows(), 0);
        for (position, name) in self.names.iter().enumerate() {
            let column = batch.column_by_name(name).ok_or_else(|| TableError::MissingColumn(name.clone()))?;
            let categories = &mut self.categories[position];
            let shift = BITS * position as u32;
            match column.data_type() {
                DataType::Utf8 => {
                    let values = column.as_string::<i32>();
                    for (row, key) in out.iter_mut().enumerate() {
                        let text = if values.is_null(row) { MISSING } else { values.value(row) };
                        *key |= u64::from(categories.intern_text(text)?) << shift;
                    }
                }
                DataType::Int64 => {
                    let values = column.as_primitive::<Int64Type>();
                    for (row, key) in out.iter_mut().enumerate() {
                        let id = if values.is_null(row) {
                            categories.intern_text(MISSING)?
                        } else {
                            categories.intern_integer(values.value(row))?
                        };
                        *key |= u64::from(id) << shift;
                    }
                }
                other => return Err(TableError::UnsupportedType { column: name.clone(), found: other.to_string() }),
            }
        }
        Ok(())
    }

    /// The category labels of a packed key.
    pub(crate) fn decode(&self, key: u64) -> Vec<String> {
        self.categories
            .iter()
            .enumerate()
            .map(|(position, categories)| {
                let id = (key >> (BITS * position as u32)) & ((1 << BITS) - 1);
                categories.labels.get(id as usize).cloned().unwrap_or_default()
            })
            .collect()
    }
}

/// Sorts cells by their decoded labels, so outputs do not depend on the order rows arrived in.
pub(crate) fn sorted<T>(keys: &Keys, cells: impl Iterator<Item = (u64, T)>) -> Vec<(Vec<String>, T)> {
    let mut decoded: Vec<(Vec<String>, T)> = cells.map(|(key, value)| (keys.decode(key), value)).collect();
    decoded.sort_by(|a, b| a.0.cmp(&b.0));
    decoded
}
