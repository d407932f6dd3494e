//! The key-value layout's own tests, on the in-memory store: the reads and writes each
//! operation costs (the write budget of docs/key-value.md, pinned), the keys a session leaves,
//! malformed and oversized records, and the races behind the hard rules: no session escapes
//! "log out everywhere" or `invalidate-all` whatever runs at the same time. The session rules
//! themselves run on this backend as `conformance::native_kv::<rule>`.

use super::native::from_one_start_line;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use zoe_session::config::Config;
use zoe_session::session::engine::{Engine, EngineError};
use zoe_session::session::policy::ACTIVITY_WRITE_INTERVAL_MS;
use zoe_session::store::kv::layout;
use zoe_session::store::kv::memory::MemoryKeyValue;
use zoe_session::store::{Db, KeyValue, StoreError};

const T0: u64 = crate::support::START_MS;
const SEC: u64 = 1000;
/// A round trip, so that raced calls interleave between their reads and writes.
const LATENCY: Duration = Duration::from_micros(100);

/// A key-value store that counts the calls made to it.
#[derive(Debug, Clone, Default)]
struct Counting {
    inner: MemoryKeyValue,
    reads: Arc<AtomicUsize>,
    writes: Arc<AtomicUsize>,
    scans: Arc<AtomicUsize>,
}

impl Counting {
    /// `(reads, writes, scans)` since the last call.
    fn take(&self) -> (usize, usize, usize) {
        (
            self.reads.swap(0, Ordering::SeqCst),
            self.writes.swap(0, Ordering::SeqCst),
            self.scans.swap(0, Ordering::SeqCst),
        )
    }
}

impl KeyValue for Counting {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.set(key, value)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key)
    }

    fn get_keys(&self) -> Result<Vec<String>, StoreError> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        self.inner.get_keys()
    }
}

fn open(kv: impl KeyValue + 'static, config: &Config) -> Db {
    Db::open_key_value(Box::new(kv), *config.max_per_user().unwrap()).unwrap()
}

#[test]
fn writes_and_reads_per_operation_are_pinned() {
    let config = Config::default();
    let kv = Counting::default();
    let db = open(kv.clone(), &config);
    let at = |now| Engine::new(&config, &db, now);
    // The first create of all claims the cleanup slot; the ones counted find it taken.
    at(T0).create("someone", None, None).unwrap();
    kv.take();

    let token = at(T0).create("alice", None, None).unwrap().token.expose();
    assert_eq!(
        kv.take(),
        (5, 2, 0),
        "create: the slot, read back twice, and the record"
    );
    at(T0).create("alice", None, None).unwrap();
    assert_eq!(
        kv.take(),
        (9, 2, 0),
        "four reads more per session the user holds"
    );

    at(T0 + SEC).validate(&token).unwrap();
    assert_eq!(
        kv.take(),
        (5, 0, 0),
        "validate within the activity throttle"
    );

    let later = T0 + ACTIVITY_WRITE_INTERVAL_MS;
    at(later).validate(&token).unwrap();
    assert_eq!(kv.take(), (5, 1, 0), "validate with an activity write");

    at(later).touch(token.as_str()).unwrap();
    assert_eq!(kv.take(), (5, 1, 0), "touch");

    at(later).extend(token.as_str(), 600).unwrap();
    assert_eq!(kv.take(), (5, 1, 0), "extend");

    let rotated = at(later).rotate(token.as_str()).unwrap().token.expose();
    assert_eq!(
        kv.take(),
        (7, 1, 0),
        "rotate: the secret key, read back twice"
    );

    at(later).invalidate(&rotated).unwrap();
    assert_eq!(kv.take(), (8, 1, 0), "logout: the session record");

    let bob: Vec<String> = (0..3)
        .map(|_| at(later).create("bob", None, None).unwrap().token.expose())
        .collect();
    kv.take();
    assert_eq!(at(later).invalidate_user("bob", None).unwrap(), 3);
    assert_eq!(
        kv.take(),
        (14, 3, 0),
        "log out everywhere: one write a session"
    );
    assert!(at(later).validate(&bob[0]).is_err());

    at(later).create("carol", None, None).unwrap();
    kv.take();
    // someone's, alice's second and carol's.
    assert_eq!(at(later).invalidate_all().unwrap(), 3);
    let (_, writes, scans) = kv.take();
    assert_eq!(
        (writes, scans),
        (1, 1),
        "invalidate-all: one write, whatever the store"
    );
}

