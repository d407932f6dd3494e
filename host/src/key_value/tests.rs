//! The stores behind `fermyon:spin/key-value`, driven directly: Spin's file format, grants,
//! and Redis's faults (a real `redis-server`, see `testing/redis`).

use super::*;
use crate::sqlite::{Location, Synchronous};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn stores(config: &KeyValueConfig, database: &Location) -> KeyValueStores {
    KeyValueStores::new(
        config,
        database,
        Synchronous::Normal,
        RedisOptions::default(),
    )
    .expect("the stores are defined")
}

/// Every operation of a backend, with what it must answer.
async fn exercise(backend: &Backend) {
    assert_eq!(backend.get("k".into()).await.unwrap(), None);
    assert!(!backend.exists("k".into()).await.unwrap());
    backend.set("k".into(), vec![0, 255, 7]).await.unwrap();
    backend.set("other".into(), vec![1]).await.unwrap();
    assert_eq!(
        backend.get("k".into()).await.unwrap(),
        Some(vec![0, 255, 7])
    );
    assert!(backend.exists("k".into()).await.unwrap());
    backend.set("k".into(), vec![9]).await.unwrap();
    assert_eq!(backend.get("k".into()).await.unwrap(), Some(vec![9]));
    let mut keys = backend.get_keys().await.unwrap();
    keys.sort();
    assert_eq!(keys, ["k", "other"]);
    backend.delete("k".into()).await.unwrap();
    // Deleting what is not there is not an error.
    backend.delete("k".into()).await.unwrap();
    assert_eq!(backend.get("k".into()).await.unwrap(), None);
    assert_eq!(backend.get_keys().await.unwrap(), ["other"]);
}

#[tokio::test]
async fn spin_s_file_keeps_each_label_s_rows_in_spin_s_table() {
    let dir = tempfile::tempdir().unwrap();
    let database = Location::File(dir.path().join("sessions.db"));
    let config = KeyValueConfig::from_runtime_config(
        "[key_value_store.archive]\ntype = \"spin\"\npath = \"sqlite_key_value.db\"",
        dir.path(),
    )
    .unwrap();
    let host = stores(&config, &database);
    exercise(&host.open("default").unwrap()).await;
    // Another label in the same file sees none of `default`'s keys.
    let archive = host.open("archive").unwrap();
    assert_eq!(archive.get_keys().await.unwrap(), Vec::<String>::new());
    archive.set("a".into(), b"x".to_vec()).await.unwrap();

    // The rows are where Spin keeps them, as Spin writes them: its `key-value-spin` crate reads
    // this file.
    let file = rusqlite::Connection::open(dir.path().join(DEFAULT_FILE_NAME)).unwrap();
    let mut rows: Vec<(String, String, Vec<u8>)> = file
        .prepare("SELECT store, key, value FROM spin_key_value ORDER BY store, key")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("archive".into(), "a".into(), b"x".to_vec()),
            ("default".into(), "other".into(), vec![1]),
        ]
    );
    // A second host on the file (a replica, an operator command) sees the same rows.
    let again = stores(&KeyValueConfig::default(), &database);
    assert_eq!(
        again
            .open("default")
            .unwrap()
            .get("other".into())
            .await
            .unwrap(),
        Some(vec![1])
    );
}

#[tokio::test]
async fn an_in_memory_database_has_an_in_memory_default_store() {
    let host = stores(&KeyValueConfig::default(), &Location::Memory);
    exercise(&host.open("default").unwrap()).await;
    match host.backend("default").map(|b| &**b) {
        Some(Backend::Local(local)) => assert_eq!(local.location(), &Location::Memory),
        other => panic!("{other:?}"),
    }
}

#[test]
fn open_answers_as_spin_for_ungranted_and_unknown_labels() {
    let config = KeyValueConfig {
        stores: [("archive".to_owned(), StoreConfig::Spin(Location::Memory))].into(),
        granted: Some(BTreeSet::from(["default".to_owned()])),
    };
    let host = stores(&config, &Location::Memory);
    assert!(host.open("default").is_ok(), "positive control");
    assert_eq!(
        host.open("archive").unwrap_err(),
        KeyValueError::AccessDenied
    );
    assert_eq!(
        host.open("nowhere").unwrap_err(),
        KeyValueError::NoSuchStore
    );
    // Without a grant list every defined store is granted.
    let all = stores(
        &KeyValueConfig {
            granted: None,
            ..config
        },
        &Location::Memory,
    );
    assert!(all.open("archive").is_ok());
    // A host without stores refuses every label.
    assert_eq!(
        KeyValueStores::none().open("default").unwrap_err(),
        KeyValueError::NoSuchStore
    );
}

fn redis_stores(url: &str) -> KeyValueStores {
    let config = KeyValueConfig::from_runtime_config(
        &format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{url}\""),
        std::path::Path::new("."),
    )
    .unwrap();
    stores(&config, &Location::Memory)
}

#[tokio::test]
async fn redis_answers_every_operation() {
    let url = zoe_test_redis::shared().fresh_url();
    exercise(&redis_stores(&url).open("default").unwrap()).await;
}

#[tokio::test]
async fn redis_down_is_a_prompt_error_naming_the_server_not_the_url_and_it_recovers() {
    let server = zoe_test_redis::RedisServer::start().unwrap();
    let url = format!("redis://:hunter2@127.0.0.1:{}", server.port());
    // A URL with a password needs a server that asks for one.
    assert_eq!(
        server
            .command(&["CONFIG", "SET", "requirepass", "hunter2"])
            .unwrap(),
        "+OK"
    );
    let host = redis_stores(&url);
    let store = host.open("default").unwrap();
    store.set("k".into(), b"v".to_vec()).await.unwrap();

    server.stop();
    let started = Instant::now();
    let err = store.get("k".into()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let text = format!("{err:?}");
    assert!(
        text.contains(&format!("Redis at redis://127.0.0.1:{}", server.port())),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");

    server.restart().unwrap();
    server
        .command(&["CONFIG", "SET", "requirepass", "hunter2"])
        .unwrap();
    // The same store, with no new host: the connection is made again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.set("k".into(), b"w".to_vec()).await {
            Ok(()) => break,
            Err(err) => assert!(Instant::now() < deadline, "no recovery: {err:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.get("k".into()).await.unwrap(), Some(b"w".to_vec()));
}

#[tokio::test]
async fn a_redis_that_does_not_answer_is_an_error_within_the_call_timeout() {
    let server = zoe_test_redis::RedisServer::start().unwrap();
    let host = redis_stores(&server.url());
    let store = host.open("default").unwrap();
    store.set("k".into(), b"v".to_vec()).await.unwrap();
    server.pause();
    let started = Instant::now();
    let result = store.get("k".into()).await;
    let waited = started.elapsed();
    server.resume();
    let err = result.unwrap_err();
    assert!(waited < Duration::from_secs(3), "{waited:?}: {err:?}");
    assert!(format!("{err:?}").contains("Redis at"), "{err:?}");
    // Running again, it answers on the same store.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.get("k".into()).await {
            Ok(value) => {
                assert_eq!(value, Some(b"v".to_vec()));
                break;
            }
            Err(err) => assert!(Instant::now() < deadline, "no recovery: {err:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
