//! The component's own tests through the typed API: what only the host running the `.wasm`
//! shows (its database file on disk and what is in it, WAL and indexes, reopening the file, a
//! newer schema refused at start-up, bad settings refused at open, an in-memory database
//! shared by concurrent instances). The session rules themselves are in the conformance
//! suite ([`super::rules`]), on every backend.

use crate::support as common;
use common::{file_config, host_with, open};
use zoe_session_host::{CreateOptions, HostConfig, Issued, SessionError, SessionHost, Sessions};
use zoe_test_support::Build;

fn default_options() -> CreateOptions {
    CreateOptions::default()
}

/// A host over `config`, and an instance of it.
async fn fixture_on(config: HostConfig) -> (SessionHost, Sessions) {
    with_instance(open(config).await).await
}

async fn with_instance(host: SessionHost) -> (SessionHost, Sessions) {
    let sessions = host.sessions().await.unwrap();
    (host, sessions)
}

/// A session for `alice` with the default options.
async fn create_alice(sessions: &mut Sessions) -> Issued {
    sessions.create("alice", default_options()).await.unwrap()
}

async fn concurrent_creates(host: &SessionHost, user: &str, count: usize) -> usize {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let host = host.clone();
            let user = user.to_owned();
            tokio::spawn(async move {
                let mut sessions = host.sessions().await?;
                sessions.create(&user, CreateOptions::default()).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(err) => assert_eq!(err.session(), Some(&SessionError::LimitReached), "{err}"),
        }
    }
    created
}

// --- concurrency on an in-memory database ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_on_an_in_memory_database_also_hold_the_limit() {
    let host = host_with(&[("max_per_user", "4")]).await;
    assert_eq!(concurrent_creates(&host, "alice", 20).await, 20);
    let mut sessions = host.sessions().await.unwrap();
    assert_eq!(sessions.list_user("alice").await.unwrap().len(), 4);
}

// --- storage ----------------------------------------------------------------------------------

#[tokio::test]
async fn sessions_survive_closing_and_reopening_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let issued = {
        let host = open(file_config(&dir)).await;
        let mut sessions = host.sessions().await.unwrap();
        create_alice(&mut sessions).await
    };
    let (_host, mut sessions) = fixture_on(file_config(&dir)).await;
    let session = sessions.validate(&issued.token).await.unwrap();
    assert_eq!(session.user_id, "alice");
    assert_eq!(sessions.stats().await.unwrap().active_sessions, 1);
}

#[tokio::test]
async fn only_the_hash_of_the_secret_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut sessions) = fixture_on(file_config(&dir)).await;
    let issued = create_alice(&mut sessions).await;
    drop(sessions);
    drop(host);

    let (id, secret) = issued.token.split_once('.').unwrap();
    let db = rusqlite::Connection::open(dir.path().join("sessions.db")).unwrap();
    let hash: Vec<u8> = db
        .query_row(
            "SELECT secret_hash FROM sessions WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hash.len(), 32, "SHA-256");
    let dump: String = db
        .query_row(
            "SELECT group_concat(id || hex(secret_hash) || user_id || metadata) FROM sessions",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!dump.contains(secret));
    drop(db);
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is on disk"
        );
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let host = open(file_config(&dir)).await;
        host.sessions()
            .await
            .unwrap()
            .create("alice", default_options())
            .await
            .unwrap();
    }
    let db = rusqlite::Connection::open(dir.path().join("sessions.db")).unwrap();
    let journal: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal", "the host runs file databases in WAL mode");
    let versions: Vec<i64> = db
        .prepare("SELECT version FROM zoe_schema")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [4]);
    let indexes: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for wanted in ["sessions_by_user", "sessions_by_expiry"] {
        assert!(indexes.iter().any(|i| i == wanted), "{indexes:?}");
    }
    assert!(
        indexes
            .iter()
            .any(|i| i.starts_with("sqlite_autoindex_sessions")),
        "primary key index on the token id: {indexes:?}"
    );
    let count: i64 = db
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 3);
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(file_config(&dir)).await);
    let path = dir.path().join("sessions.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute("UPDATE zoe_schema SET version = 99", [])
        .unwrap();
    drop(db);
    let err = SessionHost::open(common::runtime(), file_config(&dir))
        .await
        .unwrap_err();
    let SessionError::Storage(detail) = err.session().cloned().expect("a session error") else {
        panic!("{err}");
    };
    assert!(detail.contains("99"), "{detail}");
}