#[test]
fn a_session_is_a_record_a_slot_and_nothing_else_until_it_changes() {
    let config = Config::default();
    let kv = MemoryKeyValue::new();
    let db = open(kv.clone(), &config);
    let engine = Engine::new(&config, &db, T0);
    let issued = engine.create("alice:1", None, None).unwrap();
    let keys: Vec<String> = kv.snapshot().into_keys().collect();
    let id = &issued.session.id;
    assert_eq!(
        keys,
        [
            layout::CLEANUP_KEY.to_owned(),
            layout::session_key(id),
            layout::slot_key("alice:1", 0),
        ]
    );
    // The secret is stored only as its hash.
    let record = String::from_utf8(kv.snapshot()[&layout::session_key(id)].clone()).unwrap();
    let secret = issued.token.expose();
    let secret = secret.split_once('.').unwrap().1;
    assert!(!record.contains(secret), "{record}");
    assert!(record.contains("\"secret_hash\""), "{record}");
}

#[test]
fn a_malformed_record_is_a_storage_error_naming_its_key_and_is_kept() {
    let config = Config::default();
    let kv = MemoryKeyValue::new();
    let db = open(kv.clone(), &config);
    let token = Engine::new(&config, &db, T0)
        .create("alice", None, None)
        .unwrap()
        .token
        .expose();
    let id = &token[..36];
    // Positive control: the session validates before the damage.
    Engine::new(&config, &db, T0).validate(&token).unwrap();
    kv.set(&layout::activity_key(id), b"{\"last_activity\":\"soon\"}")
        .unwrap();
    match Engine::new(&config, &db, T0).validate(&token) {
        Err(EngineError::Storage(StoreError::KeyValue(text))) => {
            assert!(text.contains(&layout::activity_key(id)), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // Neither the cleanup nor a list drops it silently.
    assert!(
        Engine::new(&config, &db, T0 + 86_400_000 * 30)
            .cleanup(10)
            .is_err()
    );
    assert!(kv.snapshot().contains_key(&layout::activity_key(id)));
}

#[test]
fn metadata_that_overflows_a_store_value_is_invalid_input_and_takes_no_slot() {
    let config = Config::from_pairs(&[("max_metadata_bytes", "1048576")]);
    let kv = MemoryKeyValue::new();
    let db = open(kv.clone(), &config);
    // Within max_metadata_bytes, but not with the rest of the record around it.
    let big = format!("{{\"blob\":\"{}\"}}", "x".repeat(1_048_560));
    match Engine::new(&config, &db, T0).create("alice", None, Some(&big)) {
        Err(EngineError::InvalidInput(text)) => {
            assert!(text.contains("over the 1048576 bytes"), "{text}");
            assert!(text.starts_with("metadata too large"), "{text}");
        }
        other => panic!("{:?}", other.map(|issued| issued.session.id)),
    }
    assert!(
        !kv.snapshot().keys().any(|k| k.starts_with("zs:u:")),
        "no slot taken"
    );
    // Positive control: metadata that fits is stored.
    let fits = format!("{{\"blob\":\"{}\"}}", "x".repeat(1000));
    Engine::new(&config, &db, T0)
        .create("alice", None, Some(&fits))
        .unwrap();
    assert!(kv.snapshot().keys().any(|k| k.starts_with("zs:u:")));
}

#[test]
fn a_store_for_more_slots_than_a_key_value_store_keeps_is_refused() {
    let err = Db::open_key_value(Box::new(MemoryKeyValue::new()), 1001).unwrap_err();
    assert!(matches!(err, StoreError::KeyValue(text) if text.contains("1000")));
    assert!(Db::open_key_value(Box::new(MemoryKeyValue::new()), 1000).is_ok());
}

/// What a raced call does to alice's sessions.
#[derive(Debug, Clone)]
enum Op {
    Validate(String),
    Touch(String),
    Extend(String),
    Rotate(String),
    Create,
    LogOutEverywhere,
    LogOutEverywhereElse(String),
    InvalidateAll,
}

/// Runs `ops` at once, each on its own handle with a round trip per call; the tokens the
/// rotates and creates answered.
fn race(kv: &MemoryKeyValue, config: &Config, now: u64, ops: &[Op]) -> Vec<(Op, String)> {
    let answers = from_one_start_line(
        ops.len(),
        || open(kv.with_latency(LATENCY), config),
        |n, db| {
            let engine = Engine::new(config, &db, now);
            let token = match &ops[n] {
                Op::Validate(t) => engine.validate(t).map(|_| None),
                Op::Touch(t) => engine.touch(t.as_str()).map(|_| None),
                Op::Extend(t) => engine.extend(t.as_str(), 60).map(|_| None),
                Op::Rotate(t) => engine.rotate(t.as_str()).map(|i| Some(i.token.expose())),
                Op::Create => engine
                    .create("alice", None, None)
                    .map(|i| Some(i.token.expose())),
                Op::LogOutEverywhere => engine.invalidate_user("alice", None).map(|_| None),
                Op::LogOutEverywhereElse(id) => {
                    engine.invalidate_user("alice", Some(id)).map(|_| None)
                }
                Op::InvalidateAll => engine.invalidate_all().map(|_| None),
            };
            match token {
                Ok(token) => token,
                Err(EngineError::NotFound | EngineError::InvalidToken) => None,
                Err(err) => panic!("{:?}: {err}", ops[n]),
            }
        },
    );
    ops.iter()
        .cloned()
        .zip(answers)
        .filter_map(|(op, token)| token.map(|t| (op, t)))
        .collect()
}

/// Alice's sessions before a round: four of them, and the ops that act on them.
fn busy_round(kv: &MemoryKeyValue, config: &Config, now: u64) -> (Vec<String>, Vec<Op>) {
    let db = open(kv.clone(), config);
    let tokens: Vec<String> = (0..4)
        .map(|_| {
            Engine::new(config, &db, now)
                .create("alice", None, None)
                .unwrap()
                .token
                .expose()
        })
        .collect();
    let mut ops = Vec::new();
    for token in &tokens {
        ops.extend([
            Op::Validate(token.clone()),
            Op::Touch(token.clone()),
            Op::Extend(token.clone()),
            Op::Rotate(token.clone()),
        ]);
    }
    ops.extend([Op::Create, Op::Create]);
    (tokens, ops)
}

/// Whether `token` validates at `now`.
fn validates(kv: &MemoryKeyValue, config: &Config, now: u64, token: &str) -> bool {
    let db = open(kv.clone(), config);
    Engine::new(config, &db, now).validate(token).is_ok()
}

/// Every session alice held before the round, and every token a rotate of one of them
/// answered, is dead after a "log out everywhere" that ran during the round, however it
/// interleaved with the rotates, activity writes, extends, creates and a concurrent "log out
/// everywhere else" from one of those sessions. Bob's session, which nothing touched, lives
/// (the check does see a live session).
#[test]
fn no_session_escapes_log_out_everywhere_whatever_races_with_it() {
    let config = Config::from_pairs(&[("max_per_user", "8")]);
    let kv = MemoryKeyValue::new();
    let db = open(kv.clone(), &config);
    let bob = Engine::new(&config, &db, T0)
        .create("bob", None, None)
        .unwrap()
        .token
        .expose();
    for round in 0..20u64 {
        let now = T0 + round * 60 * SEC;
        let (tokens, mut ops) = busy_round(&kv, &config, now);
        ops.push(Op::LogOutEverywhere);
        ops.push(Op::LogOutEverywhereElse(tokens[0][..36].to_owned()));
        let answered = race(&kv, &config, now, &ops);
        let later = now + 20 * SEC;
        for token in &tokens {
            assert!(!validates(&kv, &config, later, token), "round {round}");
        }
        for (op, token) in &answered {
            if matches!(op, Op::Rotate(_)) {
                assert!(
                    !validates(&kv, &config, later, token),
                    "round {round}: {op:?}"
                );
            }
        }
        assert!(validates(&kv, &config, later, &bob), "round {round}: bob");
        // Whatever the creates left is ended by the next round's invalidation, or here.
        Engine::new(&config, &db, later)
            .invalidate_user("alice", None)
            .unwrap();
    }
}

/// As above for `invalidate-all`: every session that existed before it, of every user,
/// is dead after it, whatever raced with it; a session created afterwards lives.
#[test]
fn no_session_escapes_invalidate_all_whatever_races_with_it() {
    let config = Config::from_pairs(&[("max_per_user", "8")]);
    let kv = MemoryKeyValue::new();
    let db = open(kv.clone(), &config);
    for round in 0..20u64 {
        let now = T0 + round * 60 * SEC;
        let bob = Engine::new(&config, &db, now)
            .create("bob", None, None)
            .unwrap()
            .token
            .expose();
        let (tokens, mut ops) = busy_round(&kv, &config, now);
        ops.push(Op::InvalidateAll);
        let answered = race(&kv, &config, now, &ops);
        let later = now + 20 * SEC;
        for token in tokens.iter().chain([&bob]) {
            assert!(!validates(&kv, &config, later, token), "round {round}");
        }
        for (op, token) in &answered {
            if matches!(op, Op::Rotate(_)) {
                assert!(
                    !validates(&kv, &config, later, token),
                    "round {round}: {op:?}"
                );
            }
        }
        let fresh = Engine::new(&config, &db, later)
            .create("carol", None, None)
            .unwrap()
            .token
            .expose();
        assert!(
            validates(&kv, &config, later, &fresh),
            "round {round}: fresh"
        );
    }
}

/// Two "log out everywhere else" at once from two of alice's sessions: on SQL one of them
/// runs first and ends the other's session, so at most one survives; the slots give the same
/// here (each deletes the other's slot). A third session, kept by neither, always ends.
#[test]
fn of_two_log_outs_everywhere_else_at_once_at_most_one_session_survives() {
    let config = Config::from_pairs(&[("max_per_user", "8")]);
    let kv = MemoryKeyValue::new();
    let db = open(kv.clone(), &config);
    let mut survivors = 0;
    for round in 0..20u64 {
        let now = T0 + round * 60 * SEC;
        let tokens: Vec<String> = (0..3)
            .map(|_| {
                Engine::new(&config, &db, now)
                    .create("alice", None, None)
                    .unwrap()
                    .token
                    .expose()
            })
            .collect();
        let ops = [
            Op::LogOutEverywhereElse(tokens[0][..36].to_owned()),
            Op::LogOutEverywhereElse(tokens[1][..36].to_owned()),
        ];
        race(&kv, &config, now, &ops);
        let live = tokens[..2]
            .iter()
            .filter(|t| validates(&kv, &config, now, t))
            .count();
        assert!(live <= 1, "round {round}");
        survivors += live;
        assert!(!validates(&kv, &config, now, &tokens[2]), "round {round}");
        Engine::new(&config, &db, now)
            .invalidate_user("alice", None)
            .unwrap();
    }
    eprintln!("key-value: one session survived in {survivors} of 20 rounds");
}
