//! The store conformance suite: every engine rule, written once against a [`Db`] and run on
//! every native backend: rusqlite (a file, so several connections can share it) and a real
//! PostgreSQL server started for the test process (`zoe-test-postgres`, a fresh database per
//! test). tower-sessions' shared store tests are the model. The `spin:sqlite` and
//! `spin:postgres` backends run the same engine through the component in `sessions.rs`.
//!
//! Each case is a function taking a [`Store`]; `suite!` makes one `#[test]` per backend, named
//! `sqlite::<case>` and `postgres::<case>`.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Barrier;
use zoe_session::config::Config;
use zoe_session::session::audit::{Event, FailureKind, Scope};
use zoe_session::session::engine::{
    CLEANUP_BATCH, Engine, EngineError, MAX_CLEANUP_ROWS, MAX_USER_PAGE, REUSE_GRACE_MS,
    SessionRef, UserPage,
};
use zoe_session::session::policy::ACTIVITY_WRITE_INTERVAL_MS;
use zoe_session::session::token::Token;
use zoe_session::store::native_postgres::NativePostgres;
use zoe_session::store::native_sqlite::NativeSqlite;
use zoe_session::store::sql::{Dialect, POSTGRES, SQLITE};
use zoe_session::store::{Db, Device, Executor, Param, Row, StoreError, Value};

/// 2027-01-15T08:00:00Z, as in the component tests.
const T0: u64 = 1_800_000_000_000;
const SEC: u64 = 1000;

/// One empty database on one backend, and a way to open more connections to it.
struct Store {
    name: &'static str,
    raw: Box<dyn Fn() -> Box<dyn Executor> + Send + Sync>,
    _dir: Option<tempfile::TempDir>,
}

impl Store {
    /// A connection with the schema in place.
    fn db(&self) -> Db {
        Db::open((self.raw)()).unwrap_or_else(|err| panic!("{}: open: {err}", self.name))
    }

    /// A connection without migrations, for checking the schema tables themselves.
    fn raw(&self) -> Box<dyn Executor> {
        (self.raw)()
    }

    fn count(&self, sql: &str) -> i64 {
        match self.raw().query(sql, &[]).expect(sql).first() {
            Some(Row(values)) => match values.first() {
                Some(Value::Int(n)) => *n,
                other => panic!("{sql}: {other:?}"),
            },
            None => panic!("{sql}: no row"),
        }
    }
}

fn sqlite() -> Store {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("sessions.db");
    Store {
        name: "sqlite",
        raw: Box::new(move || Box::new(NativeSqlite::open(&path).expect("open sqlite"))),
        _dir: Some(dir),
    }
}

fn postgres() -> Store {
    let url = zoe_test_postgres::shared()
        .fresh_database()
        .expect("a fresh PostgreSQL database");
    Store {
        name: "postgres",
        raw: Box::new(move || Box::new(NativePostgres::connect(&url).expect("connect"))),
        _dir: None,
    }
}

fn engine<'a>(db: &'a Db, config: &'a Config, now: u64) -> Engine<'a> {
    Engine::new(config, db, now)
}

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_pairs(pairs)
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $case() { super::$case(&super::sqlite()); } )*
        }
        mod postgres {
            $( #[test] fn $case() { super::$case(&super::postgres()); } )*
        }
    };
}

suite!(
    create_then_validate_and_get_return_the_session,
    the_store_keeps_only_a_hash_of_the_secret,
    expired_session_is_refused,
    validate_slides_expiry_writing_at_most_once_per_window,
    touch_records_activity_at_once,
    absolute_lifetime_caps_sliding_and_extend,
    extend_is_capped_at_max_timeout_from_now,
    fourth_session_evicts_the_least_recently_active,
    reject_policy_refuses_past_the_limit,
    expired_sessions_do_not_count_against_the_limit,
    rotate_issues_a_new_token_and_kills_the_old_one,
    a_rotate_from_a_stale_read_loses,
    a_public_id_acts_only_when_explicitly_trusted,
    invalidate_by_id_or_token,
    invalidate_user_keeps_the_excepted_session,
    invalidate_all_deletes_every_session,
    list_user_shows_live_sessions_most_recent_first,
    cleanup_deletes_expired_rows_in_bounded_batches,
    create_cleans_up_once_per_interval,
    a_failed_cleanup_leaves_the_committed_create_standing,
    stats_count_sessions_users_and_expired_rows,
    users_are_listed_by_prefix_a_page_at_a_time_in_byte_order,
    migrations_are_idempotent,
    a_newer_schema_is_refused,
    a_deferred_handle_validates_in_one_statement,
    a_create_below_the_limit_is_one_statement_on_sqlite_and_four_on_postgres,
    a_deferred_handle_migrates_a_fresh_database_when_first_needed,
    a_deferred_handle_refuses_a_newer_schema_on_its_first_write,
    replicas_starting_together_migrate_once,
    forty_concurrent_creates_never_exceed_the_limit,
    forty_concurrent_creates_under_reject_admit_exactly_the_limit,
    racing_rotates_leave_exactly_one_valid_token,
    concurrent_cleanups_delete_each_expired_row_once,
    a_rotated_token_presented_after_the_grace_revokes_the_session,
    within_the_grace_the_old_token_is_refused_and_the_session_lives,
    with_detection_off_an_old_token_is_only_refused,
    racing_requests_with_the_old_token_right_after_a_rotate_revoke_nothing,
    a_token_from_anywhere_in_the_rotation_chain_revokes_the_session,
    an_earlier_link_of_the_chain_revokes_even_within_the_grace,
    the_chain_remembers_a_bounded_number_of_rotates,
    an_older_schema_gains_the_rotation_columns,
    a_session_s_life_is_told_by_its_events_in_order,
    a_session_records_its_device_at_create_and_at_activity_writes_only,
    with_record_devices_off_no_device_is_kept,
);

// --- the cases -----------------------------------------------------------------------------