// --- configuration ----------------------------------------------------------------------------

#[tokio::test]
async fn a_bad_setting_is_refused_naming_it() {
    let cases = [
        ("max_per_user", "many"),
        ("limit_policy", "lru"),
        ("min_timeout", "90000"),
        ("require_https", "perhaps"),
    ];
    for (name, value) in cases {
        let config = zoe_session_host::HostConfig::in_memory().with(name, value);
        let err = SessionHost::open(common::runtime(), config)
            .await
            .unwrap_err();
        let Some(SessionError::Config(detail)) = err.session() else {
            panic!("{name}={value}: {err}");
        };
        assert!(detail.contains(name), "{detail}");
    }
}

/// `key_value_store` on the component, the WASIp2 build's and the WASIp3 build's alike (both
/// import `fermyon:spin/key-value@2.0.0`): sessions go to the store, not the SQL database; a
/// store the host does not define, or does not let the component open, stops the host at open
/// with what to change; and a store beside a PostgreSQL `database_url` is a configuration error
/// naming the setting.
#[tokio::test]
async fn the_key_value_store_is_chosen_and_a_store_the_component_cannot_open_is_named() {
    for build in [Build::Wasip2, Build::Wasip3] {
        key_value_store_on(build).await;
    }
}

async fn key_value_store_on(build: Build) {
    use std::collections::BTreeSet;
    use zoe_session_host::key_value::{DEFAULT_FILE_NAME, StoreConfig};
    use zoe_session_host::sqlite::Location;

    let runtime = build.runtime();
    let on = |config: HostConfig| async move {
        with_instance(SessionHost::open(runtime, config).await.unwrap()).await
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = file_config(&dir);
    config.variables.set("key_value_store", "default");
    let (_host, mut sessions) = on(config.clone()).await;
    let issued = create_alice(&mut sessions).await;
    sessions.validate(&issued.token).await.unwrap();
    // In Spin's file beside the database, and not in the database.
    let file = rusqlite::Connection::open(dir.path().join(DEFAULT_FILE_NAME)).unwrap();
    let rows: i64 = file
        .query_row("SELECT count(*) FROM spin_key_value", [], |row| row.get(0))
        .unwrap();
    assert!(rows > 0, "{build:?}: the session is in the key-value file");
    let database = file_config(&dir);
    let (_plain, mut plain) = on(database).await;
    assert_eq!(
        plain.validate(&issued.token).await.unwrap_err().session(),
        Some(&SessionError::NotFound),
        "{build:?}: the SQL store never saw it"
    );

    let refused = |config: HostConfig| async move {
        match SessionHost::open(runtime, config).await {
            Err(zoe_session_host::HostError::Session(SessionError::Storage(text))) => text,
            other => panic!("expected a storage error, got {other:?}"),
        }
    };
    let mut unknown = HostConfig::in_memory();
    unknown.variables.set("key_value_store", "sessions");
    let text = refused(unknown).await;
    assert!(
        text.contains("no key-value store is labelled \"sessions\"")
            && text.contains("[key_value_store.sessions]"),
        "{text}"
    );

    let mut ungranted = HostConfig::in_memory();
    ungranted
        .key_value
        .stores
        .insert("archive".to_owned(), StoreConfig::Spin(Location::Memory));
    ungranted.key_value.granted = Some(BTreeSet::from(["default".to_owned()]));
    ungranted.variables.set("key_value_store", "archive");
    let text = refused(ungranted).await;
    assert!(
        text.contains("may not open key-value store \"archive\"")
            && text.contains("key_value_stores"),
        "{text}"
    );

    let mut both = HostConfig::in_memory();
    both.variables.set("key_value_store", "default");
    both.variables
        .set("database_url", "postgres://zoe:hunter2@127.0.0.1:1/zoe");
    match SessionHost::open(runtime, both).await {
        Err(zoe_session_host::HostError::Session(SessionError::Config(text))) => {
            assert!(
                text.contains("key_value_store") && text.contains("database_url"),
                "{text}"
            );
            assert!(!text.contains("hunter2"), "{text}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}
