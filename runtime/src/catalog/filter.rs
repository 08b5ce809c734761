//! Row filters in grants: a conjunction of simple comparisons, such as
//! `age >= 18 and region = 'Utrecht'`.
//!
//! Deliberately small: a column, a comparison, a literal, joined by `and`. Enough to restrict a
//! project to the years or population it was approved for; small enough to check completely
//! against a dataset's schema when the policy is loaded.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Datum, Float64Array, Int64Array, StringArray};
use arrow::compute::kernels::{boolean, cmp};
use arrow::compute::{cast, filter_record_batch, prep_null_mask_filter};
use arrow::datatypes::{DataType, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Int(i64),
    Float(f64),
    Text(String),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Int(v) => write!(f, "{v}"),
            Literal::Float(v) => write!(f, "{v:?}"),
            Literal::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    column: String,
    op: Op,
    value: Literal,
}

/// A row filter: rows for which every comparison holds are kept; a null never matches.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFilter {
    comparisons: Vec<Comparison>,
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(String);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Number(String),
    Text(String),
    Op(Op),
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Number(chars[start..i].iter().collect()));
        } else if c == '\'' || c == '"' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(FilterError(format!("unterminated string starting with {c}"))),
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                        value.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Text(value));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (op, width) = match (two.as_str(), c) {
                (">=", _) => (Op::Ge, 2),
                ("<=", _) => (Op::Le, 2),
                ("!=" | "<>", _) => (Op::Ne, 2),
                ("==", _) => (Op::Eq, 2),
                (_, '=') => (Op::Eq, 1),
                (_, '<') => (Op::Lt, 1),
                (_, '>') => (Op::Gt, 1),
                _ => return Err(FilterError(format!("unexpected character {c:?}"))),
            };
            tokens.push(Token::Op(op));
            i += width;
        }
    }
    Ok(tokens)
}

impl FromStr for RowFilter {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected = "write comparisons like `age >= 18 and region = 'Utrecht'`";
        let tokens = tokenize(text)?;
        let mut comparisons = Vec::new();
        for (index, clause) in
            tokens.split(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("and"))).enumerate()
        {
            let [Token::Word(column), Token::Op(op), value] = clause else {
                return Err(FilterError(format!("comparison {} is not `column op value`; {expected}", index + 1)));
            };
            let value = match value {
                Token::Text(s) => Literal::Text(s.clone()),
                Token::Number(n) if n.contains('.') => {
                    Literal::Float(n.parse().map_err(|_| FilterError(format!("{n} is not a number")))?)
                }
                Token::Number(n) => {
                    Literal::Int(n.parse().map_err(|_| FilterError(format!("{n} is not a whole number")))?)
                }
                _ => {
                    return Err(FilterError(format!(
                        "comparison {} needs a number or a quoted string; {expected}",
                        index + 1
                    )));
                }
            };
            comparisons.push(Comparison { column: column.clone(), op: *op, value });
        }
        Ok(RowFilter { comparisons })
    }
}

impl fmt::Display for RowFilter {
    /// The canonical form: the same filter always prints the same way.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.comparisons.iter().enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            write!(f, "{} {} {}", c.column, c.op.symbol(), c.value)?;
        }
        Ok(())
    }
}

impl serde::Serialize for RowFilter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RowFilter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

fn is_integer(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float32 | DataType::Float64)
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

impl RowFilter {
    /// Checks that every column exists in `schema` and can be compared with its literal.
    pub fn check(&self, schema: &Schema) -> Result<(), FilterError> {
        for c in &self.comparisons {
            let field = schema
                .field_with_name(&c.column)
                .map_err(|_| FilterError(format!("the dataset has no column {:?}", c.column)))?;
            let t = field.data_type();
            let fits = match c.value {
                Literal::Int(_) | Literal::Float(_) => is_integer(t) || is_float(t),
                Literal::Text(_) => is_text(t),
            };
            if !fits {
                return Err(FilterError(format!(
                    "column {:?} is {t}; it cannot be compared with {}",
                    c.column, c.value
                )));
            }
        }
        Ok(())
    }

