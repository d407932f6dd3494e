//! `spin:postgres/postgres@4.0.0` on tokio-postgres, presented the way Spin presents it.
//!
//! As in Spin's outbound-pg factor, each guest `open` takes one connection from a pool
//! (deadpool-postgres) and keeps it until the guest drops the handle, so a transaction the
//! guest runs as statements (`BEGIN` … `COMMIT`) stays on one server connection, and a fresh
//! instance per request pays no TCP and authentication handshake per `open`.
//!
//! Only the configured `database_url` may be opened, byte for byte: this host's stand-in for
//! Spin's `allowed_outbound_hosts`. Any other address is refused before any network access with
//! Spin's own answer, `connection-failed("address postgres://HOST:PORT is not permitted")`.
//!
//! Failures are the WIT error values Spin gives, never traps: an unreachable server, a connect
//! that takes longer than [`PoolOptions::connect_timeout`] and a pool that stays full for
//! [`PoolOptions::wait_timeout`] are `connection-failed`; SQL errors are `query-failed` with the
//! server's `db-error` (SQLSTATE code, message, detail). A pooled connection that the server
//! closed (a restart) is replaced at the next `open`, so the service recovers by itself. The
//! URL's password appears in no error and no log: errors name only `postgres://HOST:PORT`.
//!
//! A connection goes back to the pool only outside a transaction. The host follows the guest's
//! transaction statements (see [`classify`]); a handle dropped while one may be open, by the
//! guest or by a trap, is rolled back before its connection is reused, or the connection is
//! closed (which makes the server roll back). What differs from Spin: a statement whose
//! connection the server has closed, outside a transaction, runs on a fresh pooled connection
//! (so an instance that keeps a handle across requests recovers after a restart too), and
//! statements are prepared once per connection and cached.
//!
//! Connections are plain TCP (no TLS implementation is linked): `sslmode=prefer`, the default,
//! connects without TLS, and `sslmode=require` fails with `connection-failed`.
//!
//! [`SpinCompat::V4_0`] answers as Spin 4.0.x does where that differs from later Spin: a
//! `query` that matches no rows, which Spin 4.0.x never answers, traps instead of returning.
//!
//! Types, as Spin converts them: parameters `boolean`, `int8`…`int64`, `floating32/64`,
//! `str`, `binary`, `jsonb`, `array-int32/int64/str` and `db-null`; result columns of type
//! `bool`, `int2/4/8`, `float4/8`, `text`/`varchar`/`bpchar`, `bytea`, `jsonb`, `int4[]`,
//! `int8[]` and `text[]`. Other parameter kinds are `bad-parameter`; other column types come
//! back as `unsupported` (the server's binary encoding) with data type `other(NAME)`.

pub use crate::bindings::spin::postgres::postgres as wit;

use crate::host_calls::HostCalls;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::Host;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::{NoTls, Row, Statement};
use wasmtime::component::{Resource, ResourceTable};
use wit::{Column, DbDataType, DbValue, ParameterValue, QueryError, RowSet};

/// Prepared statements cached per connection before the cache is emptied: the guest uses a
/// small fixed set, and a guest that builds SQL text must not grow a connection without bound.
const STATEMENT_CACHE: usize = 256;

/// How the pool behind `database_url` behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most server connections open at once (Spin uses 64 per address). Each guest handle
    /// holds one from `open` to drop.
    pub max_connections: usize,
    /// How long connecting (TCP, start-up, authentication) may take before `open` fails with
    /// `connection-failed`.
    pub connect_timeout: Duration,
    /// How long `open` waits for a connection when all are in use.
    pub wait_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 32,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(5),
        }
    }
}

