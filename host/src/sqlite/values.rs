//! Values between `spin:sqlite` and rusqlite, converted as Spin converts them (text that is
//! not UTF-8 is read lossily).

use crate::bindings::spin::sqlite::sqlite::Value;
use rusqlite::types::{Value as SqlValue, ValueRef};

pub(super) fn to_sql(value: Value) -> SqlValue {
    match value {
        Value::Integer(n) => SqlValue::Integer(n),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
        Value::Null => SqlValue::Null,
    }
}

pub(super) fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(s) => Value::Text(String::from_utf8_lossy(s).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
