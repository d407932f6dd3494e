//! [`Executor`] on Spin's PostgreSQL (`spin:postgres/postgres@4.0.0`, spin-sdk's `pg4`).
//!
//! One connection resource per [`Db`](super::Db): the host keeps a transaction on the
//! connection that began it. Failures that mean "the server cannot be reached now" become
//! [`StoreError::Unavailable`] here, once, so that callers answer 503 and the handle is
//! replaced on the next call.

use super::sql::{Dialect, POSTGRES, unavailable_code};
use super::{Executor, Param, Row, StoreError, Value};
use spin_sdk::pg4::{Connection, DbValue, ParameterValue, PgError, QueryError};

/// A connection to the database at `database_url`.
#[derive(Debug)]
pub(crate) struct SpinPostgres {
    conn: Connection,
}

impl SpinPostgres {
    /// Connects to `url`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the server cannot be reached or refuses us (the host
    /// also refuses an address it does not allow), another [`StoreError`] otherwise.
    pub(crate) fn open(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            conn: Connection::open(url).map_err(store_error)?,
        })
    }
}

impl Executor for SpinPostgres {
    fn dialect(&self) -> &'static Dialect {
        &POSTGRES
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        let params: Vec<ParameterValue> = params.iter().map(parameter).collect();
        let set = self.conn.query(sql, &params).map_err(store_error)?;
        set.rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(column)
                    .collect::<Result<_, _>>()
                    .map(Row)
            })
            .collect()
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let params: Vec<ParameterValue> = params.iter().map(parameter).collect();
        self.conn.execute(sql, &params).map_err(store_error)
    }
}

fn parameter(param: &Param<'_>) -> ParameterValue {
    match *param {
        Param::Null => ParameterValue::DbNull,
        Param::Int(n) => ParameterValue::Int64(n),
        Param::Text(text) => ParameterValue::Str(text.to_owned()),
        Param::Bytes(bytes) => ParameterValue::Binary(bytes.to_vec()),
    }
}

fn column(value: DbValue) -> Result<Value, StoreError> {
    Ok(match value {
        DbValue::DbNull => Value::Null,
        DbValue::Int8(n) => Value::Int(i64::from(n)),
        DbValue::Int16(n) => Value::Int(i64::from(n)),
        DbValue::Int32(n) => Value::Int(i64::from(n)),
        DbValue::Int64(n) => Value::Int(n),
        DbValue::Str(text) => Value::Text(text),
        DbValue::Binary(bytes) => Value::Bytes(bytes),
        _ => return Err(StoreError::Shape("unexpected postgres column type")),
    })
}

fn store_error(err: PgError) -> StoreError {
    match err {
        PgError::ConnectionFailed(text) => StoreError::Unavailable(text),
        PgError::QueryFailed(QueryError::DbError(db)) if unavailable_code(&db.code) => {
            StoreError::Unavailable(db.message)
        }
        PgError::QueryFailed(QueryError::DbError(db)) => {
            StoreError::Postgres(format!("{} ({})", db.message, db.code))
        }
        PgError::QueryFailed(QueryError::Text(text)) | PgError::Other(text)
            if lost_connection(&text) =>
        {
            StoreError::Unavailable(text)
        }
        PgError::QueryFailed(QueryError::Text(text))
        | PgError::BadParameter(text)
        | PgError::ValueConversionFailed(text)
        | PgError::Other(text) => StoreError::Postgres(text),
    }
}

/// A failure without SQLSTATE that is the host losing its server: hosts pass tokio-postgres
/// errors on as text, Spin in their `Display` form, ours in their `Debug` form (`kind: Closed`),
/// and a connection pool's failures as `other`.
fn lost_connection(text: &str) -> bool {
    [
        "connection closed",
        "error communicating with the server",
        "error connecting",
        "timeout",
        "timed out",
        "kind: Closed",
        "kind: Io",
        "kind: Connect",
        "kind: Timeout",
        "pool",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}