/// Which Spin's `spin:postgres` this host answers as, where Spin releases differ in a way a
/// guest can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpinCompat {
    /// Spin before 4.0 and from 4.1 on: a `query` that matches no rows answers an empty row
    /// set (the default).
    #[default]
    Current,
    /// Spin 4.0.x: the synchronous `query` never returns when its statement matches no rows
    /// (spinframework/spin#3671, a regression of 4.0.0 fixed in 4.1 by #3673; `execute` is
    /// not affected). The guest waits forever there, so this host traps instead of answering,
    /// and the trap names the issue: a test in this mode fails at once where Spin 4.0.x
    /// would hang. For tests (`serve --spin-compat 4.0`).
    V4_0,
}

/// A [`SpinCompat`] value that is neither `4.0` nor `current`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spin compatibility must be `4.0` or `current`, not {0:?}")]
pub struct SpinCompatError(String);

impl std::str::FromStr for SpinCompat {
    type Err = SpinCompatError;

    /// `4.0` (also `4.0.x` or a `4.0.N` release) or `current`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let value = text.trim().to_ascii_lowercase();
        let release = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        match value.as_str() {
            "current" => Ok(Self::Current),
            "4.0" | "4.0.x" => Ok(Self::V4_0),
            _ if value.strip_prefix("4.0.").is_some_and(release) => Ok(Self::V4_0),
            _ => Err(SpinCompatError(text.to_owned())),
        }
    }
}

impl SpinCompat {
    /// A `query`'s answer as this Spin gives it: Spin 4.0.x gives none for an empty result,
    /// which here is a trap naming the issue (a hang would stall the caller instead).
    fn query_answer(self, statement: &str, rows: RowSet) -> wasmtime::Result<RowSet> {
        if self == Self::V4_0 && rows.rows.is_empty() {
            const SHOWN: usize = 200;
            let shown: String = statement.chars().take(SHOWN).collect();
            let more = if shown.len() < statement.len() {
                "…"
            } else {
                ""
            };
            return Err(wasmtime::Error::msg(format!(
                "spin:postgres query matched no rows, which Spin 4.0.x never answers (the \
                 guest would hang: spinframework/spin#3671, fixed in Spin 4.1); this host, in \
                 Spin 4.0 mode, traps instead. Statement: {shown}{more}"
            )));
        }
        Ok(rows)
    }
}

/// The one PostgreSQL database this host lets the component open, with its pool.
///
/// Creating it connects to nothing, so a host starts while PostgreSQL is down; the first
/// `open` connects.
pub struct Postgres {
    allowed: Option<Allowed>,
    compat: SpinCompat,
}

struct Allowed {
    url: String,
    /// `postgres://HOST:PORT`, for messages: the URL without user, password or database.
    shown: String,
    pool: Result<Pool, String>,
    options: PoolOptions,
}

impl Default for Postgres {
    /// No URL: every `open` is refused, as Spin refuses a host not in `allowed_outbound_hosts`.
    fn default() -> Self {
        Self {
            allowed: None,
            compat: SpinCompat::Current,
        }
    }
}

// The URL carries the password, so only the host and port are shown.
impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.allowed {
            None => f.write_str("Postgres(none)"),
            Some(allowed) => write!(f, "Postgres({})", allowed.shown),
        }
    }
}

impl Postgres {
    /// Allows `open` of exactly `url` (when it is `Some` and not empty) through a pool with
    /// `options`. A URL that is not a valid PostgreSQL connection string is accepted here and
    /// reported by every `open` (see [`Postgres::config_error`]), so start-up never fails.
    pub fn new(url: Option<&str>, options: PoolOptions) -> Self {
        let Some(url) = url.filter(|url| !url.is_empty()) else {
            return Self::default();
        };
        let pool = url
            .parse::<tokio_postgres::Config>()
            .map_err(|_| "database_url is not a valid PostgreSQL connection string".to_owned())
            .and_then(|config| build_pool(config, options));
        Self {
            allowed: Some(Allowed {
                url: url.to_owned(),
                shown: describe(url).unwrap_or_else(|_| "database_url".to_owned()),
                pool,
                options,
            }),
            compat: SpinCompat::Current,
        }
    }