fn create_then_validate_and_get_return_the_session(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let issued = engine(&db, &config, T0)
        .create("alice", None, Some(r#"{"role":"admin"}"#))
        .unwrap();
    let token = issued.token.expose();
    let at = engine(&db, &config, T0 + SEC);
    let validated = at.validate(&token).unwrap();
    assert_eq!(validated.id, issued.session.id);
    assert_eq!(validated.user_id, "alice");
    assert_eq!(validated.metadata, r#"{"role":"admin"}"#);
    assert_eq!(validated.expires_at, T0 + 3600 * SEC);
    assert_eq!(validated.absolute_expires_at, T0 + 604_800 * SEC);
    assert!(validated.is_active);
    assert_eq!(at.get(&issued.session.id).unwrap().id, issued.session.id);
    assert_eq!(at.get(&token).unwrap().id, issued.session.id);
    let forged = format!("{}.{}", issued.session.id, "A".repeat(43));
    assert!(matches!(
        at.validate(&forged),
        Err(EngineError::InvalidToken)
    ));
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert!(matches!(at.get(unknown), Err(EngineError::NotFound)));
}

fn the_store_keeps_only_a_hash_of_the_secret(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let issued = engine(&db, &config, T0)
        .create("alice", None, None)
        .unwrap();
    let token = issued.token.expose();
    let (_, secret) = token.split_once('.').unwrap();
    let row = db.find(&issued.session.id).unwrap().expect("stored");
    assert_eq!(row.secret_hash, issued.token.secret_hash());
    assert_eq!(row.secret_hash.len(), 32);
    assert_ne!(row.secret_hash, secret.as_bytes());
}

fn expired_session_is_refused(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let at_start = engine(&db, &config, T0);
    let a = at_start.create("alice", None, None).unwrap().token.expose();
    let b = at_start.create("alice", None, None).unwrap().token.expose();
    // One millisecond before the idle timeout it holds; at the timeout it does not.
    assert!(
        engine(&db, &config, T0 + 3600 * SEC - 1)
            .validate(&a)
            .is_ok()
    );
    let at_expiry = engine(&db, &config, T0 + 3600 * SEC);
    assert!(matches!(at_expiry.validate(&b), Err(EngineError::Expired)));
    assert!(matches!(at_expiry.touch(&b), Err(EngineError::Expired)));
    assert!(matches!(
        at_expiry.extend(&b, 60),
        Err(EngineError::Expired)
    ));
    assert!(matches!(at_expiry.rotate(&b), Err(EngineError::Expired)));
}

fn validate_slides_expiry_writing_at_most_once_per_window(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let token = engine(&db, &config, T0)
        .create("alice", None, None)
        .unwrap()
        .token
        .expose();
    let early = T0 + ACTIVITY_WRITE_INTERVAL_MS - 1;
    let s = engine(&db, &config, early).validate(&token).unwrap();
    assert_eq!(s.last_activity, T0, "inside the window nothing is written");
    assert_eq!(db.find(&s.id).unwrap().unwrap().last_activity, T0);
    let due = T0 + ACTIVITY_WRITE_INTERVAL_MS;
    let s = engine(&db, &config, due).validate(&token).unwrap();
    assert_eq!(s.last_activity, due);
    assert_eq!(s.expires_at, due + 3600 * SEC);
    let stored = db.find(&s.id).unwrap().unwrap();
    assert_eq!(
        (stored.last_activity, stored.expires_at),
        (due, due + 3600 * SEC)
    );
    // Past the first expiry, the slid session still holds.
    assert!(
        engine(&db, &config, T0 + 3600 * SEC + 1)
            .validate(&token)
            .is_ok()
    );
    // Without auto_update a validate never writes.
    let still = Config::from_pairs(&[("auto_update", "false")]);
    let later = T0 + 3000 * SEC;
    let s = engine(&db, &still, later).validate(&token).unwrap();
    assert_ne!(s.last_activity, later);
}

fn touch_records_activity_at_once(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let token = engine(&db, &config, T0)
        .create("alice", None, None)
        .unwrap()
        .token
        .expose();
    let s = engine(&db, &config, T0 + 1).touch(&token).unwrap();
    assert_eq!(s.last_activity, T0 + 1);
    assert_eq!(db.find(&s.id).unwrap().unwrap().last_activity, T0 + 1);
}

fn absolute_lifetime_caps_sliding_and_extend(store: &Store) {
    let db = store.db();
    let config = config(&[("absolute_lifetime", "7200")]);
    let token = engine(&db, &config, T0)
        .create("alice", None, None)
        .unwrap()
        .token
        .expose();
    let s = engine(&db, &config, T0 + 3000 * SEC)
        .validate(&token)
        .unwrap();
    assert_eq!(s.expires_at, T0 + 6600 * SEC);
    let s = engine(&db, &config, T0 + 6000 * SEC)
        .validate(&token)
        .unwrap();
    assert_eq!(
        s.expires_at,
        T0 + 7200 * SEC,
        "capped by the absolute lifetime"
    );
    let s = engine(&db, &config, T0 + 6500 * SEC)
        .extend(&token, 3600)
        .unwrap();
    assert_eq!(s.expires_at, T0 + 7200 * SEC);
    let at_end = engine(&db, &config, T0 + 7200 * SEC);
    assert!(matches!(at_end.validate(&token), Err(EngineError::Expired)));
}

fn extend_is_capped_at_max_timeout_from_now(store: &Store) {
    let db = store.db();
    let config = config(&[("max_timeout", "7200")]);
    let at = engine(&db, &config, T0);
    let token = at.create("alice", None, None).unwrap().token.expose();
    assert_eq!(at.extend(&token, 1800).unwrap().expires_at, T0 + 5400 * SEC);
    assert_eq!(at.extend(&token, 3600).unwrap().expires_at, T0 + 7200 * SEC);
    assert_eq!(at.extend(&token, 3600).unwrap().expires_at, T0 + 7200 * SEC);
    assert!(matches!(
        at.extend(&token, 0),
        Err(EngineError::InvalidInput(_))
    ));
    assert!(matches!(
        at.extend(&token, 7201),
        Err(EngineError::InvalidInput(_))
    ));
    let stored = db.find(&token[..36]).unwrap().unwrap();
    assert_eq!(stored.expires_at, T0 + 7200 * SEC);
}

fn fourth_session_evicts_the_least_recently_active(store: &Store) {
    let db = store.db();
    let config = config(&[("max_per_user", "3")]);
    let create = |now| {
        engine(&db, &config, now)
            .create("alice", None, None)
            .unwrap()
            .token
            .expose()
    };
    let a = create(T0);
    let b = create(T0 + SEC);
    let c = create(T0 + 2 * SEC);
    engine(&db, &config, T0 + 3 * SEC).touch(&a).unwrap();
    let d = create(T0 + 4 * SEC);
    let at = engine(&db, &config, T0 + 5 * SEC);
    assert!(matches!(at.validate(&b), Err(EngineError::NotFound)));
    for token in [&a, &c, &d] {
        assert!(at.validate(token).is_ok());
    }
    let ids: Vec<String> = at
        .list_user("alice")
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, [&d[..36], &a[..36], &c[..36]]);
}

fn reject_policy_refuses_past_the_limit(store: &Store) {
    let db = store.db();
    let config = config(&[("max_per_user", "2"), ("limit_policy", "reject")]);
    let at = engine(&db, &config, T0);
    let first = at.create("alice", None, None).unwrap();
    at.create("alice", None, None).unwrap();
    assert!(matches!(
        at.create("alice", None, None),
        Err(EngineError::LimitReached)
    ));
    // Another user is not affected; freeing a slot admits one more.
    at.create("bob", None, None).unwrap();
    at.invalidate(&first.session.id).unwrap();
    at.create("alice", None, None).unwrap();
    assert_eq!(at.list_user("alice").unwrap().len(), 2);
}

fn expired_sessions_do_not_count_against_the_limit(store: &Store) {
    let db = store.db();
    let config = config(&[("max_per_user", "2"), ("limit_policy", "reject")]);
    let at = engine(&db, &config, T0);
    at.create("alice", Some(300), None).unwrap();
    at.create("alice", Some(300), None).unwrap();
    let later = engine(&db, &config, T0 + 300 * SEC);
    later.create("alice", None, None).unwrap();
    later.create("alice", None, None).unwrap();
    assert_eq!(
        later.stats().unwrap().expired,
        0,
        "the user's expired rows went"
    );
    assert!(matches!(
        later.create("alice", None, None),
        Err(EngineError::LimitReached)
    ));
}

fn rotate_issues_a_new_token_and_kills_the_old_one(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let at = engine(&db, &config, T0);
    let old = at.create("alice", None, None).unwrap();
    let old_token = old.token.expose();
    let later = engine(&db, &config, T0 + 10 * SEC);
    let new = later.rotate(&old_token).unwrap();
    let new_token = new.token.expose();
    assert_eq!(new.session.id, old.session.id);
    assert_ne!(new_token, old_token);
    assert_eq!(new.session.last_activity, T0 + 10 * SEC);
    assert!(matches!(
        later.validate(&old_token),
        Err(EngineError::InvalidToken)
    ));
    assert!(matches!(
        later.rotate(&old_token),
        Err(EngineError::InvalidToken)
    ));
    assert!(later.validate(&new_token).is_ok());
}

fn a_rotate_from_a_stale_read_loses(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let at = engine(&db, &config, T0);
    let issued = at.create("alice", None, None).unwrap();
    let stale = db.find(&issued.session.id).unwrap().unwrap();
    at.rotate(&issued.token.expose()).unwrap();
    // A second rotation that read the row before the first committed swaps nothing, and
    // activity recorded under the old secret is refused too.
    let id = &stale.id;
    assert!(
        !db.replace_secret(
            id,
            (&stale.secret_hash, &[7; 32]),
            &stale.retired_secrets.retire(&stale.secret_hash),
            T0,
            T0,
            None
        )
        .unwrap()
    );
    assert!(
        !db.record_activity(id, &stale.secret_hash, T0, T0, None)
            .unwrap()
    );
    // The guard does let the current secret through.
    let current = db.find(id).unwrap().unwrap();
    assert!(
        db.record_activity(id, &current.secret_hash, T0 + 1, current.expires_at, None)
            .unwrap()
    );
}

fn a_public_id_acts_only_when_explicitly_trusted(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let at = engine(&db, &config, T0);
    let issued = at.create("alice", None, None).unwrap();
    let id = issued.session.id.clone();
    // A bare id passed where a token goes is a malformed token, never a way past the secret.
    assert!(matches!(
        at.touch(id.as_str()),
        Err(EngineError::InvalidToken)
    ));
    assert!(matches!(
        at.extend(id.as_str(), 60),
        Err(EngineError::InvalidToken)
    ));
    assert!(matches!(
        at.rotate(id.as_str()),
        Err(EngineError::InvalidToken)
    ));
    // Positive control: the same id, explicitly trusted, acts.
    let later = engine(&db, &config, T0 + SEC);
    assert_eq!(
        later
            .touch(SessionRef::TrustedId(&id))
            .unwrap()
            .last_activity,
        T0 + SEC
    );
    let extended = later.extend(SessionRef::TrustedId(&id), 60).unwrap();
    assert_eq!(extended.expires_at, T0 + (1 + 3600 + 60) * SEC);
    let rotated = later.rotate(SessionRef::TrustedId(&id)).unwrap();
    assert_eq!(rotated.session.id, id);
    assert!(matches!(
        later.validate(&issued.token.expose()),
        Err(EngineError::InvalidToken)
    ));
    assert!(later.validate(&rotated.token.expose()).is_ok());
    // A trusted id must still be a UUID.
    assert!(matches!(
        later.touch(SessionRef::TrustedId("not-a-uuid")),
        Err(EngineError::InvalidInput(_))
    ));
}

fn invalidate_by_id_or_token(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let at = engine(&db, &config, T0);
    let by_id = at.create("alice", None, None).unwrap();
    let by_token = at.create("alice", None, None).unwrap();
    at.invalidate(&by_id.session.id).unwrap();
    at.invalidate(&by_token.token.expose()).unwrap();
    assert!(matches!(
        at.validate(&by_id.token.expose()),
        Err(EngineError::NotFound)
    ));
    assert!(matches!(
        at.invalidate(&by_id.session.id),
        Err(EngineError::NotFound)
    ));
    assert!(matches!(
        at.get(&by_token.session.id),
        Err(EngineError::NotFound)
    ));
}

fn invalidate_user_keeps_the_excepted_session(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let at = engine(&db, &config, T0);
    let alice: Vec<_> = (0..3)
        .map(|_| at.create("alice", None, None).unwrap())
        .collect();
    let bob = at.create("bob", None, None).unwrap();
    let keep = &alice[1];
    assert_eq!(
        at.invalidate_user("alice", Some(&keep.session.id)).unwrap(),
        2
    );
    assert!(at.validate(&keep.token.expose()).is_ok());
    assert!(matches!(
        at.validate(&alice[0].token.expose()),
        Err(EngineError::NotFound)
    ));
    assert!(at.validate(&bob.token.expose()).is_ok());
    assert_eq!(at.invalidate_user("alice", None).unwrap(), 1);
    assert!(at.list_user("alice").unwrap().is_empty());
    assert_eq!(at.list_user("bob").unwrap().len(), 1);
    assert!(matches!(
        at.invalidate_user("alice", Some("not-a-uuid")),
        Err(EngineError::InvalidInput(_))
    ));
}

fn invalidate_all_deletes_every_session(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let at = engine(&db, &config, T0);
    for user in ["alice", "bob", "carol"] {
        at.create(user, None, None).unwrap();
    }
    assert_eq!(at.invalidate_all().unwrap(), 3);
    assert_eq!(at.stats().unwrap().active_sessions, 0);
}

fn list_user_shows_live_sessions_most_recent_first(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let old = engine(&db, &config, T0)
        .create("alice", Some(300), None)
        .unwrap();
    let a = engine(&db, &config, T0 + SEC)
        .create("alice", None, None)
        .unwrap();
    let b = engine(&db, &config, T0 + 2 * SEC)
        .create("alice", None, None)
        .unwrap();
    let at = engine(&db, &config, T0 + 300 * SEC);
    let ids: Vec<String> = at
        .list_user("alice")
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, [b.session.id, a.session.id]);
    assert!(
        !ids.contains(&old.session.id),
        "expired sessions are not listed"
    );
}

fn cleanup_deletes_expired_rows_in_bounded_batches(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let at = engine(&db, &config, T0);
    let expiring = 2 * CLEANUP_BATCH + 100;
    for n in 0..expiring {
        at.create(&format!("user-{n}"), Some(300), None).unwrap();
    }
    for user in ["alice", "bob", "carol"] {
        at.create(user, None, None).unwrap();
    }
    let later = engine(&db, &config, T0 + 300 * SEC);
    assert_eq!(later.stats().unwrap().expired, u64::from(expiring));
    // A limit between batches is honoured exactly.
    assert_eq!(
        later.cleanup(CLEANUP_BATCH + 100).unwrap(),
        CLEANUP_BATCH + 100
    );
    assert_eq!(later.cleanup(MAX_CLEANUP_ROWS).unwrap(), CLEANUP_BATCH);
    assert_eq!(later.cleanup(MAX_CLEANUP_ROWS).unwrap(), 0);
    let stats = later.stats().unwrap();
    assert_eq!((stats.expired, stats.active_sessions), (0, 3));
    assert_eq!(stats.last_cleanup_at, T0 + 300 * SEC);
    assert!(matches!(
        later.cleanup(0),
        Err(EngineError::InvalidInput(_))
    ));
    assert!(matches!(
        later.cleanup(MAX_CLEANUP_ROWS + 1),
        Err(EngineError::InvalidInput(_))
    ));
}

fn create_cleans_up_once_per_interval(store: &Store) {
    let db = store.db();
    let config = config(&[("cleanup_interval", "3600")]);
    // The first create claims the (never used) cleanup slot.
    let at = engine(&db, &config, T0);
    for n in 0..5 {
        at.create(&format!("user-{n}"), Some(300), None).unwrap();
    }
    assert_eq!(at.stats().unwrap().last_cleanup_at, T0);
    // Within the interval a create leaves the expired rows alone...
    let soon = engine(&db, &config, T0 + 300 * SEC);
    soon.create("alice", None, None).unwrap();
    let stats = soon.stats().unwrap();
    assert_eq!((stats.expired, stats.last_cleanup_at), (5, T0));
    // ...and an interval later it cleans them up.
    let next = engine(&db, &config, T0 + 3600 * SEC);
    next.create("bob", None, None).unwrap();
    let stats = next.stats().unwrap();
    assert_eq!((stats.expired, stats.last_cleanup_at), (0, T0 + 3600 * SEC));
    // Of two claims at one time, one wins.
    assert!(db.claim_cleanup(T0 + 7200 * SEC, 3600 * SEC).unwrap());
    assert!(!db.claim_cleanup(T0 + 7200 * SEC, 3600 * SEC).unwrap());
}

/// Makes every update of the cleanup claim fail, as a lock timeout or a lost connection would.
fn block_cleanup_claims(store: &Store) {
    let statements: &[&str] = match store.name {
        "sqlite" => &["CREATE TRIGGER block_cleanup BEFORE UPDATE ON zoe_state \
                       BEGIN SELECT RAISE(ABORT, 'cleanup blocked'); END"],
        _ => &[
            "CREATE FUNCTION block_cleanup() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'cleanup blocked'; END $$",
            "CREATE TRIGGER block_cleanup BEFORE UPDATE ON zoe_state \
             FOR EACH ROW EXECUTE FUNCTION block_cleanup()",
        ],
    };
    let raw = store.raw();
    for sql in statements {
        raw.execute(sql, &[]).expect(sql);
    }
}

fn a_failed_cleanup_leaves_the_committed_create_standing(store: &Store) {
    let db = store.db();
    let config = config(&[("cleanup_interval", "60")]);
    engine(&db, &config, T0)
        .create("old", Some(300), None)
        .unwrap();
    block_cleanup_claims(store);
    // An interval later the create's cleanup is due, and fails...
    let later = engine(&db, &config, T0 + 3600 * SEC);
    let issued = later.create("alice", None, None).unwrap();
    let failure = issued
        .cleanup_failure
        .expect("the cleanup claim was blocked");
    assert!(failure.to_string().contains("cleanup blocked"), "{failure}");
    // ...yet the session is committed and its token works.
    let token = issued.token.expose();
    assert_eq!(later.validate(&token).unwrap().user_id, "alice");
    let stats = later.stats().unwrap();
    assert_eq!((stats.active_sessions, stats.expired), (1, 1));
    assert_eq!(
        stats.last_cleanup_at, T0,
        "the failed claim changed nothing"
    );
    // Nothing was claimed, so the next create tries again; once the fault is gone it cleans up.
    let unblock = match store.name {
        "sqlite" => "DROP TRIGGER block_cleanup",
        _ => "DROP TRIGGER block_cleanup ON zoe_state",
    };
    store.raw().execute(unblock, &[]).expect(unblock);
    let issued = later.create("bob", None, None).unwrap();
    assert!(
        issued.cleanup_failure.is_none(),
        "{:?}",
        issued.cleanup_failure
    );
    let stats = later.stats().unwrap();
    assert_eq!((stats.expired, stats.last_cleanup_at), (0, T0 + 3600 * SEC));
}

fn stats_count_sessions_users_and_expired_rows(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let at = engine(&db, &config, T0);
    assert_eq!(at.stats().unwrap().active_sessions, 0);
    at.create("alice", None, None).unwrap();
    at.create("alice", None, None).unwrap();
    at.create("bob", None, None).unwrap();
    at.create("carol", Some(300), None).unwrap();
    let stats = engine(&db, &config, T0 + 300 * SEC).stats().unwrap();
    assert_eq!(stats.active_sessions, 3);
    assert_eq!(stats.active_users, 2);
    assert_eq!(stats.expired, 1);
}

fn users_are_listed_by_prefix_a_page_at_a_time_in_byte_order(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let at = engine(&db, &config, T0);
    for user in [
        "alice",
        "alice",
        "alfred",
        "Alice",
        "al",
        "am",
        "bob",
        "<b>al</b>",
    ] {
        at.create(user, None, None).unwrap();
    }
    engine(&db, &config, T0 + SEC)
        .create("alice", None, None)
        .unwrap();
    at.create("alma", Some(300), None).unwrap();
    let at = engine(&db, &config, T0 + 300 * SEC);
    let ids =
        |page: &UserPage| -> Vec<String> { page.users.iter().map(|u| u.user_id.clone()).collect() };

    let first = at.list_users("al", None, 2).unwrap();
    assert_eq!(ids(&first), ["al", "alfred"]);
    assert_eq!(first.next_after.as_deref(), Some("alfred"));
    let second = at.list_users("al", first.next_after.as_deref(), 2).unwrap();
    assert_eq!(
        ids(&second),
        ["alice"],
        "no `Alice`, `am`, or `alma` (expired)"
    );
    assert_eq!(second.next_after, None);
    assert_eq!(second.users[0].sessions, 3);
    assert_eq!(second.users[0].last_activity, T0 + SEC);

    let everyone = at.list_users("", None, 200).unwrap();
    assert_eq!(
        ids(&everyone),
        ["<b>al</b>", "Alice", "al", "alfred", "alice", "am", "bob"]
    );
    assert_eq!(everyone.next_after, None);
    // A full last page says so only when a further user exists.
    let exact = at.list_users("", None, 7).unwrap();
    assert_eq!(exact.next_after, None);
    // A cursor before the prefix does not widen the range.
    assert_eq!(
        ids(&at.list_users("b", Some("alice"), 10).unwrap()),
        ["bob"]
    );
    assert_eq!(
        ids(&at.list_users("z", None, 10).unwrap()),
        Vec::<String>::new()
    );
    for limit in [0, MAX_USER_PAGE + 1] {
        assert!(matches!(
            at.list_users("", None, limit),
            Err(EngineError::InvalidInput(_))
        ));
    }
}

fn migrations_are_idempotent(store: &Store) {
    let config = Config::default();
    let token = {
        let db = store.db();
        engine(&db, &config, T0)
            .create("alice", None, None)
            .unwrap()
            .token
            .expose()
    };
    for _ in 0..3 {
        let db = store.db();
        assert!(engine(&db, &config, T0 + SEC).validate(&token).is_ok());
    }
    assert_eq!(store.count("SELECT count(*) FROM zoe_schema"), 1);
    assert_eq!(store.count("SELECT max(version) FROM zoe_schema"), 3);
    assert_eq!(store.count("SELECT count(*) FROM zoe_state"), 1);
}

fn a_newer_schema_is_refused(store: &Store) {
    drop(store.db());
    store
        .raw()
        .execute("UPDATE zoe_schema SET version = version + 1", &[])
        .unwrap();
    match Db::open(store.raw()) {
        Err(StoreError::FutureSchema { found: 4, known: 3 }) => {}
        other => panic!("{other:?}"),
    }
}

/// An executor that counts the statements it runs.
#[derive(Debug)]
struct Counting {
    inner: Box<dyn Executor>,
    statements: Rc<Cell<usize>>,
}

impl Executor for Counting {
    fn dialect(&self) -> &'static Dialect {
        self.inner.dialect()
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        self.statements.set(self.statements.get() + 1);
        self.inner.query(sql, params)
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        self.statements.set(self.statements.get() + 1);
        self.inner.execute(sql, params)
    }
}

