//! [`Executor`] on Spin's PostgreSQL: `spin:postgres/postgres@4.0.0` in the WASIp2 build, the
//! synchronous functions of `@4.2.0` in the WASIp3 build, which includes this file
//! (`crate::bindings::postgres` is the interface each build imports).
//!
//! One connection resource per [`Db`](crate::store::Db): the host keeps a transaction on the
//! connection that began it. Failures that mean "the server cannot be reached now" become
//! [`StoreError::Unavailable`] here, once, so that callers answer 503 and the handle is
//! replaced on the next call.
//!
//! In the WASIp2 build every `query` goes to the host inside an envelope that always yields at
//! least one row (see [`enveloped`]), because on Spin 4.0.x a `query` that matches no rows
//! never returns (spinframework/spin#3671), and matching no rows is ordinary here: an unknown
//! id, a user without sessions, a full user's refused create. `execute` needs none: it is not
//! affected. The WASIp3 build runs only on Spin 4.1 and later, where #3673 fixed it, and sends
//! statements bare (`crate::bindings::POSTGRES_QUERY_ENVELOPE`).

use crate::bindings::POSTGRES_QUERY_ENVELOPE;
use crate::bindings::postgres::{
    Connection, DbValue, Error as PgError, ParameterValue, QueryError,
};
use crate::store::sql::{Dialect, POSTGRES, lost_connection, unavailable_code};
use crate::store::{Executor, Param, Row, StoreError, Value};

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
        if !POSTGRES_QUERY_ENVELOPE {
            let set = self.conn.query(sql, &params).map_err(store_error)?;
            return set
                .rows
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(column)
                        .collect::<Result<_, _>>()
                        .map(Row)
                })
                .collect();
        }
        let set = self
            .conn
            .query(&enveloped(sql), &params)
            .map_err(store_error)?;
        unwrap_envelope(set.rows)
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let params: Vec<ParameterValue> = params.iter().map(parameter).collect();
        self.conn.execute(sql, &params).map_err(store_error)
    }
}

/// `statement` (one `SELECT`, or an `INSERT`/`UPDATE`/`DELETE … RETURNING`) inside an
/// envelope that yields its rows with their row number in front, in its order, or, when it
/// matches none, one row whose number is NULL.
///
/// Why: Spin 4.0.0 to 4.0.x (the synchronous `query` of every `spin:postgres` version, ours
/// `@4.0.0` included) never returns when the statement matches no rows
/// (spinframework/spin#3671, fixed in Spin 4.1 by #3673): the guest blocks in the host call
/// for good, with its transaction left open on the server. `execute` takes another path and is
/// not affected. A statement that always yields a row is never sent, so the service works on
/// every Spin 4.0.x as well as on 4.1 and later; the native host's `--spin-compat 4.0` traps
/// on an empty answer, so the component tests would see a statement sent bare.
///
/// How: the statement is a CTE (the one place PostgreSQL admits data-modifying statements in
/// a query), numbered with `row_number()` and joined to a one-row `VALUES` with `LEFT JOIN …
/// ON true`, which yields the CTE's rows, or a single row of NULLs when there are none. Each
/// column keeps the statement's own type (bytea, bigint, text, NULLs round-trip as before),
/// and `ORDER BY` the number keeps the statement's order. Its cost, measured on PostgreSQL 15
/// over loopback: 3–5 µs for a one-row lookup and 10–20 µs for a ten-row list at the server,
/// 12–22 µs on a validate of ~360 µs through the native host, a create's within noise. The
/// native executors send statements bare: only Spin's transport needs this.
fn enveloped(statement: &str) -> String {
    let statement = statement.trim_end().trim_end_matches(';');
    format!(
        "WITH zoe_q AS ({statement}) \
         SELECT zoe_r.* FROM (VALUES (1)) AS zoe_one (n) \
         LEFT JOIN (SELECT row_number() OVER () AS zoe_n, * FROM zoe_q) AS zoe_r ON true \
         ORDER BY 1"
    )
}

/// The statement's own rows from the rows of [`enveloped`]: each without its number, none for
/// the lone row numbered NULL.
///
/// # Errors
///
/// [`StoreError::Shape`] when the rows are not numbered 1, 2, … in order (or are one NULL
/// row), which only a host that does not run the envelope as sent would answer.
fn unwrap_envelope(rows: Vec<Vec<DbValue>>) -> Result<Vec<Row>, StoreError> {
    if let [row] = rows.as_slice()
        && matches!(row.first(), Some(DbValue::DbNull))
    {
        return Ok(Vec::new());
    }
    if rows.is_empty() {
        return Err(StoreError::Shape("enveloped query answered no row"));
    }
    rows.into_iter()
        .zip(1_i64..)
        .map(|(row, expected)| {
            let mut values = row.into_iter();
            match values.next() {
                Some(DbValue::Int64(number)) if number == expected => {
                    values.map(column).collect::<Result<_, _>>().map(Row)
                }
                _ => Err(StoreError::Shape("enveloped query rows out of order")),
            }
        })
        .collect()
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