    /// Answers as `compat` says (see [`SpinCompat`]); a builder-style helper.
    #[must_use]
    pub fn with_compat(mut self, compat: SpinCompat) -> Self {
        self.compat = compat;
        self
    }

    /// Why the configured URL cannot be used, if it cannot (never the URL itself).
    pub fn config_error(&self) -> Option<&str> {
        self.allowed
            .as_ref()
            .and_then(|allowed| allowed.pool.as_ref().err())
            .map(String::as_str)
    }

    /// Connections currently open to the server, idle or lent (for tests and stats).
    pub fn open_connections(&self) -> usize {
        match &self.allowed {
            Some(Allowed { pool: Ok(pool), .. }) => pool.status().size,
            _ => 0,
        }
    }

    /// A guest `open`: checks `address` against the configured URL, then lends a pooled
    /// connection.
    async fn open(&self, address: &str) -> Result<Connection, PgError> {
        let allowed = self
            .allowed
            .as_ref()
            .filter(|allowed| allowed.url == address)
            .ok_or_else(|| match describe(address) {
                Ok(shown) => PgError::NotPermitted(shown),
                Err(err) => err,
            })?;
        let pool = allowed
            .pool
            .as_ref()
            .map_err(|reason| PgError::Config(reason.clone()))?;
        let client = checkout(pool, &allowed.shown, allowed.options).await?;
        Ok(Connection {
            client: Some(client),
            pool: pool.clone(),
            shown: allowed.shown.clone(),
            options: allowed.options,
            transaction: Transaction::None,
            compat: self.compat,
        })
    }
}

fn build_pool(mut config: tokio_postgres::Config, options: PoolOptions) -> Result<Pool, String> {
    config.connect_timeout(options.connect_timeout);
    // A server that vanishes without closing the socket (a network partition) is noticed in
    // about a minute instead of the kernel's two hours.
    config.keepalives_idle(Duration::from_secs(30));
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            // Checking out a connection costs no round trip; a connection the server closed
            // (restart, crash) is seen as closed and replaced.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.max_connections)
        .wait_timeout(Some(options.wait_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|err| format!("cannot build the PostgreSQL pool: {err}"))
}

async fn checkout(pool: &Pool, shown: &str, options: PoolOptions) -> Result<Object, PgError> {
    pool.get().await.map_err(|err| match err {
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            PgError::PoolFull(options.wait_timeout)
        }
        PoolError::Timeout(_) => PgError::ConnectTimeout {
            shown: shown.to_owned(),
            after: options.connect_timeout,
        },
        PoolError::Backend(source) => PgError::Connect {
            shown: shown.to_owned(),
            source,
        },
        other => PgError::Pool(other.to_string()),
    })
}

/// `postgres://HOST:PORT` of an address, as Spin names it when refusing one: the first host
/// and its port, without user, password or database.
fn describe(address: &str) -> Result<String, PgError> {
    let config = address
        .parse::<tokio_postgres::Config>()
        .map_err(|_| PgError::InvalidAddress)?;
    let ports = config.get_ports();
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) => {
            let port = ports.first().map(|p| format!(":{p}")).unwrap_or_default();
            Ok(format!("postgres://{host}{port}"))
        }
        #[cfg(unix)]
        Some(Host::Unix(_)) => Err(PgError::UnixSocket),
        None => Err(PgError::InvalidAddress),
    }
}

/// Why a Postgres call failed: this layer's errors, each turned into the WIT error Spin gives
/// in one place (`From<PgError> for wit::Error`).
#[derive(Debug, thiserror::Error)]
enum PgError {
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
    #[error("cannot connect to {shown}: {source}")]
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

/// Where the guest's statements have left its server connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transaction {
    /// Autocommit: the connection may go back to the pool as it is.
    None,
    /// A transaction may be open (the guest began one and has not ended it).
    Open,
    /// The server closed the connection inside a transaction: statements fail until the
    /// guest ends it, so none of them silently runs outside the transaction it expects.
    Lost,
}

