//! [`Executor`] on Spin's SQLite, database `default`: `spin:sqlite/sqlite@3.0.0` in the WASIp2
//! build, the synchronous functions of `@3.1.0` in the WASIp3 build, which includes this file
//! (`crate::bindings::sqlite` is the interface each build imports).

use crate::bindings::sqlite::{Connection, Error as SqliteError, Value as SqliteValue};
use crate::store::sql::{Dialect, SQLITE};
use crate::store::{Executor, Param, Row, StoreError, Value};

/// The instance's connection to the `default` database.
#[derive(Debug)]
pub(crate) struct SpinSqlite {
    conn: Connection,
}

impl SpinSqlite {
    /// Opens the `default` database.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] when the host refuses it.
    pub(crate) fn open() -> Result<Self, StoreError> {
        Ok(Self {
            conn: Connection::open("default").map_err(store_error)?,
        })
    }

    fn run(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        let params: Vec<SqliteValue> = params.iter().map(value).collect();
        let result = self.conn.execute(sql, &params).map_err(store_error)?;
        result
            .rows
            .into_iter()
            .map(|row| {
                row.values
                    .into_iter()
                    .map(column)
                    .collect::<Result<_, _>>()
                    .map(Row)
            })
            .collect()
    }
}

impl Executor for SpinSqlite {
    fn dialect(&self) -> &'static Dialect {
        &SQLITE
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        self.run(sql, params)
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        self.run(sql, params)?;
        Ok(self.conn.changes())
    }
}

fn value(param: &Param<'_>) -> SqliteValue {
    match *param {
        Param::Null => SqliteValue::Null,
        Param::Int(n) => SqliteValue::Integer(n),
        Param::Text(text) => SqliteValue::Text(text.to_owned()),
        Param::Bytes(bytes) => SqliteValue::Blob(bytes.to_vec()),
    }
}

fn column(value: SqliteValue) -> Result<Value, StoreError> {
    Ok(match value {
        SqliteValue::Null => Value::Null,
        SqliteValue::Integer(n) => Value::Int(n),
        SqliteValue::Text(text) => Value::Text(text),
        SqliteValue::Blob(bytes) => Value::Bytes(bytes),
        // No column of ours holds a REAL.
        SqliteValue::Real(_) => return Err(StoreError::Shape("unexpected real")),
    })
}

fn store_error(err: SqliteError) -> StoreError {
    StoreError::Sqlite(match err {
        SqliteError::NoSuchDatabase => "no such database".to_owned(),
        SqliteError::AccessDenied => "access denied".to_owned(),
        SqliteError::InvalidConnection => "invalid connection".to_owned(),
        SqliteError::DatabaseFull => "database full".to_owned(),
        SqliteError::Io(text) => text,
    })
}
