//! Reading a text column, whether plain or a category: the host stores text columns with at most
//! 65 535 distinct values dictionary-encoded (`Int32` keys into `Utf8` values; `category` in
//! `schema.json`), so an analysis that reads rows itself should accept both.

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, RecordBatch, StringArray};
use arrow_schema::DataType;

use super::TableError;

/// A text column of one batch, as the table builders read it.
///
/// ```
/// # use std::sync::Arc;
/// # use ringfence_sdk::arrow_array::{DictionaryArray, RecordBatch, StringArray, types::Int32Type};
/// use ringfence_sdk::table::Text;
///
/// let regions: DictionaryArray<Int32Type> = vec![Some("Zeeland"), None, Some("Zeeland")].into_iter().collect();
/// let batch = RecordBatch::try_from_iter([("region", Arc::new(regions) as _)]).unwrap();
/// let region = Text::of(&batch, "region")?;
/// assert_eq!((region.get(0)?, region.get(1)?), (Some("Zeeland"), None));
/// # Ok::<(), ringfence_sdk::table::TableError>(())
/// ```
pub enum Text<'a> {
    /// Plain `Utf8`.
    Plain(&'a StringArray),
    /// A category: `Int32` keys into `Utf8` values.
    Category {
        /// The keys.
        keys: &'a DictionaryArray<Int32Type>,
        /// The dictionary the keys point into.
        values: &'a StringArray,
    },
}

impl<'a> Text<'a> {
    /// The column `name` of `batch`, if it is `Utf8` or `Int32` keys into `Utf8` values.
    pub fn of(batch: &'a RecordBatch, name: &str) -> Result<Text<'a>, TableError> {
        let column = batch.column_by_name(name).ok_or_else(|| TableError::MissingColumn(name.to_string()))?;
        let unsupported =
            || TableError::UnsupportedType { column: name.to_string(), found: column.data_type().to_string() };
        match column.data_type() {
            DataType::Utf8 => Ok(Text::Plain(column.as_string::<i32>())),
            DataType::Dictionary(key, value) if **key == DataType::Int32 && **value == DataType::Utf8 => {
                let keys = column.as_dictionary::<Int32Type>();
                Ok(Text::Category { keys, values: keys.values().as_string::<i32>() })
            }
            _ => Err(unsupported()),
        }
    }

    /// Row `row`'s text; `None` when null.
    pub fn get(&self, row: usize) -> Result<Option<&'a str>, TableError> {
        match self {
            Text::Plain(values) => Ok((!values.is_null(row)).then(|| values.value(row))),
            Text::Category { keys, values } => match keys.key(row) {
                None => Ok(None),
                Some(key) if key < values.len() => Ok(Some(values.value(key))),
                Some(_) => Err(TableError::InvalidData("a category key is past the end of its dictionary".into())),
            },
        }
    }
}