/// What a statement does to the transaction state, from its first keywords. Each guest
/// statement is exactly one SQL statement (the extended protocol allows no more), and only
/// `BEGIN` and `START TRANSACTION` open a transaction block, so this is exact for open; for
/// end it errs on the side of "still open", which only costs a `ROLLBACK` on return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `BEGIN`, `START TRANSACTION`.
    Begins,
    /// `COMMIT`, `END`, `ROLLBACK`, `ABORT` (not `… AND CHAIN`, `ROLLBACK TO`, `… PREPARED`),
    /// `PREPARE TRANSACTION`.
    Ends,
    /// Anything else: the state is unchanged.
    Neither,
}

/// Classifies a statement's effect on the transaction state (see [`Effect`]).
pub fn classify(statement: &str) -> Effect {
    let words: Vec<String> = strip_comments(statement)
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|word| !word.is_empty())
        .take(8)
        .map(str::to_ascii_uppercase)
        .collect();
    let has = |word: &str| words.iter().any(|w| w == word);
    match words.first().map(String::as_str) {
        Some("BEGIN" | "START") => Effect::Begins,
        Some("COMMIT" | "END" | "ROLLBACK" | "ABORT") => {
            let chained = words
                .windows(2)
                .any(|pair| pair[1] == "CHAIN" && pair[0] != "NO");
            if has("TO") || has("PREPARED") || chained {
                Effect::Neither
            } else {
                Effect::Ends
            }
        }
        Some("PREPARE") if words.get(1).is_some_and(|w| w == "TRANSACTION") => Effect::Ends,
        _ => Effect::Neither,
    }
}

/// The statement with leading `--` and `/* */` comments removed (only leading ones matter for
/// the first keyword).
fn strip_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("--") {
            text = rest.split_once('\n').map_or("", |(_, rest)| rest);
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.split_once("*/").map_or("", |(_, rest)| rest);
        } else {
            return text;
        }
    }
}

/// The guest's `connection` resource: one pooled server connection, held from `open` to drop.
pub struct Connection {
    /// `None` only while dropping.
    client: Option<Object>,
    pool: Pool,
    shown: String,
    options: PoolOptions,
    transaction: Transaction,
    compat: SpinCompat,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.shown)
            .field("transaction", &self.transaction)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if self.transaction == Transaction::None {
            return; // back to the pool as it is
        }
        // A transaction may be open: roll it back before anyone else gets the connection, off
        // the guest's path. Without a runtime (or if the rollback fails) close the connection
        // instead, which makes the server roll back.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if self.transaction == Transaction::Open => {
                runtime.spawn(async move {
                    if client.batch_execute("ROLLBACK").await.is_err() {
                        drop(Object::take(client));
                    }
                });
            }
            _ => drop(Object::take(client)),
        }
    }
}

impl Connection {
    /// The connection for the next statement: the held one, or outside a transaction a fresh
    /// one if the server has closed it.
    async fn client(&mut self) -> Result<&Object, PgError> {
        let closed = self.client.as_ref().is_none_or(|client| client.is_closed());
        if closed {
            match self.transaction {
                Transaction::None => {
                    let fresh = checkout(&self.pool, &self.shown, self.options).await?;
                    if let Some(dead) = self.client.replace(fresh) {
                        drop(Object::take(dead));
                    }
                }
                Transaction::Open | Transaction::Lost => {
                    self.transaction = Transaction::Lost;
                    return Err(PgError::TransactionLost(self.shown.clone()));
                }
            }
        }
        self.client
            .as_ref()
            .ok_or_else(|| PgError::Pool("connection already returned".to_owned()))
    }

    /// Checks the transaction state before `statement`: its effect, or `None` when the
    /// statement has nothing left to do (a `ROLLBACK` of a transaction the server already
    /// rolled back).
    fn before(&mut self, statement: &str) -> Result<Option<Effect>, PgError> {
        let effect = classify(statement);
        if self.transaction != Transaction::Lost {
            return Ok(Some(effect));
        }
        if effect == Effect::Ends {
            self.transaction = Transaction::None;
            if statement_is_rollback(statement) {
                return Ok(None);
            }
        }
        Err(PgError::TransactionLost(self.shown.clone()))
    }

