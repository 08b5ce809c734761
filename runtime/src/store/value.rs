//! The values that cross the store's interface, whichever database is behind it: parameters
//! bound into statements ([`ToValue`], [`params!`](crate::params)) and columns read out of
//! rows ([`Row`], [`FromValue`]). The schema uses four kinds only (64-bit integers, text, bytes
//! and NULL), which both SQLite and PostgreSQL store exactly; booleans are integers 0 and 1.

/// One SQL value, as bound or as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (also a boolean, as 0 or 1).
    Integer(i64),
    /// A double (only in computed columns; the schema stores none).
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// The kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Integer(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
        }
    }
}

/// A value that can be bound as a statement's parameter.
pub trait ToValue {
    /// The value to bind.
    fn to_value(&self) -> Value;
}

/// Parameters for a statement, by position: `params![a, b]` binds `?1` to `a` and `?2` to `b`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::store::ToValue] };
    ($($param:expr),+ $(,)?) => { &[$(&$param as &dyn $crate::store::ToValue),+] as &[&dyn $crate::store::ToValue] };
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

impl ToValue for i64 {
    fn to_value(&self) -> Value {
        Value::Integer(*self)
    }
}

impl ToValue for i32 {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl ToValue for u32 {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

/// Why a column could not be read as the type asked for.
#[derive(Debug, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct DecodeError {
    /// The column's position (0-based).
    pub column: usize,
    /// What was wrong.
    pub message: String,
}

/// One row of a query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    pub(super) fn new(values: Vec<Value>) -> Row {
        Row { values }
    }

    /// Column `column` (0-based) as a `T`.
    pub fn get<T: FromValue>(&self, column: usize) -> Result<T, DecodeError> {
        let value = self
            .values
            .get(column)
            .ok_or_else(|| DecodeError { column, message: format!("the row has {} columns", self.values.len()) })?;
        T::from_value(value).map_err(|message| DecodeError { column, message })
    }
}

/// A type a column can be read as.
pub trait FromValue: Sized {
    /// The value as a `Self`, or what it is instead.
    fn from_value(value: &Value) -> Result<Self, String>;
}

fn expected(what: &str, value: &Value) -> String {
    format!("expected {what}, found {}", value.kind())
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<i64, String> {
        match value {
            Value::Integer(i) => Ok(*i),
            other => Err(expected("an integer", other)),
        }
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Result<u32, String> {
        let i = i64::from_value(value)?;
        u32::try_from(i).map_err(|_| format!("{i} is not a count"))
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<bool, String> {
        match value {
            Value::Integer(i) => Ok(*i != 0),
            other => Err(expected("a boolean", other)),
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<f64, String> {
        match value {
            Value::Real(r) => Ok(*r),
            // Exact for the integers a count or a sum of counts can be.
            Value::Integer(i) => Ok(*i as f64),
            other => Err(expected("a number", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<String, String> {
        match value {
            Value::Text(t) => Ok(t.clone()),
            other => Err(expected("text", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Vec<u8>, String> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(expected("bytes", other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Option<T>, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_decode_what_they_hold_and_name_the_column_otherwise() {
        let row = Row::new(vec![Value::Integer(7), Value::Null, Value::Text("a".into())]);
        assert_eq!(row.get::<i64>(0).expect("int"), 7);
        assert!(row.get::<bool>(0).expect("bool"));
        assert_eq!(row.get::<Option<String>>(1).expect("null"), None);
        let wrong = row.get::<i64>(2).expect_err("text is not an integer");
        assert_eq!(wrong.to_string(), "column 2: expected an integer, found text");
        assert!(row.get::<String>(3).is_err(), "no fourth column");
    }
}