fn counting(store: &Store) -> (Box<dyn Executor>, Rc<Cell<usize>>) {
    let statements = Rc::new(Cell::new(0));
    let exec = Counting {
        inner: store.raw(),
        statements: statements.clone(),
    };
    (Box::new(exec), statements)
}

/// A token of a session for alice, created on an eagerly migrated handle.
fn alice_token(store: &Store, config: &Config) -> String {
    engine(&store.db(), config, T0)
        .create("alice", None, None)
        .unwrap()
        .token
        .expose()
}

fn a_deferred_handle_validates_in_one_statement(store: &Store) {
    let config = Config::default();
    let token = alice_token(store, &config);
    let soon = T0 + SEC; // no activity write is due yet
    let (exec, statements) = counting(store);
    let db = Db::open_deferred(exec);
    assert_eq!(statements.get(), 0, "opening runs nothing");
    engine(&db, &config, soon).validate(&token).unwrap();
    assert_eq!(statements.get(), 1, "one lookup, no version check");
    // Positive control: an eagerly migrated handle checks the version first, and the counter
    // sees it.
    let (exec, statements) = counting(store);
    let db = Db::open(exec).unwrap();
    engine(&db, &config, soon).validate(&token).unwrap();
    assert_eq!(statements.get(), 2);
}

