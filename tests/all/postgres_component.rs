//! The component on PostgreSQL, through the host: with `database_url` naming a fresh database
//! on a real server (`zoe-test-postgres`), the same component that uses SQLite by default
//! keeps its rows in Postgres in the schema's types, answers empty results as on Spin 4.0.x,
//! keeps every value and order through lists, a bad URL is a configuration error naming the
//! setting, and an unreachable server is a storage error (503 `storage_unavailable` over HTTP)
//! from which the service recovers by itself. Every session rule runs on this path too, in the
//! conformance suite (`conformance::component_postgres`).
//!
//! Every host here answers `spin:postgres` as Spin 4.0.x does ([`SpinCompat::V4_0`]): a query
//! that matches no rows, which Spin 4.0.x never answers (spinframework/spin#3671), traps. So
//! these tests fail on any statement the component sends without its envelope.

use crate::support as common;
use crate::support::http as api_client;

use common::{MINUTE, START_MS, host_with, session_error, spin_4_0};
use zoe_session_host::{Clock, CreateOptions, HostConfig, HostError, SessionError, SessionHost};
use zoe_test_postgres::PgServer;

/// A host on the database at `url` (see [`spin_4_0`]), with a manual clock.
async fn host_on(url: &str) -> SessionHost {
    let mut config = HostConfig::in_memory();
    spin_4_0(&mut config, url);
    common::open(config).await
}

/// `serve` on the database at `url` (see [`spin_4_0`]).
async fn api_on(url: &str) -> api_client::Api {
    api_client::start_configured(
        zoe_test_support::serve_runtime(),
        Some(zoe_test_support::ADMIN_KEY),
        &[],
        |config| spin_4_0(config, url),
    )
    .await
}

/// A fresh database and its name.
fn database() -> (String, String) {
    let url = common::fresh_database();
    let name = url.rsplit('/').next().expect("a database name").to_owned();
    (url, name)
}

fn rows(name: &str, sql: &str) -> String {
    zoe_test_postgres::shared()
        .psql(name, sql)
        .expect(sql)
        .trim()
        .to_owned()
}

/// A `postgres://` URL on a loopback port where nothing listens.
fn unreachable_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    format!("postgres://postgres@127.0.0.1:{port}/sessions")
}

