//! Categorical variables: text columns with few distinct values (regions, statuses, codes) are
//! stored dictionary-encoded, with one sorted dictionary per column for the whole file.
//!
//! Microdata is mostly categories, and analyses mostly group by them. With a dictionary, a guest
//! (or the host's recount) maps each distinct value to its cell once per file and then groups
//! rows by a small integer, instead of hashing and comparing every row's text. One dictionary
//! for the whole file (not one per batch) is what makes "once per file" possible, and what the
//! Arrow IPC file format requires anyway. A text column with more distinct values than
//! [`MAX_CATEGORIES`] (names, identifiers) stays plain `Utf8`, so no guest has to hold a
//! dictionary as large as the data.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, DictionaryArray, Int32Array, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use rustc_hash::{FxHashMap, FxHashSet};

/// Most distinct values a text column may have to be stored as a category: one fewer than the
/// guest SDK's tables take per key variable (65 536), leaving room for "(missing)".
pub const MAX_CATEGORIES: usize = (1 << 16) - 1;

/// The Arrow type of a categorical column: `Int32` keys into a `Utf8` dictionary.
pub fn category_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// One categorical column's dictionary: its sorted values, and each value's key.
struct Dictionary {
    values: ArrayRef,
    keys: FxHashMap<String, i32>,
}

/// The distinct values of every `Utf8` column of the batches seen so far, gathered while an
/// import writes its file so that finding the categories costs no second read.
pub(super) struct Distinct {
    /// Per column: its distinct values, or `None` when it is not text or has too many.
    seen: Vec<Option<FxHashSet<String>>>,
}

impl Distinct {
    /// Nothing seen yet of a file with `schema`.
    pub(super) fn new(schema: &Schema) -> Distinct {
        Distinct {
            seen: schema.fields().iter().map(|f| (f.data_type() == &DataType::Utf8).then(FxHashSet::default)).collect(),
        }
    }

    /// Adds the values of `batch` (of the same schema).
    pub(super) fn observe(&mut self, batch: &RecordBatch) {
        for (seen, column) in self.seen.iter_mut().zip(batch.columns()) {
            let Some(values) = seen else { continue };
            for value in column.as_string::<i32>().iter().flatten() {
                if !values.contains(value) {
                    values.insert(value.to_string());
                }
            }
            if values.len() > MAX_CATEGORIES {
                *seen = None;
            }
        }
    }

    /// The dictionaries of the columns with at most [`MAX_CATEGORIES`] values; `None` when no
    /// column has so few, so there is nothing to encode.
    pub(super) fn dictionaries(self) -> Option<Dictionaries> {
        let columns: Vec<Option<Dictionary>> = self
            .seen
            .into_iter()
            .map(|seen| {
                seen.map(|values| {
                    let mut values: Vec<String> = values.into_iter().collect();
                    values.sort_unstable();
                    let keys = values.iter().enumerate().map(|(key, value)| (value.clone(), key as i32)).collect();
                    Dictionary { values: Arc::new(StringArray::from_iter_values(values)), keys }
                })
            })
            .collect();
        columns.iter().any(Option::is_some).then_some(Dictionaries { columns })
    }
}

/// The dictionaries of a file's categorical columns, by column position.
pub(super) struct Dictionaries {
    columns: Vec<Option<Dictionary>>,
}

impl Dictionaries {
    /// `schema` with the categorical columns' type changed to [`category_type`].
    pub(super) fn schema(&self, schema: &Schema) -> SchemaRef {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .zip(&self.columns)
            .map(|(field, dictionary)| match dictionary {
                Some(_) => field.as_ref().clone().with_data_type(category_type()),
                None => field.as_ref().clone(),
            })
            .collect();
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
    }

    /// `batch` (of the scanned schema) with its categorical columns dictionary-encoded, every
    /// batch sharing each column's one dictionary. `encoded` is [`Dictionaries::schema`].
    pub(super) fn encode(&self, batch: &RecordBatch, encoded: &SchemaRef) -> Result<RecordBatch, ArrowError> {
        let columns = batch
            .columns()
            .iter()
            .zip(&self.columns)
            .map(|(column, dictionary)| match dictionary {
                None => Ok(Arc::clone(column)),
                Some(dictionary) => {
                    let keys: Int32Array = column
                        .as_string::<i32>()
                        .iter()
                        .map(|value| value.map(|v| dictionary.keys.get(v).copied().ok_or_else(|| unscanned(v))))
                        .map(Option::transpose)
                        .collect::<Result<_, _>>()?;
                    let array = DictionaryArray::<Int32Type>::try_new(keys, Arc::clone(&dictionary.values))?;
                    Ok(Arc::new(array) as ArrayRef)
                }
            })
            .collect::<Result<Vec<_>, ArrowError>>()?;
        RecordBatch::try_new(Arc::clone(encoded), columns)
    }
}