fn a_create_below_the_limit_is_one_statement_on_sqlite_and_four_on_postgres(store: &Store) {
    let config = config(&[("max_per_user", "2")]);
    // The first create of all claims the cleanup slot, so none is due for the ones counted.
    engine(&store.db(), &config, T0)
        .create("bob", None, None)
        .unwrap();
    let (exec, statements) = counting(store);
    let db = Db::open(exec).unwrap();
    let count = |now, user| {
        let before = statements.get();
        let issued = engine(&db, &config, now).create(user, None, None).unwrap();
        assert!(issued.cleanup_failure.is_none());
        statements.get() - before
    };
    let sqlite = store.name == "sqlite";
    // SQLite: the guarded insert alone. PostgreSQL: BEGIN, the user's lock, the guarded
    // insert, COMMIT.
    assert_eq!(count(T0, "alice"), if sqlite { 1 } else { 4 });
    assert_eq!(count(T0 + SEC, "alice"), if sqlite { 1 } else { 4 });
    // A full user costs more, and the counter sees it: the guarded insert finds no room, then
    // (SQLite: BEGIN IMMEDIATE) the ids by age, one delete, the insert again, COMMIT.
    assert_eq!(count(T0 + 2 * SEC, "alice"), if sqlite { 6 } else { 7 });
    assert_eq!(
        engine(&db, &config, T0 + 3 * SEC)
            .list_user("alice")
            .unwrap()
            .len(),
        2
    );
}

