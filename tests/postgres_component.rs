//! The component on PostgreSQL, through the host: with `database_url` naming a fresh database
//! on a real server (`zoe-test-postgres`), the same component that uses SQLite by default
//! creates, validates and rotates against Postgres, two hosts share one session truth, a bad
//! URL is a configuration error naming the setting, and an unreachable server is a storage
//! error (503 `storage_unavailable` over HTTP).

#![cfg(not(target_arch = "wasm32"))]

mod api_client;
mod common;

use common::{host_with, session_error};
use zoe_session_host::{CreateOptions, SessionError};

/// A fresh database and its name.
fn database() -> (String, String) {
    let url = zoe_test_postgres::shared()
        .fresh_database()
        .expect("a fresh PostgreSQL database");
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
    let host = host_with(&[("database_url", &url)]).await;
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
    assert_eq!(rows(&name, "SELECT version FROM zoe_schema"), "1");
}

#[tokio::test]
async fn two_hosts_on_one_database_share_every_session() {
    let (url, _) = database();
    let one = host_with(&[("database_url", &url)]).await;
    let two = host_with(&[("database_url", &url)]).await;
    let mut first = one.sessions().await.unwrap();
    let mut second = two.sessions().await.unwrap();
    let issued = first
        .create("alice", CreateOptions::default())
        .await
        .unwrap();
    assert!(second.validate(&issued.token).await.is_ok());
    let rotated = second.rotate(&issued.token).await.unwrap();
    assert!(matches!(
        session_error(first.validate(&issued.token).await),
        SessionError::InvalidToken
    ));
    first.invalidate(&rotated.session.id).await.unwrap();
    assert!(matches!(
        session_error(second.validate(&rotated.token).await),
        SessionError::NotFound
    ));
}

#[tokio::test]
async fn a_database_url_that_is_not_postgres_is_a_config_error_naming_the_setting() {
    for url in ["mysql://db/sessions", "sqlite://sessions.db", "postgres://"] {
        let host = host_with(&[("database_url", url)]).await;
        let mut sessions = host.sessions().await.unwrap();
        match session_error(sessions.create("alice", CreateOptions::default()).await) {
            SessionError::Config(text) => assert!(text.contains("database_url"), "{text}"),
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
    let host = host_with(&[("database_url", &unreachable_url())]).await;
    let mut sessions = host.sessions().await.unwrap();
    assert!(matches!(
        session_error(sessions.create("alice", CreateOptions::default()).await),
        SessionError::Storage(_)
    ));
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_503_storage_unavailable_over_http() {
    let api = api_client::start(&[("database_url", &unreachable_url())]).await;
    let reply = api
        .send(
            "POST",
            "/sessions/create",
            api_client::admin(),
            Some(r#"{"user_id": "alice"}"#),
        )
        .await;
    reply.expect_error(503, "storage_unavailable");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(!reply.text.contains("127.0.0.1"), "{}", reply.text);
    api.stop().await;
    // Control: the same request against a reachable database succeeds.
    let (url, _) = database();
    let api = api_client::start(&[("database_url", &url)]).await;
    let reply = api
        .send(
            "POST",
            "/sessions/create",
            api_client::admin(),
            Some(r#"{"user_id": "alice"}"#),
        )
        .await;
    reply.expect(200);
    api.stop().await;
}