    fn mask(&self, batch: &RecordBatch) -> Result<BooleanArray, ArrowError> {
        let mut mask: Option<BooleanArray> = None;
        for c in &self.comparisons {
            let column = batch
                .column_by_name(&c.column)
                .ok_or_else(|| ArrowError::SchemaError(format!("no column {:?}", c.column)))?;
            let (left, right): (ArrayRef, Arc<dyn Datum>) = match &c.value {
                Literal::Int(v) if is_integer(column.data_type()) => {
                    (cast(column, &DataType::Int64)?, Arc::new(Int64Array::new_scalar(*v)))
                }
                Literal::Int(v) => (cast(column, &DataType::Float64)?, Arc::new(Float64Array::new_scalar(*v as f64))),
                Literal::Float(v) => (cast(column, &DataType::Float64)?, Arc::new(Float64Array::new_scalar(*v))),
                Literal::Text(s) => (cast(column, &DataType::Utf8)?, Arc::new(StringArray::new_scalar(s.as_str()))),
            };
            let right = right.as_ref();
            let matched = match c.op {
                Op::Eq => cmp::eq(&left, right)?,
                Op::Ne => cmp::neq(&left, right)?,
                Op::Lt => cmp::lt(&left, right)?,
                Op::Le => cmp::lt_eq(&left, right)?,
                Op::Gt => cmp::gt(&left, right)?,
                Op::Ge => cmp::gt_eq(&left, right)?,
            };
            mask = Some(match mask {
                Some(previous) => boolean::and(&previous, &matched)?,
                None => matched,
            });
        }
        Ok(mask.unwrap_or_else(|| BooleanArray::from(vec![true; batch.num_rows()])))
    }

    /// The rows of `batch` the filter keeps (nulls never match).
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let mask = self.mask(batch)?;
        let mask = if mask.null_count() > 0 { prep_null_mask_filter(&mask) } else { mask };
        filter_record_batch(batch, &mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("age", DataType::Int64, true),
            Field::new("region", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(17), Some(18), None, Some(40)])),
                Arc::new(StringArray::from(vec![Some("Utrecht"), Some("Utrecht"), Some("Utrecht"), Some("Zeeland")])),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn parses_and_prints_canonically() {
        let filter: RowFilter = "age>=18   AND region == \"O'Brien\"".parse().expect("parses");
        assert_eq!(filter.to_string(), "age >= 18 and region = 'O''Brien'");
        assert_eq!(filter.to_string().parse::<RowFilter>().expect("round trip"), filter);
    }

    #[test]
    fn malformed_filters_are_refused() {
        for bad in ["age >=", "age 18", "18 >= age", "age >= 'x", "age >= 18 or age < 5", "age ~ 3", "and"] {
            assert!(bad.parse::<RowFilter>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn keeps_rows_where_every_comparison_holds_and_drops_nulls() {
        let filter: RowFilter = "age >= 18 and region = 'Utrecht'".parse().expect("parses");
        let kept = filter.apply(&batch()).expect("applies");
        assert_eq!(kept.num_rows(), 1);
        let ages = kept.column(0).as_any().downcast_ref::<Int64Array>().expect("int64");
        assert_eq!(ages.value(0), 18);
        let filter: RowFilter = "age < 17.5".parse().expect("parses");
        assert_eq!(filter.apply(&batch()).expect("applies").num_rows(), 1);
    }

    #[test]
    fn checks_columns_and_types_against_the_schema() {
        let schema = batch().schema();
        assert!("age > 3".parse::<RowFilter>().expect("p").check(&schema).is_ok());
        assert!("income > 3".parse::<RowFilter>().expect("p").check(&schema).is_err());
        assert!("region > 3".parse::<RowFilter>().expect("p").check(&schema).is_err());
        assert!("age = 'x'".parse::<RowFilter>().expect("p").check(&schema).is_err());
    }
}
