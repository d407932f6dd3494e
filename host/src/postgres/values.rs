//! Parameters and result values between `spin:postgres` and tokio-postgres, converted as Spin
//! converts them.

use super::errors::PgError;
use crate::bindings::spin::postgres::postgres::{
    Column, DbDataType, DbValue, ParameterValue, RowSet,
};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};

pub(super) type SqlParameter = Box<dyn ToSql + Send + Sync>;

pub(super) fn to_sql_parameters(params: Vec<ParameterValue>) -> Result<Vec<SqlParameter>, PgError> {
    params
        .into_iter()
        .enumerate()
        .map(|(index, param)| to_sql_parameter(index, param))
        .collect()
}

fn to_sql_parameter(index: usize, param: ParameterValue) -> Result<SqlParameter, PgError> {
    Ok(match param {
        ParameterValue::Boolean(v) => Box::new(v),
        ParameterValue::Int8(v) => Box::new(v),
        ParameterValue::Int16(v) => Box::new(v),
        ParameterValue::Int32(v) => Box::new(v),
        ParameterValue::Int64(v) => Box::new(v),
        ParameterValue::Floating32(v) => Box::new(v),
        ParameterValue::Floating64(v) => Box::new(v),
        ParameterValue::Str(v) => Box::new(v),
        ParameterValue::Binary(v) => Box::new(v),
        ParameterValue::Jsonb(v) => {
            let json: serde_json::Value = serde_json::from_slice(&v).map_err(|err| {
                PgError::BadParameter(format!("parameter ${}: invalid JSON: {err}", index + 1))
            })?;
            Box::new(json)
        }
        ParameterValue::ArrayInt32(v) => Box::new(v),
        ParameterValue::ArrayInt64(v) => Box::new(v),
        ParameterValue::ArrayStr(v) => Box::new(v),
        ParameterValue::DbNull => Box::new(PgNull),
        other => {
            return Err(PgError::BadParameter(format!(
                "parameter ${}: {} values are not supported by this host",
                index + 1,
                parameter_kind(&other)
            )));
        }
    })
}

fn parameter_kind(param: &ParameterValue) -> &'static str {
    match param {
        ParameterValue::Date(_) => "date",
        ParameterValue::Time(_) => "time",
        ParameterValue::Datetime(_) => "datetime",
        ParameterValue::Timestamp(_) => "timestamp",
        ParameterValue::Uuid(_) => "uuid",
        ParameterValue::Decimal(_) => "decimal",
        ParameterValue::RangeInt32(_) => "range-int32",
        ParameterValue::RangeInt64(_) => "range-int64",
        ParameterValue::RangeDecimal(_) => "range-decimal",
        ParameterValue::ArrayDecimal(_) => "array-decimal",
        ParameterValue::Interval(_) => "interval",
        _ => "these",
    }
}

/// SQL NULL for a parameter of any type. tokio-postgres checks an `Option::<T>::None` against
/// the parameter's type, and the guest's `db-null` carries none, so (as in Spin) this accepts
/// every type.
#[derive(Debug)]
struct PgNull;

impl ToSql for PgNull {
    fn to_sql(
        &self,
        _ty: &Type,
        _out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(IsNull::Yes)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A value of a type this host does not convert: the server's binary encoding, as Spin's
/// `unsupported` carries it.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw.to_vec()))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

pub(super) fn row_set(rows: &[Row]) -> Result<RowSet, PgError> {
    // As in Spin, columns are described from the first row, so an empty result has none; a
    // guest tested here then behaves the same under Spin.
    let Some(first) = rows.first() else {
        return Ok(RowSet {
            columns: Vec::new(),
            rows: Vec::new(),
        });
    };
    let columns = first
        .columns()
        .iter()
        .map(|column| Column {
            name: column.name().to_owned(),
            data_type: data_type(column.type_()),
        })
        .collect();
    let rows = rows
        .iter()
        .map(|row| (0..row.len()).map(|index| value(row, index)).collect())
        .collect::<Result<_, _>>()?;
    Ok(RowSet { columns, rows })
}

fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::BYTEA => DbDataType::Binary,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => DbDataType::Str,
        Type::JSONB => DbDataType::Jsonb,
        Type::INT4_ARRAY => DbDataType::ArrayInt32,
        Type::INT8_ARRAY => DbDataType::ArrayInt64,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => DbDataType::ArrayStr,
        _ => DbDataType::Other(ty.name().to_owned()),
    }
}

fn value(row: &Row, index: usize) -> Result<DbValue, PgError> {
    fn get<'a, T: FromSql<'a>>(
        row: &'a Row,
        index: usize,
        wrap: impl FnOnce(T) -> DbValue,
    ) -> Result<DbValue, PgError> {
        let value: Option<T> = row.try_get(index).map_err(|err| {
            PgError::Row(format!("column {}: {err}", row.columns()[index].name()))
        })?;
        Ok(value.map_or(DbValue::DbNull, wrap))
    }
    match *row.columns()[index].type_() {
        Type::BOOL => get(row, index, DbValue::Boolean),
        Type::BYTEA => get(row, index, DbValue::Binary),
        Type::FLOAT4 => get(row, index, DbValue::Floating32),
        Type::FLOAT8 => get(row, index, DbValue::Floating64),
        Type::INT2 => get(row, index, DbValue::Int16),
        Type::INT4 => get(row, index, DbValue::Int32),
        Type::INT8 => get(row, index, DbValue::Int64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => get(row, index, DbValue::Str),
        Type::JSONB => get(row, index, |json: serde_json::Value| {
            DbValue::Jsonb(json.to_string().into_bytes())
        }),
        Type::INT4_ARRAY => get(row, index, DbValue::ArrayInt32),
        Type::INT8_ARRAY => get(row, index, DbValue::ArrayInt64),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => {
            get(row, index, DbValue::ArrayStr)
        }
        _ => get(row, index, |raw: Raw| DbValue::Unsupported(raw.0)),
    }
}