fn a_deferred_handle_migrates_a_fresh_database_when_first_needed(store: &Store) {
    let config = Config::default();
    let stranger = Token::generate().unwrap().expose();
    // A read on a database without tables fails, migrates, and is answered.
    let db = Db::open_deferred(store.raw());
    assert!(matches!(
        engine(&db, &config, T0).validate(&stranger),
        Err(EngineError::NotFound)
    ));
    assert_eq!(store.count("SELECT max(version) FROM zoe_schema"), 3);
    // A handle whose first call writes migrates before it (here: nothing left to do).
    let db = Db::open_deferred(store.raw());
    let token = engine(&db, &config, T0)
        .create("alice", None, None)
        .unwrap()
        .token
        .expose();
    assert!(engine(&db, &config, T0).validate(&token).is_ok());
    assert_eq!(store.count("SELECT count(*) FROM zoe_schema"), 1);
}

fn a_deferred_handle_refuses_a_newer_schema_on_its_first_write(store: &Store) {
    let config = Config::default();
    let token = alice_token(store, &config);
    store
        .raw()
        .execute("UPDATE zoe_schema SET version = version + 1", &[])
        .unwrap();
    let db = Db::open_deferred(store.raw());
    // Reads of this build's columns still answer...
    assert!(engine(&db, &config, T0 + SEC).validate(&token).is_ok());
    // ...and the first write checks the version and refuses.
    match engine(&db, &config, T0 + SEC).create("bob", None, None) {
        Err(EngineError::Storage(StoreError::FutureSchema { found: 4, known: 3 })) => {}
        other => panic!("{other:?}"),
    }
}

fn replicas_starting_together_migrate_once(store: &Store) {
    from_one_start_line(
        8,
        || store.raw(),
        |_, exec| drop(Db::open(exec).expect("every replica opens")),
    );
    assert_eq!(store.count("SELECT count(*) FROM zoe_schema"), 1);
    assert_eq!(store.count("SELECT count(*) FROM zoe_state"), 1);
}

