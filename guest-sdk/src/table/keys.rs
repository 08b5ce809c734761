//! Cell keys: the categories of up to four variables, interned and packed into one `u64`.
//!
//! Key columns may be text, integers, or categories (text or integers behind `Int32` dictionary
//! keys, as the host stores text with few distinct values). A category's dictionary is interned
//! once, so each row then costs one array lookup instead of hashing its text.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

use super::TableError;

/// Most key variables a table may have.
const MAX_VARIABLES: usize = 4;
/// Bits of the packed key given to each variable.
const BITS: u32 = 16;
/// Most cells a batch is tallied into densely (see [`Keys::dense`]).
const DENSE_CELLS: u64 = 4096;
/// The label a table gives a missing category.
pub const MISSING: &str = "(missing)";

/// The distinct categories seen in one key variable.
#[derive(Debug, Default, Clone)]
struct Categories {
    labels: Vec<String>,
    by_text: HashMap<String, u32>,
    by_integer: HashMap<i64, u32>,
    /// The last dictionary seen and the category of each of its values: the batches of a file
    /// share one, so its values are interned once per file rather than once per row.
    dictionary: Option<(ArrayRef, Vec<u32>)>,
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

    /// The category of each row of `column` (`name` in errors), in row order, OR-ed into `out`
    /// shifted left by `shift`.
    fn encode(&mut self, name: &str, column: &dyn Array, shift: u32, out: &mut [u64]) -> Result<(), TableError> {
        match column.data_type() {
            DataType::Utf8 => {
                let values = column.as_string::<i32>();
                for (row, key) in out.iter_mut().enumerate() {
                    let text = if values.is_null(row) { MISSING } else { values.value(row) };
                    *key |= u64::from(self.intern_text(text)?) << shift;
                }
            }
            DataType::Int64 => {
                let values = column.as_primitive::<Int64Type>();
                for (row, key) in out.iter_mut().enumerate() {
                    let id = if values.is_null(row) {
                        self.intern_text(MISSING)?
                    } else {
                        self.intern_integer(values.value(row))?
                    };
                    *key |= u64::from(id) << shift;
                }
            }
            DataType::Dictionary(key_type, _) if **key_type == DataType::Int32 => {
                let dictionary = column.as_dictionary::<Int32Type>();
                let keys = dictionary.keys();
                let missing = if keys.null_count() > 0 { self.intern_text(MISSING)? } else { 0 };
                let categories = self.dictionary_ids(name, dictionary.values())?;
                let category = |value: i32| categories.get(value as usize).ok_or_else(|| past_the_dictionary(name));
                if keys.null_count() == 0 {
                    // The common case gets a loop without a null test per row.
                    for (key, &value) in out.iter_mut().zip(keys.values()) {
                        *key |= u64::from(*category(value)?) << shift;
                    }
                } else {
                    for (row, (key, &value)) in out.iter_mut().zip(keys.values()).enumerate() {
                        let id = if keys.is_null(row) { missing } else { *category(value)? };
                        *key |= u64::from(id) << shift;
                    }
                }
            }
            other => return Err(TableError::UnsupportedType { column: name.to_string(), found: other.to_string() }),
        }
        Ok(())
    }

    /// The category of each value of a dictionary, interned once for all the batches sharing it.
    fn dictionary_ids(&mut self, name: &str, values: &ArrayRef) -> Result<&[u32], TableError> {
        let known = self.dictionary.as_ref().is_some_and(|(seen, _)| seen.to_data().ptr_eq(&values.to_data()));
        if !known {
            let mut ids = vec![0u64; values.len()];
            self.encode(name, values.as_ref(), 0, &mut ids)?;
            self.dictionary = Some((Arc::clone(values), ids.into_iter().map(|id| id as u32).collect()));
        }
        Ok(self.dictionary.as_ref().map(|(_, ids)| ids.as_slice()).unwrap_or_default())
    }
}

fn past_the_dictionary(column: &str) -> TableError {
    TableError::InvalidData(format!("column {column:?} has a key past the end of its dictionary"))
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
            self.categories[position].encode(name, column.as_ref(), BITS * position as u32, out)?;
        }
        Ok(())
    }

    /// The dense layout of every combination of the categories seen so far, or `None` when it
    /// would have more than [`DENSE_CELLS`] cells.
    pub(crate) fn dense(&self) -> Option<Dense> {
        let mut sizes = [1u64; MAX_VARIABLES];
        let mut strides = [0u64; MAX_VARIABLES];
        let mut cells = 1u64;
        for ((size, stride), categories) in sizes.iter_mut().zip(&mut strides).zip(&self.categories) {
            *size = categories.labels.len().max(1) as u64;
            *stride = cells;
            cells = cells.saturating_mul(*size);
        }
        (cells <= DENSE_CELLS).then_some(Dense { sizes, strides, cells: cells as usize })
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

/// Packed keys laid out densely: each combination of the categories seen so far gets an index
/// below [`Dense::cells`], so a batch can be tallied into an array instead of a hash map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dense {
    /// Categories per variable (1 for variables the table does not have).
    sizes: [u64; MAX_VARIABLES],
    /// What one more category of each variable adds to the index (0 for absent variables).
    strides: [u64; MAX_VARIABLES],
    cells: usize,
}

