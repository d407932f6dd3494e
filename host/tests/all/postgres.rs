//! `spin:postgres/postgres@4.0.0` against a real PostgreSQL server, driven through the
//! generated host traits on a [`HostState`] (no guest needed): types, transactions, the
//! allowed URL, SQL errors, an outage and its recovery, and pooled connections that never
//! carry a transaction to their next user.

use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Resource;
use wasmtime_wasi::WasiCtx;
use zoe_session_host::HostState;
use zoe_session_host::postgres::wit::{
    self, DbDataType, DbValue, HostConnection, ParameterValue, QueryError, RowSet,
};
use zoe_session_host::postgres::{Connection, PoolOptions, Postgres, SpinCompat};
use zoe_session_host::sqlite::{Database, Location};
use zoe_test_postgres::{PgServer, shared};

/// A bound for "promptly" that a loaded CI machine still meets; the real figures are
/// milliseconds (see the assertions' messages).
const PROMPT: Duration = Duration::from_secs(10);

fn state(postgres: &Arc<Postgres>) -> HostState {
    HostState::new(
        WasiCtx::builder().build(),
        Database::open(Location::Memory).expect("in-memory SQLite"),
        postgres.clone(),
        Arc::default(),
    )
}

fn postgres(url: &str, options: PoolOptions) -> Arc<Postgres> {
    Arc::new(Postgres::new(Some(url), options))
}

async fn try_open(state: &mut HostState, url: &str) -> Result<Resource<Connection>, wit::Error> {
    HostConnection::open(state, url.to_owned())
        .await
        .expect("open does not trap")
}

async fn open(state: &mut HostState, url: &str) -> Resource<Connection> {
    try_open(state, url)
        .await
        .expect("the configured URL opens")
}

fn borrow(conn: &Resource<Connection>) -> Resource<Connection> {
    Resource::new_borrow(conn.rep())
}

async fn try_query(
    state: &mut HostState,
    conn: &Resource<Connection>,
    sql: &str,
    params: Vec<ParameterValue>,
) -> Result<RowSet, wit::Error> {
    HostConnection::query(state, borrow(conn), sql.to_owned(), params)
        .await
        .expect("query does not trap")
}

async fn query(state: &mut HostState, conn: &Resource<Connection>, sql: &str) -> RowSet {
    try_query(state, conn, sql, vec![])
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err:?}"))
}

async fn execute(
    state: &mut HostState,
    conn: &Resource<Connection>,
    sql: &str,
    params: Vec<ParameterValue>,
) -> Result<u64, wit::Error> {
    HostConnection::execute(state, borrow(conn), sql.to_owned(), params)
        .await
        .expect("execute does not trap")
}

/// The single value of a one-row, one-column result.
async fn scalar(state: &mut HostState, conn: &Resource<Connection>, sql: &str) -> DbValue {
    let rows = query(state, conn, sql).await;
    assert_eq!(rows.rows.len(), 1, "{sql}: {rows:?}");
    rows.rows[0][0].clone()
}

async fn int(state: &mut HostState, conn: &Resource<Connection>, sql: &str) -> i64 {
    match scalar(state, conn, sql).await {
        DbValue::Int64(n) => n,
        DbValue::Int32(n) => n.into(),
        other => panic!("{sql}: {other:?}"),
    }
}

async fn text(state: &mut HostState, conn: &Resource<Connection>, sql: &str) -> String {
    match scalar(state, conn, sql).await {
        DbValue::Str(s) => s,
        other => panic!("{sql}: {other:?}"),
    }
}

