//! This layer's failures, each turned into the `spin:postgres` error Spin gives, here and
//! nowhere else.

use crate::bindings::spin::postgres::postgres::{self as wit, QueryError};
use std::time::Duration;

/// Why a Postgres call failed: this layer's errors, each turned into the WIT error Spin gives
/// in one place (`From<PgError> for wit::Error`).
#[derive(Debug, thiserror::Error)]
pub(super) enum PgError {
    #[error("address {0} is not permitted")]
    NotPermitted(String),
    #[error("Unix sockets are not supported on WebAssembly")]
    UnixSocket,
    #[error("the address is not a valid PostgreSQL connection string")]
    InvalidAddress,
    #[error("{0}")]
    Config(String),
    #[error("too many connections: none became free within {0:?}")]
    PoolFull(Duration),
    #[error("timed out connecting to {shown} after {after:?}")]
    ConnectTimeout { shown: String, after: Duration },
    #[error("cannot connect to {shown}: {}", zoe_postgres_tls::error_text(.source))]
    Connect {
        shown: String,
        source: tokio_postgres::Error,
    },
    #[error("connection pool failure: {0}")]
    Pool(String),
    #[error(
        "the connection to {0} was lost inside a transaction, which the server rolled back; \
         end it (ROLLBACK) to go on"
    )]
    TransactionLost(String),
    #[error("{0}")]
    BadParameter(String),
    #[error(transparent)]
    Query(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Row(String),
}

impl From<PgError> for wit::Error {
    fn from(err: PgError) -> Self {
        match err {
            PgError::Query(source) => wit::Error::QueryFailed(query_error(&source)),
            PgError::Row(text) => wit::Error::QueryFailed(QueryError::Text(text)),
            PgError::BadParameter(text) => wit::Error::BadParameter(text),
            PgError::Pool(_) => wit::Error::Other(err.to_string()),
            PgError::NotPermitted(_)
            | PgError::UnixSocket
            | PgError::InvalidAddress
            | PgError::Config(_)
            | PgError::PoolFull(_)
            | PgError::ConnectTimeout { .. }
            | PgError::Connect { .. }
            | PgError::TransactionLost(_) => wit::Error::ConnectionFailed(err.to_string()),
        }
    }
}

/// Spin's mapping: a server error becomes a structured `db-error`, anything else (a closed
/// connection, a parameter the server's type rejects) its text.
fn query_error(err: &tokio_postgres::Error) -> QueryError {
    let as_text = format!("{err:?}");
    let Some(db) = err.as_db_error() else {
        return QueryError::Text(as_text);
    };
    let mut extras = Vec::new();
    let mut extra = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            extras.push((name.to_owned(), value));
        }
    };
    extra("column", db.column().map(str::to_owned));
    extra("constraint", db.constraint().map(str::to_owned));
    extra("routine", db.routine().map(str::to_owned));
    extra("hint", db.hint().map(str::to_owned));
    extra("table", db.table().map(str::to_owned));
    extra("datatype", db.datatype().map(str::to_owned));
    extra("schema", db.schema().map(str::to_owned));
    extra("file", db.file().map(str::to_owned));
    extra("line", db.line().map(|line| line.to_string()));
    extra("where_", db.where_().map(str::to_owned));
    QueryError::DbError(wit::DbError {
        as_text,
        severity: db.severity().to_owned(),
        code: db.code().code().to_owned(),
        message: db.message().to_owned(),
        detail: db.detail().map(str::to_owned),
        extras,
    })
}
