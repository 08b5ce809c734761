//! Column descriptions: what `schema.json` tells a guest, what a schema file tells an import.
//!
//! The same JSON shape serves both directions, so a guest in any language can discover the
//! columns it may read, and an operator can fix the types of a CSV import:
//!
//! ```json
//! {"columns": [{"name": "age", "type": "int64", "nullable": true}], "rows": 1000}
//! ```

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

/// One column: its name, its type in ringfence's small vocabulary, and whether it may be null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnInfo {
    /// Column name, as in the source file's header.
    pub name: String,
    /// `int64`, `float64`, `utf8`, `category` (text with at most
    /// [`MAX_CATEGORIES`](super::MAX_CATEGORIES) distinct values, dictionary-encoded), `bool`,
    /// `date32`, or an Arrow type name for anything else.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether the column may hold nulls.
    #[serde(default = "nullable_by_default")]
    pub nullable: bool,
}

fn nullable_by_default() -> bool {
    true
}

/// The `schema.json` a guest finds next to its data, and the schema file an import may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaFile {
    /// The columns, in file order.
    pub columns: Vec<ColumnInfo>,
    /// Number of rows, when describing data (absent in an import's schema file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

/// ringfence's name for an Arrow type.
pub fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "float64".into(),
        DataType::Utf8 => "utf8".into(),
        DataType::Boolean => "bool".into(),
        DataType::Date32 => "date32".into(),
        DataType::Dictionary(key, value) if **key == DataType::Int32 && **value == DataType::Utf8 => "category".into(),
        other => other.to_string().to_lowercase(),
    }
}

/// The Arrow type for one of ringfence's type names, if it is one an import can produce.
pub fn parse_type(name: &str) -> Option<DataType> {
    Some(match name {
        "int64" | "integer" => DataType::Int64,
        "float64" | "double" => DataType::Float64,
        // A category is imported as text; the import stores it as a category again when it
        // still has few enough distinct values.
        "utf8" | "string" | "category" => DataType::Utf8,
        "bool" | "boolean" => DataType::Boolean,
        "date32" | "date" => DataType::Date32,
        _ => return None,
    })
}

/// Describes an Arrow schema in `schema.json` terms.
pub fn describe(schema: &Schema) -> Vec<ColumnInfo> {
    schema
        .fields()
        .iter()
        .map(|f| ColumnInfo { name: f.name().clone(), data_type: type_name(f.data_type()), nullable: f.is_nullable() })
        .collect()
}

/// Builds an Arrow schema from column descriptions; `Err` names the first unknown type.
pub fn to_arrow(columns: &[ColumnInfo]) -> Result<SchemaRef, String> {
    let fields = columns
        .iter()
        .map(|c| {
            parse_type(&c.data_type).map(|t| Field::new(&c.name, t, c.nullable)).ok_or_else(|| {
                format!(
                    "column {:?} has unknown type {:?}; use int64, float64, utf8, bool or date32",
                    c.name, c.data_type
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_files_round_trip_through_arrow() {
        let columns = vec![
            ColumnInfo { name: "age".into(), data_type: "int64".into(), nullable: false },
            ColumnInfo { name: "region".into(), data_type: "utf8".into(), nullable: true },
        ];
        let schema = to_arrow(&columns).expect("known types");
        assert_eq!(describe(&schema), columns);
        let bad = vec![ColumnInfo { name: "x".into(), data_type: "decimal".into(), nullable: true }];
        assert!(to_arrow(&bad).expect_err("unknown type").contains("\"decimal\""));
    }
}