impl Dense {
    /// How many combinations there are.
    pub(crate) fn cells(&self) -> usize {
        self.cells
    }

    /// The index of a packed key whose categories were all seen when this layout was made.
    /// A fixed four steps, which the compiler unrolls: a loop per row would also cost the
    /// guest an interruption check per step.
    #[inline(always)]
    pub(crate) fn index(&self, key: u64) -> usize {
        let mut index = 0;
        for (position, stride) in self.strides.iter().enumerate() {
            index += ((key >> (BITS * position as u32)) & ((1 << BITS) - 1)) * stride;
        }
        index as usize
    }

    /// The packed key at `index`.
    pub(crate) fn key(&self, index: usize) -> u64 {
        let mut rest = index as u64;
        let mut key = 0;
        for (position, size) in self.sizes.iter().enumerate() {
            key |= (rest % size) << (BITS * position as u32);
            rest /= size;
        }
        key
    }
}

/// Sorts cells by their decoded labels, so outputs do not depend on the order rows arrived in.
pub(crate) fn sorted<T>(keys: &Keys, cells: impl Iterator<Item = (u64, T)>) -> Vec<(Vec<String>, T)> {
    let mut decoded: Vec<(Vec<String>, T)> = cells.map(|(key, value)| (keys.decode(key), value)).collect();
    decoded.sort_by(|a, b| a.0.cmp(&b.0));
    decoded
}

#[cfg(test)]
mod tests {
    use arrow_array::{DictionaryArray, Int32Array, StringArray};

    use super::*;
    use crate::table::{FrequencyTable, Table};

    fn category(keys: Vec<Option<i32>>, values: &ArrayRef) -> RecordBatch {
        let column = DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), Arc::clone(values)).expect("keys");
        RecordBatch::try_from_iter([("region", Arc::new(column) as ArrayRef)]).expect("batch")
    }

    #[test]
    fn categories_count_as_their_text_whatever_their_dictionary() {
        let shared = Arc::new(StringArray::from(vec!["Utrecht", "Zeeland"])) as ArrayRef;
        let reversed = Arc::new(StringArray::from(vec!["Zeeland", "Utrecht"])) as ArrayRef;
        let mut categories = FrequencyTable::new(&["region"]).expect("table");
        for batch in [
            category(vec![Some(0), Some(1), None, Some(0)], &shared),
            category(vec![Some(1)], &shared),
            category(vec![Some(0), Some(1)], &reversed),
        ] {
            categories.add(&batch).expect("add");
        }
        let text = ["Utrecht", "Zeeland", "", "Utrecht", "Zeeland", "Zeeland", "Utrecht"];
        let plain = StringArray::from(text.iter().map(|t| (!t.is_empty()).then_some(*t)).collect::<Vec<_>>());
        let mut plain_table = FrequencyTable::new(&["region"]).expect("table");
        plain_table
            .add(&RecordBatch::try_from_iter([("region", Arc::new(plain) as ArrayRef)]).expect("batch"))
            .expect("add");
        assert_eq!(categories.to_csv(), "region,count\n(missing),1\nUtrecht,3\nZeeland,3\n");
        assert_eq!(categories.to_csv(), plain_table.to_csv());
    }

    #[test]
    fn a_key_past_its_dictionary_is_refused() {
        let values = Arc::new(StringArray::from(vec!["Utrecht"])) as ArrayRef;
        // SAFETY: deliberately malformed, as a corrupt file read without validation would be;
        // the table must refuse it rather than read past the dictionary.
        let column = unsafe { DictionaryArray::<Int32Type>::new_unchecked(Int32Array::from(vec![0, 7]), values) };
        let batch = RecordBatch::try_from_iter([("region", Arc::new(column) as ArrayRef)]).expect("batch");
        let error = FrequencyTable::new(&["region"]).expect("table").add(&batch).expect_err("key 7 is past the end");
        assert!(matches!(error, TableError::InvalidData(_)), "{error}");
    }
}