    fn after(&mut self, effect: Effect, succeeded: bool) {
        match effect {
            // A failed COMMIT ends the transaction too, and if the connection died the
            // server rolled it back.
            Effect::Ends => self.transaction = Transaction::None,
            Effect::Begins if succeeded => self.transaction = Transaction::Open,
            Effect::Begins | Effect::Neither => {}
        }
    }

    async fn query(
        &mut self,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<RowSet, PgError> {
        let Some(effect) = self.before(statement)? else {
            return Ok(RowSet {
                columns: Vec::new(),
                rows: Vec::new(),
            });
        };
        let params = to_sql_parameters(params)?;
        let client = self.client().await?;
        let result = async {
            let prepared = prepare(client, statement).await?;
            let rows = client.query(&prepared, &refs(&params)).await?;
            row_set(&rows)
        }
        .await;
        forget_failed_plan(client, statement, &result);
        self.after(effect, result.is_ok());
        result
    }

    async fn execute(
        &mut self,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<u64, PgError> {
        let Some(effect) = self.before(statement)? else {
            return Ok(0);
        };
        let params = to_sql_parameters(params)?;
        let client = self.client().await?;
        let result = async {
            let prepared = prepare(client, statement).await?;
            Ok::<_, PgError>(client.execute(&prepared, &refs(&params)).await?)
        }
        .await;
        forget_failed_plan(client, statement, &result);
        self.after(effect, result.is_ok());
        result
    }
}

/// A cached plan can go stale (a migration changed a table's columns), so a statement the
/// server rejected is prepared afresh next time.
fn forget_failed_plan<T>(client: &Object, statement: &str, result: &Result<T, PgError>) {
    if let Err(PgError::Query(err)) = result
        && err.as_db_error().is_some()
    {
        client.statement_cache.remove(statement, &[]);
    }
}

fn refs(params: &[SqlParameter]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| param.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

fn statement_is_rollback(statement: &str) -> bool {
    let first = strip_comments(statement)
        .split(|c: char| c.is_whitespace() || c == ';')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    first == "ROLLBACK" || first == "ABORT"
}

async fn prepare(client: &Object, statement: &str) -> Result<Statement, tokio_postgres::Error> {
    if client.statement_cache.size() >= STATEMENT_CACHE {
        client.statement_cache.clear();
    }
    client.prepare_cached(statement).await
}

type SqlParameter = Box<dyn ToSql + Send + Sync>;

fn to_sql_parameters(params: Vec<ParameterValue>) -> Result<Vec<SqlParameter>, PgError> {
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

fn row_set(rows: &[Row]) -> Result<RowSet, PgError> {
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

/// One instance's `spin:postgres` state: the pool its `open` lends connections of, and the
/// counter its calls are counted in.
#[derive(Debug)]
pub struct PostgresCtx {
    postgres: Arc<Postgres>,
    calls: Arc<HostCalls>,
}

impl PostgresCtx {
    pub fn new(postgres: Arc<Postgres>, calls: Arc<HostCalls>) -> Self {
        Self { postgres, calls }
    }

    /// The one database this instance may open.
    pub fn postgres(&self) -> &Arc<Postgres> {
        &self.postgres
    }
}

/// What `spin:postgres` needs of a store: its [`PostgresCtx`] and the resource table that
/// holds the guest's connections.
#[derive(Debug)]
pub struct PostgresCtxView<'a> {
    pub ctx: &'a mut PostgresCtx,
    pub table: &'a mut ResourceTable,
}

/// A store whose guest may import `spin:postgres`.
pub trait PostgresView: Send {
    fn postgres(&mut self) -> PostgresCtxView<'_>;
}

// The linker hands the host `&mut T` (`HasSelf`).
impl<T: PostgresView + ?Sized> PostgresView for &mut T {
    fn postgres(&mut self) -> PostgresCtxView<'_> {
        T::postgres(self)
    }
}

impl<T: PostgresView> wit::Host for T {}

impl<T: PostgresView> wit::HostConnection for T {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, wit::Error>> {
        let PostgresCtxView { ctx, table } = self.postgres();
        ctx.calls.postgres_open();
        let connection = match ctx.postgres.open(&address).await {
            Ok(connection) => connection,
            Err(err) => return Ok(Err(err.into())),
        };
        // A full resource table is the guest holding too many handles: Spin's answer.
        Ok(table
            .push(connection)
            .map_err(|_| wit::Error::ConnectionFailed("too many connections".to_owned())))
    }

    async fn query(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, wit::Error>> {
        let PostgresCtxView { ctx, table } = self.postgres();
        ctx.calls.postgres_statement();
        let connection = table.get_mut(&connection)?;
        match connection.query(&statement, params).await {
            Ok(rows) => Ok(Ok(connection.compat.query_answer(&statement, rows)?)),
            Err(err) => Ok(Err(err.into())),
        }
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, wit::Error>> {
        let PostgresCtxView { ctx, table } = self.postgres();
        ctx.calls.postgres_statement();
        let connection = table.get_mut(&connection)?;
        Ok(connection
            .execute(&statement, params)
            .await
            .map_err(wit::Error::from))
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.postgres().table.delete(connection)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_statements_are_classified_from_their_first_keywords() {
        for begins in [
            "BEGIN",
            "begin;",
            "  BEGIN ISOLATION LEVEL SERIALIZABLE",
            "START TRANSACTION",
            "-- take the lock\nBEGIN",
            "/* c */ begin",
        ] {
            assert_eq!(classify(begins), Effect::Begins, "{begins:?}");
        }
        for ends in [
            "COMMIT",
            "commit;",
            "END",
            "ROLLBACK",
            "ABORT",
            "COMMIT WORK",
            "ROLLBACK AND NO CHAIN",
            "PREPARE TRANSACTION 'x'",
        ] {
            assert_eq!(classify(ends), Effect::Ends, "{ends:?}");
        }
        for neither in [
            "SELECT 1",
            "INSERT INTO t VALUES ($1)",
            "ROLLBACK TO SAVEPOINT a",
            "COMMIT AND CHAIN",
            "COMMIT PREPARED 'x'",
            "SAVEPOINT a",
            "DO $$ BEGIN PERFORM 1; END $$",
            "",
            "-- only a comment",
        ] {
            assert_eq!(classify(neither), Effect::Neither, "{neither:?}");
        }
    }

    #[test]
    fn refused_addresses_are_named_by_host_and_port_only() {
        let shown = describe("postgres://app:hunter2@db.internal:6543/sessions").unwrap();
        assert_eq!(shown, "postgres://db.internal:6543");
        assert_eq!(
            describe("host=db.internal user=app password=hunter2").unwrap(),
            "postgres://db.internal"
        );
        assert!(matches!(
            describe("host=/run/postgresql"),
            Err(PgError::UnixSocket)
        ));
        assert!(matches!(
            describe("postgres://app:hunter2@[::1"),
            Err(PgError::InvalidAddress)
        ));
    }

    #[test]
    fn a_host_without_a_url_and_its_debug_reveal_no_password() {
        let postgres = Postgres::new(
            Some("postgres://app:hunter2@db.internal:6543/sessions"),
            PoolOptions::default(),
        );
        let shown = format!("{postgres:?}");
        assert_eq!(shown, "Postgres(postgres://db.internal:6543)");
        assert_eq!(postgres.config_error(), None);
        let bad = Postgres::new(
            Some("postgres://app:hunter2@host:notaport/db"),
            PoolOptions::default(),
        );
        let reason = bad.config_error().unwrap();
        assert!(!reason.contains("hunter2"), "{reason}");
        assert_eq!(format!("{:?}", Postgres::default()), "Postgres(none)");
    }
}
