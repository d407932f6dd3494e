//! [`Executor`] on the synchronous `postgres` crate (feature `native-postgres`): the same SQL
//! as `spin:postgres`, run natively, so the conformance suite runs against a real server
//! and the benchmarks can measure the engine's native limit on PostgreSQL.
//!
//! TLS follows the URL's `sslmode` with libpq's meanings, as the host's `spin:postgres` does,
//! through the same code ([`zoe_postgres_tls`]): TLS for every mode but `disable`, certificates
//! checked by `verify-ca` and `verify-full` against the system's roots and the root
//! certificate in `SESSION_POSTGRES_ROOT_CERT`.

use super::sql::{Dialect, POSTGRES, unavailable_code};
use super::{Executor, Param, Row, StoreError, Value};
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Statement};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One connection, over TLS unless the URL says `sslmode=disable`.
pub struct NativePostgres {
    client: RefCell<Client>,
    statements: RefCell<HashMap<String, Statement>>,
}

// The client holds the connection's parameters, password included: show nothing.
impl std::fmt::Debug for NativePostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativePostgres").finish_non_exhaustive()
    }
}

/// How long a connection attempt may take unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl NativePostgres {
    /// Connects to `url` (`postgres://user:password@host:port/database`), trusting the root
    /// certificate named by `SESSION_POSTGRES_ROOT_CERT` when it is set.
    ///
    /// # Errors
    ///
    /// As [`NativePostgres::connect_with_root_cert`].
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let root_cert = std::env::var_os(zoe_postgres_tls::ROOT_CERT_ENV)
            .filter(|path| !path.is_empty())
            .map(PathBuf::from);
        Self::connect_with_root_cert(url, root_cert.as_deref())
    }

    /// Connects to `url`, trusting the root certificates in the PEM file `root_cert` besides
    /// the system's when the URL's `sslmode` verifies the server (`verify-ca`, `verify-full`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the server cannot be reached, [`StoreError::Postgres`]
    /// for a URL that does not parse, an unreadable root certificate, a refused server
    /// certificate (the message says why) or a refused login. No message carries the URL.
    pub fn connect_with_root_cert(url: &str, root_cert: Option<&Path>) -> Result<Self, StoreError> {
        let (mut config, mode) =
            zoe_postgres_tls::parse(url).map_err(|err| StoreError::Postgres(err.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let config = postgres::Config::from(config);
        let client = if mode == zoe_postgres_tls::SslMode::Disable {
            config.connect(NoTls)
        } else {
            let tls = zoe_postgres_tls::connector(mode, root_cert)
                .map_err(|err| StoreError::Postgres(err.to_string()))?;
            config.connect(tls)
        };
        Ok(Self {
            client: RefCell::new(client.map_err(store_error)?),
            statements: RefCell::new(HashMap::new()),
        })
    }
}

impl Executor for NativePostgres {
    fn dialect(&self) -> &'static Dialect {
        &POSTGRES
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        let statement = self.prepared(sql)?;
        let rows = self
            .client
            .borrow_mut()
            .query(&statement, &binds(params))
            .map_err(store_error)?;
        rows.iter().map(row).collect()
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let statement = self.prepared(sql)?;
        self.client
            .borrow_mut()
            .execute(&statement, &binds(params))
            .map_err(store_error)
    }
}

impl NativePostgres {
    /// `sql` prepared on this connection, once: the store runs a small fixed set of
    /// statements, and preparing each call would double its round trips (Spin's and our
    /// host's `spin:postgres` keep prepared statements per connection too).
    fn prepared(&self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.borrow_mut().prepare(sql).map_err(store_error)?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// The one null we bind: every nullable parameter of ours is text.
const NULL: Option<&str> = None;

fn binds<'p>(params: &'p [Param<'_>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| -> &(dyn ToSql + Sync) {
            match param {
                Param::Null => &NULL,
                Param::Int(n) => n,
                Param::Text(text) => text,
                Param::Bytes(bytes) => bytes,
            }
        })
        .collect()
}

fn row(row: &postgres::Row) -> Result<Row, StoreError> {
    let shape = |_| StoreError::Shape("postgres column does not decode");
    row.columns()
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let value = match *col.type_() {
                Type::INT8 => row
                    .try_get::<_, Option<i64>>(i)
                    .map_err(shape)?
                    .map(Value::Int),
                Type::INT4 => row
                    .try_get::<_, Option<i32>>(i)
                    .map_err(shape)?
                    .map(|n| Value::Int(i64::from(n))),
                Type::INT2 => row
                    .try_get::<_, Option<i16>>(i)
                    .map_err(shape)?
                    .map(|n| Value::Int(i64::from(n))),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => row
                    .try_get::<_, Option<String>>(i)
                    .map_err(shape)?
                    .map(Value::Text),
                Type::BYTEA => row
                    .try_get::<_, Option<Vec<u8>>>(i)
                    .map_err(shape)?
                    .map(Value::Bytes),
                _ => return Err(StoreError::Shape("unexpected postgres column type")),
            };
            Ok(value.unwrap_or(Value::Null))
        })
        .collect::<Result<_, _>>()
        .map(Row)
}

fn store_error(err: postgres::Error) -> StoreError {
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        return if unavailable_code(code) {
            StoreError::Unavailable(db.message().to_owned())
        } else {
            StoreError::Postgres(format!("{} ({code})", db.message()))
        };
    }
    let io = std::error::Error::source(&err).is_some_and(|source| source.is::<std::io::Error>());
    let text = zoe_postgres_tls::error_text(&err);
    // A refused certificate is a setting to fix, not an outage to wait out.
    if text.starts_with("error performing TLS handshake") {
        StoreError::Postgres(text)
    } else if err.is_closed()
        || io
        || text.starts_with("error connecting")
        || text.contains("timeout")
    {
        StoreError::Unavailable(text)
    } else {
        StoreError::Postgres(text)
    }
}