/// Runs `prepare` on each of `threads` threads, then `race` on all of them from one start
/// line, and returns what each `race` returned, in thread order. A thread whose `prepare`
/// fails still reaches the start line before its panic is raised again, so the others are
/// never left waiting for it: a bare `Barrier` after a panicking open once hung CI until it
/// ran out of time.
fn from_one_start_line<P, T: Send>(
    threads: usize,
    prepare: impl Fn() -> P + Sync,
    race: impl Fn(usize, P) -> T + Sync,
) -> Vec<T> {
    let start_line = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|n| {
                let (start_line, prepare, race) = (&start_line, &prepare, &race);
                scope.spawn(move || {
                    let prepared = std::panic::catch_unwind(AssertUnwindSafe(prepare));
                    start_line.wait();
                    match prepared {
                        Ok(prepared) => race(n, prepared),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Runs `per_thread` creates for `alice` on each of `threads` connections (from `open`) at
/// once; returns the outcomes.
fn concurrent_creates(
    open: &(dyn Fn() -> Db + Sync),
    config: &Config,
    threads: usize,
    per_thread: usize,
) -> Vec<Result<(), EngineError>> {
    from_one_start_line(threads, open, |_, db| {
        (0..per_thread)
            .map(|_| {
                engine(&db, config, T0)
                    .create("alice", None, None)
                    .map(drop)
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

fn forty_concurrent_creates_never_exceed_the_limit(store: &Store) {
    let config = config(&[("max_per_user", "5")]);
    let outcomes = concurrent_creates(&|| store.db(), &config, 8, 5);
    assert_eq!(outcomes.len(), 40);
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let db = store.db();
    assert_eq!(
        engine(&db, &config, T0).list_user("alice").unwrap().len(),
        5
    );
}

fn forty_concurrent_creates_under_reject_admit_exactly_the_limit(store: &Store) {
    let config = config(&[("max_per_user", "5"), ("limit_policy", "reject")]);
    let outcomes = concurrent_creates(&|| store.db(), &config, 8, 5);
    let admitted = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Err(EngineError::LimitReached)))
        .count();
    assert_eq!((admitted, refused), (5, 35), "{outcomes:?}");
    let db = store.db();
    assert_eq!(
        engine(&db, &config, T0).list_user("alice").unwrap().len(),
        5
    );
}

fn racing_rotates_leave_exactly_one_valid_token(store: &Store) {
    let config = Config::default();
    let token = {
        let db = store.db();
        engine(&db, &config, T0)
            .create("alice", None, None)
            .unwrap()
            .token
            .expose()
    };
    let winners: Vec<String> = from_one_start_line(
        8,
        || store.db(),
        |_, db| match engine(&db, &config, T0 + SEC).rotate(&token) {
            Ok(issued) => Some(issued.token.expose()),
            Err(EngineError::InvalidToken) => None,
            Err(other) => panic!("{other:?}"),
        },
    )
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let db = store.db();
    let at = engine(&db, &config, T0 + 2 * SEC);
    assert!(at.validate(&winners[0]).is_ok());
    assert!(matches!(
        at.validate(&token),
        Err(EngineError::InvalidToken)
    ));
}

fn concurrent_cleanups_delete_each_expired_row_once(store: &Store) {
    let config = Config::default();
    let expiring = 3 * CLEANUP_BATCH + 7;
    {
        let db = store.db();
        let at = engine(&db, &config, T0);
        for n in 0..expiring {
            at.create(&format!("user-{n}"), Some(300), None).unwrap();
        }
        at.create("alice", None, None).unwrap();
    }
    let later = T0 + 300 * SEC;
    let deleted: u32 = from_one_start_line(
        4,
        || store.db(),
        |_, db| {
            engine(&db, &config, later)
                .cleanup(MAX_CLEANUP_ROWS)
                .unwrap()
        },
    )
    .into_iter()
    .sum();
    // Every expired row was counted by exactly one cleaner: a row deleted twice would make
    // the sum larger, a row skipped by all would leave it in place.
    assert_eq!(deleted, expiring);
    let db = store.db();
    let stats = engine(&db, &config, later).stats().unwrap();
    assert_eq!((stats.expired, stats.active_sessions), (0, 1));
}

// --- PostgreSQL only -------------------------------------------------------------------------

/// PostgreSQL's dialect without the per-user lock: the positive control that shows the
/// concurrency test above can see an overflow.
static POSTGRES_WITHOUT_USER_LOCK: Dialect = Dialect {
    lock_user: None,
    ..POSTGRES
};

#[derive(Debug)]
struct WithoutUserLock(Box<dyn Executor>);

impl Executor for WithoutUserLock {
    fn dialect(&self) -> &'static Dialect {
        &POSTGRES_WITHOUT_USER_LOCK
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        self.0.query(sql, params)
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        self.0.execute(sql, params)
    }
}

/// The users page is an index range on SQLite, not a scan; a `LIKE` on the same column is a
/// scan (the positive control: the check can tell them apart).
#[test]
fn the_users_page_is_a_range_of_the_user_index_on_sqlite() {
    let store = sqlite();
    drop(store.db());
    let plan = |sql: &str, params: &[Param<'_>]| -> String {
        store
            .raw()
            .query(&format!("EXPLAIN QUERY PLAN {sql}"), params)
            .expect("plan")
            .iter()
            .map(|Row(values)| format!("{values:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let range = plan(
        SQLITE.users_in_range,
        &[
            Param::Text("al"),
            Param::Text("am"),
            Param::Text(""),
            Param::Int(0),
            Param::Int(10),
        ],
    );
    assert!(
        range.contains("USING INDEX sessions_by_user (user_id>? AND user_id<?)"),
        "{range}"
    );
    let like = plan(
        "SELECT user_id FROM sessions WHERE user_id LIKE ?1 GROUP BY user_id",
        &[Param::Text("al%")],
    );
    assert!(!like.contains("user_id>?"), "{like}");
}

#[test]
fn postgres_without_the_user_lock_overflows_the_limit() {
    let store = postgres();
    let config = config(&[("max_per_user", "5")]);
    let open = || Db::open(Box::new(WithoutUserLock(store.raw()))).expect("open");
    let mut seen = Vec::new();
    for _ in 0..10 {
        let db = open();
        engine(&db, &config, T0)
            .invalidate_user("alice", None)
            .unwrap();
        let outcomes = concurrent_creates(&open, &config, 8, 5);
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        let held = engine(&db, &config, T0).list_user("alice").unwrap().len();
        seen.push(held);
        if held > 5 {
            return;
        }
    }
    panic!("without the lock the limit always held ({seen:?}): the test cannot see a race");
}

#[test]
fn an_unreachable_postgres_is_unavailable() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    match NativePostgres::connect(&format!("postgres://postgres@127.0.0.1:{port}/x")) {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("{other:?}"),
    }
    // The same call reaches a running server.
    let url = zoe_test_postgres::shared().fresh_database().unwrap();
    assert!(NativePostgres::connect(&url).is_ok());
}

#[test]
fn cleanup_never_blocks_a_validate_on_postgres() {
    let store = postgres();
    let config = Config::default();
    let db = store.db();
    let at = engine(&db, &config, T0);
    let expired: Vec<String> = (0..3)
        .map(|n| {
            at.create(&format!("user-{n}"), Some(300), None)
                .unwrap()
                .token
                .expose()
        })
        .collect();
    let live = at.create("alice", None, None).unwrap().token.expose();
    let later = T0 + 300 * SEC;
    // A cleaner holds its batch's row locks in an open transaction.
    let cleaner = store.raw();
    cleaner.begin().unwrap();
    let locked = cleaner
        .execute(
            POSTGRES.delete_expired,
            &[Param::Int(later as i64), Param::Int(500)],
        )
        .unwrap();
    assert_eq!(locked, 3);
    let wait = std::time::Duration::from_secs(3);
    std::thread::scope(|scope| {
        let run = |work| on_own_connection(scope, &store, work);
        // Validates of live and of locked (expired) rows answer at once.
        let live = run(Box::new(|db: &Db| {
            engine(db, &config, later).validate(&live).is_ok()
        }));
        let locked_row = run(Box::new(|db: &Db| {
            matches!(
                engine(db, &config, later).validate(&expired[0]),
                Err(EngineError::Expired)
            )
        }));
        assert_eq!(live.recv_timeout(wait), Ok(true));
        assert_eq!(locked_row.recv_timeout(wait), Ok(true));
        // Control: a write to a locked row does wait for the cleaner, so the test would see a
        // blocked validate.
        let write = run(Box::new(|db: &Db| {
            engine(db, &config, later).invalidate(&expired[1]).is_err()
        }));
        let short = std::time::Duration::from_millis(500);
        assert!(write.recv_timeout(short).is_err(), "the write did not wait");
        cleaner.commit().unwrap();
        // Once the cleaner commits, the row is gone for the waiting writer.
        assert_eq!(write.recv_timeout(wait), Ok(true));
    });
}

type Work<'env> = Box<dyn FnOnce(&Db) -> bool + Send + 'env>;

/// Runs `work` on a connection of its own in `scope`; the receiver gets its answer.
fn on_own_connection<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    store: &'env Store,
    work: Work<'env>,
) -> std::sync::mpsc::Receiver<bool> {
    let (tx, rx) = std::sync::mpsc::channel();
    scope.spawn(move || {
        let db = store.db();
        let _ = tx.send(work(&db));
    });
    rx
}

// --- stolen-token detection and audit events (issue 13) -----------------------------------

fn a_rotated_token_presented_after_the_grace_revokes_the_session(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let issued = engine(&db, &config, T0)
        .create("alice", None, None)
        .unwrap();
    let old = issued.token.expose();
    let new = engine(&db, &config, T0 + SEC)
        .rotate(&old)
        .unwrap()
        .token
        .expose();
    let thief = engine(&db, &config, T0 + SEC + REUSE_GRACE_MS);
    assert!(matches!(
        thief.validate(&old),
        Err(EngineError::InvalidToken)
    ));
    assert_eq!(
        thief.events.take(),
        [Event::TokenReuse {
            session_id: issued.session.id.clone(),
            user_id: "alice".into(),
            rotated_at: T0 + SEC,
        }]
    );
    // Both tokens are dead: the session is gone.
    let after = engine(&db, &config, T0 + SEC + REUSE_GRACE_MS + 1);
    assert!(matches!(after.validate(&new), Err(EngineError::NotFound)));
    assert!(matches!(after.validate(&old), Err(EngineError::NotFound)));
    assert!(db.find(&issued.session.id).unwrap().is_none());
}

fn within_the_grace_the_old_token_is_refused_and_the_session_lives(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let issued = engine(&db, &config, T0)
        .create("alice", None, None)
        .unwrap();
    let old = issued.token.expose();
    let new = engine(&db, &config, T0)
        .rotate(&old)
        .unwrap()
        .token
        .expose();
    // The last millisecond of the grace.
    let late = engine(&db, &config, T0 + REUSE_GRACE_MS - 1);
    assert!(matches!(
        late.validate(&old),
        Err(EngineError::InvalidToken)
    ));
    assert_eq!(
        late.events.take(),
        [Event::ValidateFailed {
            kind: FailureKind::BadSecret,
            session_id: Some(issued.session.id.clone()),
            user_id: Some("alice".into()),
        }]
    );
    assert!(late.validate(&new).is_ok(), "the session lives on");
    // Positive control: one millisecond later the same request revokes it.
    let over = engine(&db, &config, T0 + REUSE_GRACE_MS);
    assert!(matches!(
        over.validate(&old),
        Err(EngineError::InvalidToken)
    ));
    assert!(matches!(over.validate(&new), Err(EngineError::NotFound)));
}

fn with_detection_off_an_old_token_is_only_refused(store: &Store) {
    let db = store.db();
    let config = config(&[("token_reuse_detection", "false")]);
    let issued = engine(&db, &config, T0)
        .create("alice", None, None)
        .unwrap();
    let old = issued.token.expose();
    let new = engine(&db, &config, T0)
        .rotate(&old)
        .unwrap()
        .token
        .expose();
    let later = engine(&db, &config, T0 + 10 * REUSE_GRACE_MS);
    assert!(matches!(
        later.validate(&old),
        Err(EngineError::InvalidToken)
    ));
    assert!(later.validate(&new).is_ok());
    assert!(
        !later
            .events
            .take()
            .iter()
            .any(|e| matches!(e, Event::TokenReuse { .. }))
    );
}

fn racing_requests_with_the_old_token_right_after_a_rotate_revoke_nothing(store: &Store) {
    let config = Config::default();
    let old = alice_token(store, &config);
    // One client: a rotate and seven requests still carrying the old token, all at once.
    let rotated: Vec<Option<String>> = from_one_start_line(
        8,
        || store.db(),
        |n, db| {
            let at = engine(&db, &config, T0 + SEC);
            if n == 0 {
                Some(at.rotate(&old).expect("the rotate").token.expose())
            } else {
                match at.validate(&old) {
                    Ok(_) | Err(EngineError::InvalidToken) => None,
                    Err(other) => panic!("{other:?}"),
                }
            }
        },
    );
    let new = rotated.into_iter().flatten().next().expect("a new token");
    let db = store.db();
    // Ten seconds on, the stragglers' old token is still only refused.
    let at = engine(&db, &config, T0 + 11 * SEC);
    assert!(matches!(at.validate(&old), Err(EngineError::InvalidToken)));
    assert!(at.validate(&new).is_ok());
}

/// Rotates `token` `times` times, a second apart from `T0 + SEC`, and returns every token of
/// the chain, the first one first.
fn rotation_chain(db: &Db, config: &Config, token: String, times: u64) -> Vec<String> {
    let mut chain = vec![token];
    for n in 1..=times {
        let last = chain.last().unwrap().clone();
        let at = engine(db, config, T0 + n * SEC);
        chain.push(at.rotate(&last).unwrap().token.expose());
    }
    chain
}

/// The probe's bypass (issue 27): a thief who rotated the stolen token twice made the owner's
/// token merely invalid, because only the secret the latest rotate replaced was remembered.
fn a_token_from_anywhere_in_the_rotation_chain_revokes_the_session(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let issued = engine(&db, &config, T0)
        .create("alice", None, None)
        .unwrap();
    let chain = rotation_chain(&db, &config, issued.token.expose(), 3);
    let late = T0 + 3 * SEC + REUSE_GRACE_MS;
    // Positive control first: the current token works, and a forged secret for the same
    // public id (which anyone may know) is refused without revoking anything.
    let forged = format!("{}.{}", issued.session.id, "A".repeat(43));
    let at = engine(&db, &config, late);
    assert!(at.validate(&chain[3]).is_ok());
    assert!(matches!(
        at.validate(&forged),
        Err(EngineError::InvalidToken)
    ));
    assert!(db.find(&issued.session.id).unwrap().is_some());
    at.events.take();
    // The first token, three rotates back: the session is revoked and the reuse audited.
    assert!(matches!(
        at.validate(&chain[0]),
        Err(EngineError::InvalidToken)
    ));
    assert_eq!(
        at.events.take(),
        [Event::TokenReuse {
            session_id: issued.session.id.clone(),
            user_id: "alice".into(),
            rotated_at: T0 + 3 * SEC,
        }]
    );
    assert!(db.find(&issued.session.id).unwrap().is_none());
    assert!(matches!(
        engine(&db, &config, late + 1).validate(&chain[3]),
        Err(EngineError::NotFound)
    ));
}

fn an_earlier_link_of_the_chain_revokes_even_within_the_grace(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let issued = engine(&db, &config, T0)
        .create("alice", None, None)
        .unwrap();
    let chain = rotation_chain(&db, &config, issued.token.expose(), 2);
    // A second after the last rotate: the token it retired is still within its grace (its
    // holder's requests may be in flight), so it is only refused...
    let at = engine(&db, &config, T0 + 3 * SEC);
    assert!(matches!(
        at.validate(&chain[1]),
        Err(EngineError::InvalidToken)
    ));
    assert!(at.validate(&chain[2]).is_ok(), "the session lives on");
    // ...but the one before it was rotated away by its successor, whose holder had moved on.
    assert!(matches!(
        at.validate(&chain[0]),
        Err(EngineError::InvalidToken)
    ));
    assert!(
        at.events
            .take()
            .iter()
            .any(|e| matches!(e, Event::TokenReuse { .. }))
    );
    assert!(db.find(&issued.session.id).unwrap().is_none());
}

fn the_chain_remembers_a_bounded_number_of_rotates(store: &Store) {
    use zoe_session::store::RetiredSecrets;
    let db = store.db();
    let config = Config::default();
    let issued = engine(&db, &config, T0)
        .create("alice", None, None)
        .unwrap();
    let rotates = RetiredSecrets::MAX as u64 + 1;
    let chain = rotation_chain(&db, &config, issued.token.expose(), rotates);
    let row = db.find(&issued.session.id).unwrap().unwrap();
    assert_eq!(row.retired_secrets.hashes().count(), RetiredSecrets::MAX);
    let late = engine(&db, &config, T0 + (rotates + 1) * SEC + REUSE_GRACE_MS);
    // The first token is beyond the bound: refused, nothing revoked.
    assert!(matches!(
        late.validate(&chain[0]),
        Err(EngineError::InvalidToken)
    ));
    assert!(db.find(&issued.session.id).unwrap().is_some());
    // Positive control: the oldest one remembered still revokes.
    assert!(matches!(
        late.validate(&chain[1]),
        Err(EngineError::InvalidToken)
    ));
    assert!(db.find(&issued.session.id).unwrap().is_none());
}

fn an_older_schema_gains_the_rotation_columns(store: &Store) {
    // A database at version 1 (before the rotation columns), with a session in it.
    let config = Config::default();
    let token = alice_token(store, &config);
    let raw = store.raw();
    for statement in [
        "ALTER TABLE sessions DROP COLUMN previous_secret_hash",
        "ALTER TABLE sessions DROP COLUMN rotated_at",
        "ALTER TABLE sessions DROP COLUMN client_addr",
        "ALTER TABLE sessions DROP COLUMN user_agent",
        "UPDATE zoe_schema SET version = 1",
    ] {
        raw.execute(statement, &[]).expect(statement);
    }
    // A deferred handle's first read fails on the missing columns, migrates and answers.
    let db = Db::open_deferred(store.raw());
    assert!(engine(&db, &config, T0 + SEC).validate(&token).is_ok());
    assert_eq!(store.count("SELECT max(version) FROM zoe_schema"), 3);
    let new = engine(&db, &config, T0 + SEC).rotate(&token).unwrap();
    assert!(
        engine(&db, &config, T0 + SEC)
            .validate(&new.token.expose())
            .is_ok()
    );
}

fn a_session_s_life_is_told_by_its_events_in_order(store: &Store) {
    let db = store.db();
    let config = config(&[("max_per_user", "1")]);
    let at = engine(&db, &config, T0);
    let first = at.create("alice", None, None).unwrap();
    let second = at.create("alice", None, None).unwrap();
    let token = second.token.expose();
    let wrong = format!("{}.{}", second.session.id, "A".repeat(43));
    assert!(at.validate(&wrong).is_err());
    assert!(at.validate("garbage").is_err());
    let rotated = at.rotate(&token).unwrap();
    at.extend(&rotated.token.expose(), 600).unwrap();
    at.invalidate(&rotated.token.expose()).unwrap();
    let (id, first_id) = (second.session.id.clone(), first.session.id.clone());
    let alice = || "alice".to_owned();
    let events = at.events.take();
    let names: Vec<&str> = events.iter().map(Event::name).collect();
    assert_eq!(
        names,
        [
            "session.created",
            "session.evicted",
            "session.created",
            "session.validate_failed",
            "session.validate_failed",
            "session.rotated",
            "session.extended",
            "session.invalidated",
        ],
        "{events:?}"
    );
    assert_eq!(
        events[1],
        Event::Evicted {
            session_id: first_id,
            user_id: alice()
        }
    );
    assert_eq!(
        events[3],
        Event::ValidateFailed {
            kind: FailureKind::BadSecret,
            session_id: Some(id.clone()),
            user_id: Some(alice())
        }
    );
    assert!(matches!(
        events[4],
        Event::ValidateFailed {
            kind: FailureKind::Malformed,
            session_id: None,
            ..
        }
    ));
    assert_eq!(
        events[7],
        Event::Invalidated {
            scope: Scope::One,
            count: 1,
            session_id: Some(id),
            user_id: None
        }
    );
    // No event carries a secret: the fields are public ids and times only.
    let text = format!("{events:?}");
    assert!(
        !text.contains(&token) && !text.contains(&token[37..]),
        "{text}"
    );
}

// --- devices (issue 13) -------------------------------------------------------------------

fn with_device<'a>(
    db: &'a Db,
    config: &'a Config,
    now: u64,
    addr: &str,
    agent: &str,
) -> Engine<'a> {
    let mut engine = engine(db, config, now);
    engine.device = Some(Device::new(Some(addr), Some(agent)));
    engine
}

fn a_session_records_its_device_at_create_and_at_activity_writes_only(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let laptop = with_device(&db, &config, T0, "192.0.2.1:5000", "Firefox/140");
    let token = laptop.create("alice", None, None).unwrap().token.expose();
    let shown = |at: u64| {
        let list = engine(&db, &config, at).list_user("alice").unwrap();
        (list[0].client_addr.clone(), list[0].user_agent.clone())
    };
    assert_eq!(
        shown(T0),
        (Some("192.0.2.1:5000".into()), Some("Firefox/140".into()))
    );
    // A validate from a phone inside the activity window writes nothing: no device change.
    let phone = |at| with_device(&db, &config, at, "198.51.100.9:443", "Mobile Safari");
    phone(T0 + SEC).validate(&token).unwrap();
    assert_eq!(shown(T0 + SEC).0.as_deref(), Some("192.0.2.1:5000"));
    // Once the write is due, the same validate records the phone.
    phone(T0 + ACTIVITY_WRITE_INTERVAL_MS + SEC)
        .validate(&token)
        .unwrap();
    assert_eq!(
        shown(T0 + ACTIVITY_WRITE_INTERVAL_MS + SEC),
        (
            Some("198.51.100.9:443".into()),
            Some("Mobile Safari".into())
        )
    );
    // A caller with no device (the in-process API) leaves it as it is.
    engine(&db, &config, T0 + 3 * ACTIVITY_WRITE_INTERVAL_MS)
        .touch(&token)
        .unwrap();
    assert_eq!(
        shown(T0 + 3 * ACTIVITY_WRITE_INTERVAL_MS).1.as_deref(),
        Some("Mobile Safari")
    );
    // Lengths are capped.
    let long = "x".repeat(1000);
    let capped = with_device(&db, &config, T0, &long, &long)
        .create("bob", None, None)
        .unwrap()
        .session;
    assert_eq!(
        capped.client_addr.map(|a| a.len()),
        Some(Device::MAX_ADDR_CHARS)
    );
    assert_eq!(
        capped.user_agent.map(|a| a.len()),
        Some(Device::MAX_USER_AGENT_CHARS)
    );
}

fn with_record_devices_off_no_device_is_kept(store: &Store) {
    let db = store.db();
    let off = config(&[("record_devices", "false")]);
    let created = with_device(&db, &off, T0, "192.0.2.1:5000", "Firefox/140")
        .create("alice", None, None)
        .unwrap();
    assert_eq!(
        (created.session.client_addr, created.session.user_agent),
        (None, None)
    );
    let token = created.token.expose();
    with_device(
        &db,
        &off,
        T0 + 2 * ACTIVITY_WRITE_INTERVAL_MS,
        "192.0.2.2:1",
        "Chrome",
    )
    .validate(&token)
    .unwrap();
    let row = db.find(&created.session.id).unwrap().unwrap();
    assert_eq!((row.client_addr, row.user_agent), (None, None));
    // Positive control: the same calls with recording on keep the device.
    let on = Config::default();
    let kept = with_device(&db, &on, T0, "192.0.2.1:5000", "Firefox/140")
        .create("carol", None, None)
        .unwrap();
    assert!(kept.session.client_addr.is_some());
}