fn connection_failed(err: &wit::Error) -> &str {
    match err {
        wit::Error::ConnectionFailed(text) => text,
        other => panic!("expected connection-failed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_supported_type_round_trips() {
    let url = shared().fresh_database().unwrap();
    let postgres = postgres(&url, PoolOptions::default());
    let mut state = state(&postgres);
    let conn = open(&mut state, &url).await;
    execute(
        &mut state,
        &conn,
        "CREATE TABLE t (b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, s text, \
         v varchar(10), bin bytea, j jsonb, ai4 int4[], ai8 int8[], ast text[])",
        vec![],
    )
    .await
    .unwrap();
    let values = vec![
        ParameterValue::Boolean(true),
        ParameterValue::Int16(-2),
        ParameterValue::Int32(i32::MIN),
        ParameterValue::Int64(i64::MAX),
        ParameterValue::Floating32(1.5),
        ParameterValue::Floating64(-0.25),
        ParameterValue::Str("héllo 🦀".into()),
        ParameterValue::Str("short".into()),
        ParameterValue::Binary(vec![0, 1, 255]),
        ParameterValue::Jsonb(br#"{"a":[1,null]}"#.to_vec()),
        ParameterValue::ArrayInt32(vec![Some(1), None]),
        ParameterValue::ArrayInt64(vec![Some(-1)]),
        ParameterValue::ArrayStr(vec![Some("x".into()), None]),
    ];
    let insert = "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
    assert_eq!(execute(&mut state, &conn, insert, values).await, Ok(1));
    let nulls = vec![ParameterValue::DbNull; 13];
    assert_eq!(execute(&mut state, &conn, insert, nulls).await, Ok(1));

    let rows = query(&mut state, &conn, "SELECT * FROM t ORDER BY b NULLS LAST").await;
    let types: Vec<_> = rows.columns.iter().map(|c| c.data_type.clone()).collect();
    assert_eq!(
        types,
        [
            DbDataType::Boolean,
            DbDataType::Int16,
            DbDataType::Int32,
            DbDataType::Int64,
            DbDataType::Floating32,
            DbDataType::Floating64,
            DbDataType::Str,
            DbDataType::Str,
            DbDataType::Binary,
            DbDataType::Jsonb,
            DbDataType::ArrayInt32,
            DbDataType::ArrayInt64,
            DbDataType::ArrayStr,
        ]
    );
    assert_eq!(rows.columns[12].name, "ast");
    assert_eq!(
        rows.rows[0],
        [
            DbValue::Boolean(true),
            DbValue::Int16(-2),
            DbValue::Int32(i32::MIN),
            DbValue::Int64(i64::MAX),
            DbValue::Floating32(1.5),
            DbValue::Floating64(-0.25),
            DbValue::Str("héllo 🦀".into()),
            DbValue::Str("short".into()),
            DbValue::Binary(vec![0, 1, 255]),
            DbValue::Jsonb(br#"{"a":[1,null]}"#.to_vec()),
            DbValue::ArrayInt32(vec![Some(1), None]),
            DbValue::ArrayInt64(vec![Some(-1)]),
            DbValue::ArrayStr(vec![Some("x".into()), None]),
        ]
    );
    assert_eq!(rows.rows[1], vec![DbValue::DbNull; 13]);

    // Parameters bind by the server's type, as in Spin: an int64 for an int4 column is refused.
    let err = execute(
        &mut state,
        &conn,
        "INSERT INTO t (i4) VALUES ($1)",
        vec![ParameterValue::Int64(1)],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, wit::Error::QueryFailed(QueryError::Text(_))),
        "{err:?}"
    );
    // execute counts rows; an empty result has no columns, as in Spin.
    assert_eq!(
        execute(&mut state, &conn, "UPDATE t SET i2 = 7", vec![]).await,
        Ok(2)
    );
    let empty = query(&mut state, &conn, "SELECT * FROM t WHERE false").await;
    assert_eq!((empty.columns.len(), empty.rows.len()), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_types_are_refused_or_returned_raw() {
    let url = shared().fresh_database().unwrap();
    let postgres = postgres(&url, PoolOptions::default());
    let mut state = state(&postgres);
    let conn = open(&mut state, &url).await;
    let err = try_query(
        &mut state,
        &conn,
        "SELECT $1::timestamptz",
        vec![ParameterValue::Timestamp(0)],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, wit::Error::BadParameter(text) if text.contains("$1") && text.contains("timestamp")),
        "{err:?}"
    );
    let rows = query(
        &mut state,
        &conn,
        "SELECT '00000000-0000-0000-0000-000000000001'::uuid AS id",
    )
    .await;
    assert_eq!(rows.columns[0].data_type, DbDataType::Other("uuid".into()));
    let mut raw = vec![0; 15];
    raw.push(1);
    assert_eq!(rows.rows[0][0], DbValue::Unsupported(raw));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_stays_on_one_connection_and_others_see_it_only_when_committed() {
    let url = shared().fresh_database().unwrap();
    let postgres = postgres(&url, PoolOptions::default());
    let mut state = state(&postgres);
    let (writer, reader) = (open(&mut state, &url).await, open(&mut state, &url).await);
    execute(&mut state, &writer, "CREATE TABLE t (x int8)", vec![])
        .await
        .unwrap();
    execute(&mut state, &writer, "BEGIN", vec![]).await.unwrap();
    let txid = int(&mut state, &writer, "SELECT txid_current()").await;
    let pid = int(&mut state, &writer, "SELECT pg_backend_pid()").await;
    execute(
        &mut state,
        &writer,
        "SET LOCAL application_name = 'in-transaction'",
        vec![],
    )
    .await
    .unwrap();
    execute(
        &mut state,
        &writer,
        "INSERT INTO t VALUES ($1)",
        vec![ParameterValue::Int64(1)],
    )
    .await
    .unwrap();
    // Same server connection, same transaction, its local setting still in force.
    assert_eq!(
        int(&mut state, &writer, "SELECT txid_current()").await,
        txid
    );
    assert_eq!(
        int(&mut state, &writer, "SELECT pg_backend_pid()").await,
        pid
    );
    assert_eq!(
        text(&mut state, &writer, "SHOW application_name").await,
        "in-transaction"
    );
    assert_eq!(int(&mut state, &writer, "SELECT count(*) FROM t").await, 1);
    // Another handle is another server connection and does not see the uncommitted row.
    assert_ne!(
        int(&mut state, &reader, "SELECT pg_backend_pid()").await,
        pid
    );
    assert_eq!(int(&mut state, &reader, "SELECT count(*) FROM t").await, 0);
    execute(&mut state, &writer, "COMMIT", vec![])
        .await
        .unwrap();
    // The positive control: the reader does see the row once it is committed.
    assert_eq!(int(&mut state, &reader, "SELECT count(*) FROM t").await, 1);
    assert_ne!(
        text(&mut state, &writer, "SHOW application_name").await,
        "in-transaction"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_configured_url_may_be_opened() {
    let server = shared();
    let url = server.fresh_database().unwrap();
    let postgres = postgres(&url, PoolOptions::default());
    let mut state = state(&postgres);
    let port = server.port();
    let others = [
        (
            format!("postgres://postgres@127.0.0.1:{}/postgres", port + 1),
            Some(format!("postgres://127.0.0.1:{}", port + 1)),
        ),
        // The same server, another database or user: still not the configured URL.
        (server.url(), Some(format!("postgres://127.0.0.1:{port}"))),
        (
            url.replace("postgres@", "admin:hunter2@"),
            Some(format!("postgres://127.0.0.1:{port}")),
        ),
        (format!("{url} "), None),
        ("host=/run/postgresql user=postgres".to_owned(), None),
        ("not a url".to_owned(), None),
    ];
    for (address, shown) in &others {
        let err = try_open(&mut state, address).await.unwrap_err();
        let text = connection_failed(&err);
        if let Some(shown) = shown {
            assert_eq!(
                text,
                format!("address {shown} is not permitted"),
                "{address}"
            );
        }
        assert!(!text.contains("hunter2"), "{text}");
    }
    // Refused before any network access: the pool has connected nowhere yet.
    assert_eq!(postgres.open_connections(), 0);
    // The positive control: the configured URL opens (and connects).
    let conn = open(&mut state, &url).await;
    assert_eq!(int(&mut state, &conn, "SELECT 41 + 1").await, 42);
    assert_eq!(postgres.open_connections(), 1);
    // With no URL configured, nothing may be opened, not even that one.
    let mut unconfigured = self::state(&Arc::new(Postgres::default()));
    let err = try_open(&mut unconfigured, &url).await.unwrap_err();
    assert_eq!(
        connection_failed(&err),
        format!("address postgres://127.0.0.1:{port} is not permitted")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn as_spin_4_0_a_query_that_matches_no_rows_traps_naming_the_issue() {
    let url = shared().fresh_database().unwrap();
    let empty = "SELECT 1 WHERE false";
    // By default the answer is an empty row set, as Spin 4.1 and later give it.
    let current = postgres(&url, PoolOptions::default());
    let mut current_state = state(&current);
    let conn = open(&mut current_state, &url).await;
    assert!(
        query(&mut current_state, &conn, empty)
            .await
            .rows
            .is_empty()
    );

    let v4_0 =
        Arc::new(Postgres::new(Some(&url), PoolOptions::default()).with_compat(SpinCompat::V4_0));
    let mut v4_0_state = state(&v4_0);
    let conn = open(&mut v4_0_state, &url).await;
    let trap = HostConnection::query(&mut v4_0_state, borrow(&conn), empty.to_owned(), vec![])
        .await
        .expect_err("a trap, not an answer");
    let text = format!("{trap:#}");
    assert!(text.contains("spinframework/spin#3671"), "{text}");
    assert!(text.contains(empty), "the statement is named: {text}");
    // Only an empty answer traps: rows, errors and `execute` answer as before.
    assert_eq!(int(&mut v4_0_state, &conn, "SELECT 7").await, 7);
    assert!(matches!(
        try_query(&mut v4_0_state, &conn, "SELECT * FROM missing", vec![]).await,
        Err(wit::Error::QueryFailed(_))
    ));
    execute(&mut v4_0_state, &conn, "CREATE TABLE e (n int)", vec![])
        .await
        .unwrap();
    assert_eq!(
        execute(&mut v4_0_state, &conn, "DELETE FROM e", vec![]).await,
        Ok(0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sql_is_query_failed_with_the_servers_error_code() {
    let url = shared().fresh_database().unwrap();
    let postgres = postgres(&url, PoolOptions::default());
    let mut state = state(&postgres);
    let conn = open(&mut state, &url).await;
    let db_error = |err: wit::Error| match err {
        wit::Error::QueryFailed(QueryError::DbError(db)) => db,
        other => panic!("expected a db-error, got {other:?}"),
    };
    let syntax = db_error(
        try_query(&mut state, &conn, "SELEC 1", vec![])
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (syntax.code.as_str(), syntax.severity.as_str()),
        ("42601", "ERROR")
    );
    let missing = db_error(
        try_query(&mut state, &conn, "SELECT * FROM missing", vec![])
            .await
            .unwrap_err(),
    );
    assert_eq!(missing.code, "42P01");
    assert!(missing.message.contains("missing"), "{missing:?}");
    execute(
        &mut state,
        &conn,
        "CREATE TABLE u (k text PRIMARY KEY)",
        vec![],
    )
    .await
    .unwrap();
    let insert = |k: &str| vec![ParameterValue::Str(k.to_owned())];
    execute(&mut state, &conn, "INSERT INTO u VALUES ($1)", insert("a"))
        .await
        .unwrap();
    let duplicate = db_error(
        execute(&mut state, &conn, "INSERT INTO u VALUES ($1)", insert("a"))
            .await
            .unwrap_err(),
    );
    assert_eq!(duplicate.code, "23505");
    assert!(duplicate.detail.is_some_and(|d| d.contains("(k)=(a)")));
    assert!(
        duplicate
            .extras
            .contains(&("constraint".to_owned(), "u_pkey".to_owned())),
        "{:?}",
        duplicate.extras
    );
    // The connection is still usable after each error.
    assert_eq!(int(&mut state, &conn, "SELECT count(*) FROM u").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_server_is_a_prompt_connection_failure_and_a_restart_recovers() {
    let server = PgServer::start().expect("a private server, since this test stops it");
    // Trust authentication ignores the password, so a URL can carry one for the test.
    let url = format!(
        "postgres://postgres:pw-s3cret@127.0.0.1:{}/postgres",
        server.port()
    );
    let postgres = postgres(&url, PoolOptions::default());
    let mut state = state(&postgres);
    let held = open(&mut state, &url).await;
    assert_eq!(int(&mut state, &held, "SELECT 1").await, 1);

    server.stop().unwrap();
    let started = Instant::now();
    let err = try_open(&mut state, &url).await.unwrap_err();
    let refused_in = started.elapsed();
    let text = connection_failed(&err);
    assert!(refused_in < PROMPT, "open took {refused_in:?}");
    assert!(
        text.contains(&format!("127.0.0.1:{}", server.port())) && !text.contains("s3cret"),
        "{text}"
    );
    // The handle opened before the outage fails promptly too, with no hang.
    let started = Instant::now();
    assert!(
        try_query(&mut state, &held, "SELECT 1", vec![])
            .await
            .is_err()
    );
    assert!(started.elapsed() < PROMPT);

    server.restart().unwrap();
    // No host restart: the next open connects afresh, and the old handle (outside a
    // transaction) carries on over a new pooled connection.
    let fresh = open(&mut state, &url).await;
    assert_eq!(int(&mut state, &fresh, "SELECT 2").await, 2);
    assert_eq!(int(&mut state, &held, "SELECT 3").await, 3);
    eprintln!("open refused {refused_in:?} after the server stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_lost_inside_a_transaction_fails_until_the_guest_ends_it() {
    let server = PgServer::start().expect("a private server, since this test stops it");
    let url = server.url();
    let postgres = postgres(&url, PoolOptions::default());
    let mut state = state(&postgres);
    let conn = open(&mut state, &url).await;
    execute(&mut state, &conn, "BEGIN", vec![]).await.unwrap();
    server.stop().unwrap();
    server.restart().unwrap();
    // The transaction is gone with the server connection: nothing may run outside it as if
    // it were still open.
    for _ in 0..2 {
        let err = try_query(&mut state, &conn, "SELECT 1", vec![])
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            wit::Error::QueryFailed(_) | wit::Error::ConnectionFailed(_)
        ));
    }
    let err = execute(&mut state, &conn, "SELECT 1", vec![])
        .await
        .unwrap_err();
    assert!(
        connection_failed(&err).contains("inside a transaction"),
        "{err:?}"
    );
    assert_eq!(execute(&mut state, &conn, "ROLLBACK", vec![]).await, Ok(0));
    // Ended: the handle works again, on a fresh connection.
    assert_eq!(int(&mut state, &conn, "SELECT 4").await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_pool_or_a_silent_server_is_a_prompt_connection_failure() {
    let url = shared().fresh_database().unwrap();
    let options = PoolOptions {
        max_connections: 1,
        connect_timeout: Duration::from_millis(500),
        wait_timeout: Duration::from_millis(300),
    };
    let postgres = postgres(&url, options);
    let mut state = state(&postgres);
    let first = open(&mut state, &url).await;
    let started = Instant::now();
    let err = try_open(&mut state, &url).await.unwrap_err();
    assert!(started.elapsed() < PROMPT);
    assert!(
        connection_failed(&err).starts_with("too many connections"),
        "{err:?}"
    );
    // Once the first handle is dropped, its connection serves the next open.
    HostConnection::drop(&mut state, first).await.unwrap();
    let second = open(&mut state, &url).await;
    assert_eq!(int(&mut state, &second, "SELECT 5").await, 5);

    // A server that accepts TCP but never answers: the connect timeout, not a hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        silent.local_addr().unwrap().port()
    );
    let postgres = self::postgres(&silent_url, options);
    let mut state = self::state(&postgres);
    let started = Instant::now();
    let err = try_open(&mut state, &silent_url).await.unwrap_err();
    let took = started.elapsed();
    assert!(connection_failed(&err).contains("timed out"), "{err:?}");
    assert!(
        took >= Duration::from_millis(400) && took < PROMPT,
        "{took:?}"
    );
}

/// Leak probes on one connection: its transaction-local setting and its transaction id.
async fn leaked(state: &mut HostState, conn: &Resource<Connection>) -> bool {
    let name = text(state, conn, "SHOW application_name").await;
    let txid = scalar(state, conn, "SELECT txid_current_if_assigned()").await;
    name == "leaked" || txid != DbValue::DbNull
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pooled_connection_never_carries_a_transaction_to_its_next_user() {
    let url = shared().fresh_database().unwrap();
    // One connection, so the next handle is certain to get the same server connection.
    let options = PoolOptions {
        max_connections: 1,
        ..PoolOptions::default()
    };
    let postgres = postgres(&url, options);
    let mut state = state(&postgres);
    let setup = open(&mut state, &url).await;
    execute(&mut state, &setup, "CREATE TABLE t (x int8)", vec![])
        .await
        .unwrap();
    let pid = int(&mut state, &setup, "SELECT pg_backend_pid()").await;
    // The positive control: inside a transaction the probes see it.
    execute(&mut state, &setup, "BEGIN", vec![]).await.unwrap();
    execute(
        &mut state,
        &setup,
        "SET LOCAL application_name = 'leaked'",
        vec![],
    )
    .await
    .unwrap();
    execute(&mut state, &setup, "INSERT INTO t VALUES (1)", vec![])
        .await
        .unwrap();
    assert!(leaked(&mut state, &setup).await);
    execute(&mut state, &setup, "ROLLBACK", vec![])
        .await
        .unwrap();
    assert!(!leaked(&mut state, &setup).await);

    // A guest drops its handle mid-transaction …
    execute(&mut state, &setup, "BEGIN", vec![]).await.unwrap();
    execute(
        &mut state,
        &setup,
        "SET LOCAL application_name = 'leaked'",
        vec![],
    )
    .await
    .unwrap();
    execute(&mut state, &setup, "INSERT INTO t VALUES (2)", vec![])
        .await
        .unwrap();
    HostConnection::drop(&mut state, setup).await.unwrap();
    // … and the next user gets the same server connection, without the transaction.
    let next = open(&mut state, &url).await;
    assert_eq!(int(&mut state, &next, "SELECT pg_backend_pid()").await, pid);
    assert!(!leaked(&mut state, &next).await);
    assert_eq!(int(&mut state, &next, "SELECT count(*) FROM t").await, 0);

    // A trapped instance: its whole store goes, mid-transaction.
    execute(&mut state, &next, "BEGIN", vec![]).await.unwrap();
    execute(
        &mut state,
        &next,
        "SET LOCAL application_name = 'leaked'",
        vec![],
    )
    .await
    .unwrap();
    execute(&mut state, &next, "INSERT INTO t VALUES (3)", vec![])
        .await
        .unwrap();
    drop(state);
    let mut state = self::state(&postgres);
    let after = open(&mut state, &url).await;
    assert_eq!(
        int(&mut state, &after, "SELECT pg_backend_pid()").await,
        pid
    );
    assert!(!leaked(&mut state, &after).await);
    assert_eq!(int(&mut state, &after, "SELECT count(*) FROM t").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn pooled_open_and_query_is_fast() {
    let url = shared().fresh_database().unwrap();
    let postgres = postgres(&url, PoolOptions::default());
    // Warm the pool, as a running service is.
    {
        let mut state = state(&postgres);
        let conn = open(&mut state, &url).await;
        int(&mut state, &conn, "SELECT 1").await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let rounds = 200;
    let started = Instant::now();
    for _ in 0..rounds {
        // A fresh instance per request: new state, open, one query, drop.
        let mut state = state(&postgres);
        let conn = open(&mut state, &url).await;
        int(&mut state, &conn, "SELECT 1").await;
    }
    let pooled = started.elapsed() / rounds;
    // Reuse, not timing, is what this asserts: one server connection served every request.
    assert_eq!(postgres.open_connections(), 1);
    assert!(pooled < Duration::from_millis(50), "{pooled:?}");
    // For comparison (printed, not asserted): a new pool each time, so a new connection.
    let rounds = 50;
    let started = Instant::now();
    for _ in 0..rounds {
        let unpooled = self::postgres(&url, PoolOptions::default());
        let mut state = state(&unpooled);
        let conn = open(&mut state, &url).await;
        int(&mut state, &conn, "SELECT 1").await;
    }
    let fresh = started.elapsed() / rounds;
    eprintln!("open + one query: pooled {pooled:?}, with a new connection each time {fresh:?}");
}
