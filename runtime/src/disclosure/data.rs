//! The data a job saw, as the checks read it: the projections it had mounted, column by
//! column, so that every published number can be recomputed from the rows a cell names.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayData, ArrayRef, AsArray, RecordBatch};
use arrow::buffer::{Buffer, ScalarBuffer};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use arrow::ipc::convert::try_fb_to_schema;
use arrow::ipc::reader::{FileDecoder, read_footer_length};
use arrow::ipc::{Block, root_as_footer};

pub use super::columns::{Categorical, Numeric, Rows};
use super::parallel::in_parts;

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
    fn numeric(&self, column: &str) -> Result<Numeric, String>;
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
    fn read(&self, wanted: &[&str]) -> Result<Batches, String> {
        Batches::open(&self.path, wanted)
    }
}

/// The record batches of a mount's `data.arrow`, decoded where they lie in a read-only
/// memory map: a check copies no batch, and reads only the pages of the columns it asks for.
struct Batches {
    file: Buffer,
    decoder: FileDecoder,
    blocks: std::vec::IntoIter<Block>,
}

impl Batches {
    /// Maps `path` and prepares to decode its `wanted` columns, in that order.
    fn open(path: &Path, wanted: &[&str]) -> Result<Batches, String> {
        let shown = path.display();
        let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
        // SAFETY: the mapping is only sound while nobody changes the file. A projection's
        // `data.arrow` is written once in a staging directory, published by renaming that
        // directory, and never written again; only someone with write access to the state
        // directory (an operator) could change it, and a guest has none.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("cannot map {shown}: {e}"))?;
        let file = Buffer::from(bytes::Bytes::from_owner(map));
        let corrupt = |what: String| format!("{shown} is not a readable Arrow file: {what}");
        let trailer = file.len().checked_sub(10).ok_or_else(|| corrupt("it is too short".into()))?;
        let mut tail = [0u8; 10];
        tail.copy_from_slice(&file[trailer..]);
        let footer_length = read_footer_length(tail).map_err(|e| corrupt(e.to_string()))?;
        let footer_start =
            trailer.checked_sub(footer_length).ok_or_else(|| corrupt("its footer is too long".into()))?;
        let footer = root_as_footer(&file[footer_start..trailer]).map_err(|e| corrupt(e.to_string()))?;
        let schema = footer.schema().ok_or_else(|| corrupt("its footer has no schema".into()))?;
        let schema = Arc::new(try_fb_to_schema(schema).map_err(|e| corrupt(e.to_string()))?);
        let indices: Vec<usize> =
            wanted.iter().map(|w| schema.index_of(w)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        let mut decoder = FileDecoder::new(schema, footer.version()).with_projection(indices);
        for block in footer.dictionaries().iter().flatten() {
            decoder.read_dictionary(block, &slice(&file, block)?).map_err(|e| corrupt(e.to_string()))?;
        }
        let blocks: Vec<Block> = footer.recordBatches().iter().flatten().copied().collect();
        Ok(Batches { file, decoder, blocks: blocks.into_iter() })
    }
}

/// The bytes of `block` in `file`, or why the block does not lie within it.
fn slice(file: &Buffer, block: &Block) -> Result<Buffer, String> {
    let start = usize::try_from(block.offset()).ok();
    let length = usize::try_from(block.metaDataLength()).ok().zip(usize::try_from(block.bodyLength()).ok());
    match (start, length) {
        (Some(start), Some((meta, body))) if start.checked_add(meta + body).is_some_and(|end| end <= file.len()) => {
            Ok(file.slice_with_length(start, meta + body))
        }
        _ => Err(format!("a block of the Arrow file lies outside its {} bytes", file.len())),
    }
}

impl Batches {
    /// The first column of every batch, in order, decoded on every core.
    fn first_columns(self) -> Result<Vec<ArrayRef>, String> {
        let blocks: Vec<Block> = self.blocks.collect();
        let (file, decoder) = (&self.file, &self.decoder);
        let parts = in_parts(blocks.len(), |part| {
            let mut columns = Vec::with_capacity(part.len());
            for block in &blocks[part] {
                let data = slice(file, block)?;
                if let Some(batch) = decoder.read_record_batch(block, &data).map_err(|e| e.to_string())? {
                    columns.push(batch.column(0).clone());
                }
            }
            Ok(columns)
        });
        parts.into_iter().collect::<Result<Vec<Vec<ArrayRef>>, String>>().map(|parts| parts.concat())
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, String>;

    fn next(&mut self) -> Option<Self::Item> {
        for block in self.blocks.by_ref() {
            let decoded = slice(&self.file, &block)
                .and_then(|data| self.decoder.read_record_batch(&block, &data).map_err(|e| e.to_string()));
            match decoded {
                Ok(None) => continue,
                Ok(Some(batch)) => return Some(Ok(batch)),
                Err(e) => return Some(Err(e)),
            }
        }
        None
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
        let arrays = self.read(&[column])?.first_columns()?;
        let mut categories = Categories::default();
        if let Some((values, keys)) = one_dictionary(&arrays) {
            let mut numbers = Vec::new();
            categories.ids(values, &mut numbers)?;
            return Categorical::new(categories.labels, Rows::from_batches(keys), numbers);
        }
        let mut ids = Vec::with_capacity(self.rows as usize);
        for array in &arrays {
            categories.ids(array.as_ref(), &mut ids)?;
        }
        let codes = ids.into_iter().map(i32::try_from).collect::<Result<Vec<i32>, _>>();
        let codes = codes.map_err(|_| format!("column {column:?} has more categories than the checks count"))?;
        let numbers = (0..categories.labels.len() as u32).collect();
        Categorical::new(categories.labels, Rows::from(codes), numbers)
    }

    fn numeric(&self, column: &str) -> Result<Numeric, String> {
        let arrays = self.read(&[column])?.first_columns()?;
        let complete = arrays.iter().all(|a| a.logical_nulls().is_none());
        if complete && arrays.iter().all(|a| a.data_type() == &DataType::Int64) {
            let batches = arrays.iter().map(|a| a.as_primitive::<Int64Type>().values().clone()).collect();
            return Ok(Numeric::Integers(Rows::from_batches(batches)));
        }
        if complete && arrays.iter().all(|a| a.data_type() == &DataType::Float64) {
            let batches = arrays.iter().map(|a| a.as_primitive::<Float64Type>().values().clone()).collect();
            return Ok(Numeric::Floats(Rows::from_batches(batches)));
        }
        let mut values = Vec::with_capacity(self.rows as usize);
        for array in &arrays {
            let start = values.len();
            match array.data_type() {
                DataType::Int64 => values.extend(array.as_primitive::<Int64Type>().values().iter().map(|&v| v as f64)),
                DataType::Float64 => values.extend_from_slice(array.as_primitive::<Float64Type>().values()),
                other => return Err(format!("column {column:?} has type {other}, which is not numeric")),
            }
            if let Some(nulls) = array.logical_nulls() {
                for row in nulls.iter().enumerate().filter(|(_, valid)| !valid).map(|(row, _)| row) {
                    values[start + row] = f64::NAN;
                }
            }
        }
        Ok(Numeric::from(values))
    }
}

/// The dictionary values and each batch's keys, when `arrays` are dictionary columns with no
/// missing key that share one dictionary (as a file does), so the keys can be read in place.
fn one_dictionary(arrays: &[ArrayRef]) -> Option<(&dyn Array, Vec<ScalarBuffer<i32>>)> {
    let first = arrays.first()?.as_dictionary_opt::<Int32Type>()?;
    let shared = first.values().to_data();
    let mut keys = Vec::with_capacity(arrays.len());
    for array in arrays {
        let dictionary = array.as_dictionary_opt::<Int32Type>()?;
        let same = dictionary.values().to_data().ptr_eq(&shared);
        if !same || array.logical_nulls().is_some() {
            return None;
        }
        keys.push(dictionary.keys().values().clone());
    }
    Some((first.values().as_ref(), keys))
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
        let mut ids: Vec<Vec<u32>> = variables.iter().map(|_| Vec::new()).collect();
        for batch in reader {
            let batch = batch?;
            let (keys, value_column) = batch.columns().split_at(variables.len());
            for ((column, categories), out) in keys.iter().zip(&mut interned).zip(&mut ids) {
                out.clear();
                categories.ids(column.as_ref(), out)?;
            }
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

    /// Appends to `out` the number of each row's category in `column`, labelled exactly as
    /// the SDK's table builders do.
    fn ids(&mut self, column: &dyn Array, out: &mut Vec<u32>) -> Result<(), String> {
        let missing = self.intern(MISSING);
        let nulls = column.logical_nulls();
        let present = |row: usize| nulls.as_ref().is_none_or(|n| n.is_valid(row));
        out.reserve(column.len());
        match column.data_type() {
            DataType::Utf8 => {
                let values = column.as_string::<i32>();
                out.extend(
                    (0..column.len()).map(|row| if present(row) { self.intern(values.value(row)) } else { missing }),
                );
                Ok(())
            }
            DataType::Int64 => {
                let values = column.as_primitive::<Int64Type>();
                out.extend(
                    (0..column.len())
                        .map(|row| if present(row) { self.intern_integer(values.value(row)) } else { missing }),
                );
                Ok(())
            }
            DataType::Dictionary(key, _) if **key == DataType::Int32 => {
                let dictionary = column.as_dictionary::<Int32Type>();
                let values = dictionary.values().to_data();
                let known = self.dictionary.take().filter(|(data, _)| data.ptr_eq(&values));
                let (values, mapped) = match known {
                    Some(known) => known,
                    None => {
                        let mut mapped = Vec::new();
                        self.ids(dictionary.values().as_ref(), &mut mapped)?;
                        (values, mapped)
                    }
                };
                // The decoder has checked that every key is a position in the dictionary.
                let keys = dictionary.keys().values();
                match &nulls {
                    None => out.extend(keys.iter().map(|&key| mapped[key as usize])),
                    Some(_) => out.extend(
                        keys.iter()
                            .enumerate()
                            .map(|(row, &key)| if present(row) { mapped[key as usize] } else { missing }),
                    ),
                }
                self.dictionary = Some((values, mapped));
                Ok(())
            }
            other => Err(format!("a key variable has type {other}, which the checks cannot recount")),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{DictionaryArray, Float64Array, Int32Array, Int64Array, StringArray};
    use arrow::ipc::writer::FileWriter;

    use super::*;

    /// A mount of one `data.arrow` written from `batches` (each a list of named columns).
    fn mount(dir: &Path, batches: Vec<Vec<(&str, ArrayRef)>>) -> Mount {
        let path = dir.join("data.arrow");
        let mut writer: Option<FileWriter<File>> = None;
        let mut rows = 0;
        for columns in batches {
            let batch = RecordBatch::try_from_iter(columns).expect("batch");
            rows += batch.num_rows() as u64;
            let writer = writer.get_or_insert_with(|| {
                FileWriter::try_new(File::create(&path).expect("create"), &batch.schema()).expect("writer")
            });
            writer.write(&batch).expect("write");
        }
        let mut writer = writer.expect("a batch");
        let columns = writer.schema().fields().iter().map(|f| f.name().clone()).collect();
        writer.finish().expect("finish");
        Mount { name: "persons".into(), columns, rows, unit_space: "test".into(), path }
    }

    /// Batches of the given sizes: a shared dictionary `region`, integer `income`, integer key
    /// `age`, and `score` with a missing value in row 1.
    fn columns(sizes: &[usize]) -> Vec<Vec<(&'static str, ArrayRef)>> {
        let regions: ArrayRef = Arc::new(StringArray::from(vec!["north", "south", "west"]));
        let mut start = 0;
        sizes
            .iter()
            .map(|&n| {
                let rows = start..start + n;
                start += n;
                let keys = Int32Array::from_iter_values(rows.clone().map(|r| (r % 3) as i32));
                let region = DictionaryArray::<Int32Type>::try_new(keys, regions.clone()).expect("dictionary");
                let income = Int64Array::from_iter_values(rows.clone().map(|r| r as i64 * 10));
                let age = Int64Array::from_iter_values(rows.clone().map(|r| 20 + (r % 2) as i64));
                let score = Float64Array::from_iter(rows.map(|r| (r != 1).then_some(r as f64 / 2.0)));
                vec![
                    ("region", Arc::new(region) as ArrayRef),
                    ("income", Arc::new(income) as ArrayRef),
                    ("age", Arc::new(age) as ArrayRef),
                    ("score", Arc::new(score) as ArrayRef),
                ]
            })
            .collect()
    }

    #[test]
    fn columns_read_in_place_or_copied_give_every_row_as_the_sdk_reads_it() {
        for sizes in [&[4, 4, 2][..], &[3, 3, 4], &[10]] {
            let dir = tempfile::tempdir().expect("tempdir");
            let mount = mount(dir.path(), columns(sizes));
            let region = mount.categorical("region").expect("region");
            let age = mount.categorical("age").expect("age");
            let income = mount.numeric("income").expect("income");
            let score = mount.numeric("score").expect("score");
            assert_eq!((region.rows(), age.rows(), income.rows(), score.rows()), (10, 10, 10, 10), "{sizes:?}");
            for row in 0..10u32 {
                let label = |column: &Categorical| column.labels[column.category(row) as usize].clone();
                assert_eq!(label(&region), ["north", "south", "west"][row as usize % 3], "{sizes:?} row {row}");
                assert_eq!(label(&age), (20 + row % 2).to_string(), "{sizes:?} row {row}");
                assert_eq!(income.value(row), f64::from(row) * 10.0, "{sizes:?} row {row}");
                let expected = if row == 1 { f64::NAN } else { f64::from(row) / 2.0 };
                assert_eq!(score.value(row).to_bits(), expected.to_bits(), "{sizes:?} row {row}");
            }
            let mut seen = Vec::new();
            income.each(&[0, 3, 4, 9], |value| seen.push(value));
            assert_eq!(seen, vec![0.0, 30.0, 40.0, 90.0], "{sizes:?}");
            let north = region.id("north").expect("north");
            assert_eq!(region.others(&[0, 1, 3, 5, 9], north), (2, Some(1)), "{sizes:?}");
            assert!(matches!(income, Numeric::Integers(_)), "{sizes:?}: complete integers are read in place");
        }
    }
}