#[tokio::test]
async fn the_component_creates_validates_and_rotates_on_postgres() {
    let (url, name) = database();
    let host = host_on(&url).await;
    let mut sessions = host.sessions().await.unwrap();
    let issued = sessions
        .create("alice", CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(
        sessions.validate(&issued.token).await.unwrap().user_id,
        "alice"
    );
    let rotated = sessions.rotate(&issued.token).await.unwrap();
    assert!(matches!(
        session_error(sessions.validate(&issued.token).await),
        SessionError::InvalidToken
    ));
    assert!(sessions.validate(&rotated.token).await.is_ok());
    assert_eq!(
        sessions.invalidate_user("alice", None).await.unwrap(),
        1,
        "a null except-id binds on Postgres"
    );
    // The rows are in PostgreSQL, in the schema's types.
    sessions
        .create("bob", CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(rows(&name, "SELECT user_id FROM sessions"), "bob");
    assert_eq!(
        rows(
            &name,
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'sessions' AND column_name IN ('secret_hash', 'expires_at') \
             ORDER BY column_name"
        ),
        "bigint\nbytea"
    );
    assert_eq!(rows(&name, "SELECT version FROM zoe_schema"), "4");
}

#[tokio::test]
async fn statements_that_match_no_rows_answer_as_on_spin_4_0() {
    let (url, _) = database();
    let mut config = HostConfig::in_memory()
        .with("max_per_user", "1")
        .with("limit_policy", "reject");
    spin_4_0(&mut config, &url);
    let host = common::open(config).await;
    let mut sessions = host.sessions().await.unwrap();
    let issued = sessions
        .create("alice", CreateOptions::default())
        .await
        .unwrap();
    // A full user's create inserts nothing, so its `INSERT … RETURNING` yields no row.
    assert!(matches!(
        session_error(sessions.create("alice", CreateOptions::default()).await),
        SessionError::LimitReached
    ));
    sessions.invalidate(&issued.session.id).await.unwrap();
    // An id that is not there.
    assert!(matches!(
        session_error(sessions.validate(&issued.token).await),
        SessionError::NotFound
    ));
    assert!(matches!(
        session_error(sessions.get(&issued.session.id).await),
        SessionError::NotFound
    ));
    assert!(sessions.list_user("nobody").await.unwrap().is_empty());
    assert_eq!(sessions.cleanup(100).await.unwrap(), 0);
    assert_eq!(sessions.stats().await.unwrap().active_sessions, 0);
    // The same component answers rows too: the mode refuses only empty answers.
    sessions
        .create("alice", CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(sessions.list_user("alice").await.unwrap().len(), 1);
}

#[tokio::test]
async fn lists_keep_their_order_and_every_value_on_postgres() {
    let (url, _) = database();
    let host = host_on(&url).await;
    let mut sessions = host.sessions().await.unwrap();
    let mut issued = Vec::new();
    for n in 0..3 {
        let options = CreateOptions {
            metadata: Some(format!(r#"{{"n":{n},"note":"héllo \\x00"}}"#)),
            ..CreateOptions::default()
        };
        issued.push(sessions.create("alice", options).await.unwrap());
        host.clock().advance(MINUTE);
    }
    // The first session becomes the most recently active, the rest keep creation order.
    let touched = sessions.touch(&issued[0].token).await.unwrap();
    let listed = sessions.list_user("alice").await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    let expected = [&issued[0], &issued[2], &issued[1]].map(|i| i.session.id.as_str());
    assert_eq!(ids, expected, "most recently active first");
    assert_eq!(listed[0], touched);
    for (listed, issued) in listed[1..].iter().zip([&issued[2], &issued[1]]) {
        assert_eq!(*listed, issued.session, "every value as created");
        // The secret hash (bytea) came back intact: the token still validates.
        assert_eq!(
            sessions.validate(&issued.token).await.unwrap().id,
            listed.id
        );
    }
}

#[tokio::test]
async fn the_user_page_keeps_byte_order_and_an_empty_page_answers_on_postgres() {
    let (url, _) = database();
    let api = api_on(&url).await;
    for user in ["bob", "alice", "Carol", "alice"] {
        api.send(
            "POST",
            "/sessions/create",
            api_client::admin(),
            Some(&format!(r#"{{"user_id": "{user}"}}"#)),
        )
        .await
        .expect(200);
    }
    let page = api
        .send("GET", "/sessions/users", api_client::admin(), None)
        .await;
    let users: Vec<(&str, u64)> = page.expect(200)["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            (
                u["user_id"].as_str().unwrap(),
                u["sessions"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(users, [("Carol", 1), ("alice", 2), ("bob", 1)]);
    let none = api
        .send(
            "GET",
            "/sessions/users?prefix=zed",
            api_client::admin(),
            None,
        )
        .await;
    assert_eq!(none.expect(200)["users"], serde_json::json!([]));
    api.stop().await;
}

/// The error with which a host over `database_url` refuses to open (the host checks the
/// store at start-up with a `stats` call).
async fn open_error(database_url: &str) -> SessionError {
    let mut config = HostConfig::in_memory();
    spin_4_0(&mut config, database_url);
    let opened =
        SessionHost::open_with_clock(common::runtime(), config, Clock::manual(START_MS)).await;
    match opened {
        Err(HostError::Session(err)) => err,
        Err(other) => panic!("{database_url}: expected a session error, got {other}"),
        Ok(_) => panic!("{database_url}: the host opened"),
    }
}

#[tokio::test]
async fn a_database_url_that_is_not_postgres_is_a_config_error_naming_the_setting() {
    for url in ["mysql://db/sessions", "sqlite://sessions.db", "postgres://"] {
        match open_error(url).await {
            SessionError::Config(text) => {
                assert!(text.contains("database_url"), "{text}");
                assert!(
                    !text.contains("sessions.db"),
                    "the value is not repeated: {text}"
                );
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    // An empty value is no error: the default SQLite.
    let host = host_with(&[("database_url", "")]).await;
    let mut sessions = host.sessions().await.unwrap();
    assert!(
        sessions
            .create("alice", CreateOptions::default())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_storage_error() {
    assert!(matches!(
        open_error(&unreachable_url()).await,
        SessionError::Storage(_)
    ));
}

#[tokio::test]
async fn a_postgres_outage_is_a_503_storage_unavailable_and_the_service_recovers() {
    // A server of its own: the test stops it.
    let server = PgServer::start().expect("a PostgreSQL server");
    let url = server.fresh_database().expect("a database");
    let api = api_on(&url).await;
    let create = || {
        api.send(
            "POST",
            "/sessions/create",
            api_client::admin(),
            Some(r#"{"user_id": "alice"}"#),
        )
    };
    create().await.expect(200);
    server.stop().expect("the server stops");
    let reply = create().await;
    reply.expect_error(503, "storage_unavailable");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(!reply.text.contains("127.0.0.1"), "{}", reply.text);
    server.restart().expect("the server starts again");
    // The same `serve`, no restart: the next requests succeed again.
    let mut recovered = false;
    for _ in 0..20 {
        if create().await.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(recovered, "requests kept failing after Postgres came back");
    api.stop().await;
}