/// `schema` with every dictionary-encoded column given its values' type. A source's own
/// dictionaries (Parquet written from pandas categoricals, say) may change from batch to batch,
/// which an Arrow IPC file cannot hold; the import decodes them and then encodes the columns
/// with few distinct values itself, with one dictionary per file.
pub(super) fn decoded_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Dictionary(_, values) => field.as_ref().clone().with_data_type(values.as_ref().clone()),
            _ => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` with its dictionary-encoded columns decoded, as [`decoded_schema`] describes.
pub(super) fn decode(batch: &RecordBatch, decoded: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(decoded.fields())
        .map(|(column, field)| match column.data_type() {
            DataType::Dictionary(..) => arrow::compute::cast(column, field.data_type()),
            _ => Ok(Arc::clone(column)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(decoded), columns)
}

fn unscanned(value: &str) -> ArrowError {
    ArrowError::InvalidArgumentError(format!("the value {value:?} was not in the data when its categories were read"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gathered<'a>(batches: impl IntoIterator<Item = &'a RecordBatch>) -> Option<Dictionaries> {
        let mut batches = batches.into_iter().peekable();
        let mut distinct = Distinct::new(&batches.peek().expect("a batch").schema());
        batches.for_each(|batch| distinct.observe(batch));
        distinct.dictionaries()
    }

    fn batch(regions: Vec<Option<&str>>, names: Vec<&str>) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("region", Arc::new(StringArray::from(regions)) as ArrayRef),
            ("name", Arc::new(StringArray::from(names)) as ArrayRef),
        ])
        .expect("batch")
    }

    #[test]
    fn every_batch_shares_one_sorted_dictionary_and_nulls_stay_null() {
        let batches = [
            batch(vec![Some("Zeeland"), None], vec!["a", "b"]),
            batch(vec![Some("Utrecht"), Some("Zeeland")], vec!["c", "d"]),
        ];
        let schema = batches[0].schema();
        let dictionaries = gathered(&batches).expect("region qualifies");
        let encoded_schema = dictionaries.schema(&schema);
        assert_eq!(encoded_schema.field(0).data_type(), &category_type());
        let encoded: Vec<RecordBatch> =
            batches.iter().map(|b| dictionaries.encode(b, &encoded_schema).expect("encode")).collect();
        let first = encoded[0].column(0).as_dictionary::<Int32Type>();
        let second = encoded[1].column(0).as_dictionary::<Int32Type>();
        assert!(first.values().to_data().ptr_eq(&second.values().to_data()), "one dictionary for the file");
        assert_eq!(first.values().as_string::<i32>().iter().flatten().collect::<Vec<_>>(), ["Utrecht", "Zeeland"]);
        assert_eq!(first.keys().iter().collect::<Vec<_>>(), [Some(1), None]);
        assert_eq!(second.keys().iter().collect::<Vec<_>>(), [Some(0), Some(1)]);
    }

    #[test]
    fn columns_with_too_many_values_stay_text() {
        let many: Vec<String> = (0..=MAX_CATEGORIES).map(|i| format!("person-{i}")).collect();
        let names = Arc::new(StringArray::from_iter_values(&many)) as ArrayRef;
        let status = Arc::new(StringArray::from_iter_values(many.iter().map(|_| "employed"))) as ArrayRef;
        let batch = RecordBatch::try_from_iter([("name", names), ("status", status)]).expect("batch");
        let dictionaries = gathered([&batch]).expect("status qualifies");
        let schema = dictionaries.schema(&batch.schema());
        assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
        assert_eq!(schema.field(1).data_type(), &category_type());
        let only_names = RecordBatch::try_from_iter([("name", Arc::clone(batch.column(0)))]).expect("batch");
        assert!(gathered([&only_names]).is_none());
    }
}
