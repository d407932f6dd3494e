//! The WASIp3 build reads a validate's key-value keys ahead (`p3/src/read_ahead.rs`), seen from
//! Redis itself: `MONITOR` lists the commands as the server runs them. The engine alone reads
//! generation, record, slot, activity, secret, one after another; read ahead, the four keys that
//! follow from the token come first, together, and the slot their record names last. The
//! WASIp2 build, which reads nothing ahead, is the positive control: the same check sees its
//! slot third. A reused WASIp3 instance remembers the session's slot, so the same session's
//! next validate there asks for its slot first, before the record that names it has even been
//! read: one round trip instead of two.

use crate::support::http::{ADMIN_KEY, start_configured};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use zoe_session_host::key_value::{DEFAULT_LABEL, StoreConfig};
use zoe_test_support::Build;

/// The keys of the `GET`s database `db` ran, in order, read from a `MONITOR` connection until
/// `count` of them arrived (or 10 s passed).
fn monitored_gets(monitor: &mut BufReader<TcpStream>, db: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut keys = Vec::new();
    let mut line = String::new();
    while keys.len() < count && Instant::now() < deadline {
        line.clear();
        if monitor.read_line(&mut line).is_err() {
            continue;
        }
        // +1765000000.123456 [3 127.0.0.1:41234] "GET" "zs:g"
        if !line.contains(&format!("[{db} ")) {
            continue;
        }
        let words: Vec<&str> = line.split('"').collect();
        if words.get(1) == Some(&"GET") {
            keys.push(words.get(3).copied().unwrap_or_default().to_owned());
        }
    }
    keys
}

/// `validates` validates, one after another, of a fresh session on `build`, its store on Redis:
/// the keys each read, in order.
async fn validate_reads(build: Build, validates: usize) -> Vec<Vec<String>> {
    let redis = zoe_test_redis::shared();
    let url = redis.fresh_url();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let api = start_configured(
        build.serve_runtime(),
        Some(ADMIN_KEY),
        &[("key_value_store", DEFAULT_LABEL)],
        |config| {
            config
                .key_value
                .stores
                .insert(DEFAULT_LABEL.to_owned(), StoreConfig::Redis(url.clone()));
        },
    )
    .await;
    let token = api.create(r#"{"user_id":"ada"}"#).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stream = TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    (&stream).write_all(b"MONITOR\r\n").unwrap();
    let mut monitor = BufReader::new(stream);
    let mut ok = String::new();
    monitor.read_line(&mut ok).unwrap();
    assert_eq!(ok.trim_end(), "+OK");
    let mut reads = Vec::new();
    for _ in 0..validates {
        api.send(
            "GET",
            "/sessions/validate",
            &[("x-session-id", &token)],
            None,
        )
        .await
        .expect(200);
        reads.push(monitored_gets(&mut monitor, &db, 5));
    }
    api.stop().await;
    reads
}

/// The first five characters of each key, sorted: which kinds of key a round read.
fn kinds(keys: &[String]) -> Vec<&str> {
    let mut kinds: Vec<&str> = keys.iter().map(|key| &key[..key.len().min(5)]).collect();
    kinds.sort_unstable();
    kinds
}

#[tokio::test]
async fn the_wasip3_build_reads_the_token_s_four_keys_at_once_then_the_slot() {
    let reads = validate_reads(Build::Wasip3, 1).await.remove(0);
    assert_eq!(reads.len(), 5, "{reads:?}");
    assert!(reads[4].starts_with("zs:u:"), "the slot last: {reads:?}");
    assert_eq!(
        kinds(&reads[..4]),
        ["zs:a:", "zs:g", "zs:r:", "zs:s:"],
        "{reads:?}"
    );
    // Positive control: the engine alone reads the slot third, as soon as the record names it.
    let reads = validate_reads(Build::Wasip2, 1).await.remove(0);
    assert_eq!(reads.len(), 5, "{reads:?}");
    assert!(reads[2].starts_with("zs:u:"), "the slot third: {reads:?}");
}

#[tokio::test]
async fn a_reused_wasip3_instance_reads_a_session_s_slot_first_the_next_time() {
    // serve, like Spin, hands sequential requests to the instance that is free; should one
    // go to a new instance, that validate reads the slot last again, so several are made.
    let validates = validate_reads(Build::Wasip3, 6).await;
    let mut remembered = 0;
    for (n, reads) in validates.iter().enumerate() {
        assert_eq!(reads.len(), 5, "validate {n}: {reads:?}");
        assert_eq!(
            kinds(reads),
            ["zs:a:", "zs:g", "zs:r:", "zs:s:", "zs:u:"],
            "validate {n}: {reads:?}"
        );
        if reads[0].starts_with("zs:u:") {
            remembered += 1;
        } else {
            // Not remembered: the slot is the second round, as the record named it.
            assert!(reads[4].starts_with("zs:u:"), "validate {n}: {reads:?}");
        }
    }
    // Positive control: the session's first validate on the instance had nothing remembered.
    assert!(!validates[0][0].starts_with("zs:u:"), "{:?}", validates[0]);
    assert!(remembered >= 1, "{validates:?}");
}
