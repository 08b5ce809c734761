//! Reading a numeric column as `f64`, whatever its integer or floating-point type.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use super::TableError;

/// A numeric column of one batch.
pub(crate) enum Values<'a> {
    Int(&'a arrow_array::Int64Array),
    Float(&'a arrow_array::Float64Array),
}

impl<'a> Values<'a> {
    /// The column `name` of `batch`, if it is `Int64` or `Float64`.
    pub(crate) fn of(batch: &'a RecordBatch, name: &str) -> Result<Values<'a>, TableError> {
        let column = batch.column_by_name(name).ok_or_else(|| TableError::MissingColumn(name.to_string()))?;
        match column.data_type() {
            DataType::Int64 => Ok(Values::Int(column.as_primitive::<Int64Type>())),
            DataType::Float64 => Ok(Values::Float(column.as_primitive::<Float64Type>())),
            other => Err(TableError::UnsupportedType { column: name.to_string(), found: other.to_string() }),
        }
    }

    /// Row `row`'s value; `None` when null or NaN. Inlined: it runs once per row, and a call
    /// per row costs more than the lookup itself in a guest.
    #[inline(always)]
    pub(crate) fn get(&self, row: usize) -> Option<f64> {
        match self {
            Values::Int(a) => (!a.is_null(row)).then(|| a.value(row) as f64),
            Values::Float(a) => (!a.is_null(row) && !a.value(row).is_nan()).then(|| a.value(row)),
        }
    }
}
