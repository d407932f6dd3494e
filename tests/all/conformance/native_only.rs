//! The native store's own tests: what only the engine over a [`Db`] shows (the SQL's shape,
//! migrations and the schema tables, statement counts, the `Db` guards against stale reads,
//! trusted ids and the device of activity writes, which the WIT cannot pass, a cleanup that
//! fails after a create commits), and what only one of rusqlite and PostgreSQL has. The
//! session rules themselves are in the conformance suite ([`super::rules`]), on every backend.
//!
//! A case for both native backends is a function taking a [`Store`]; `native!` makes one
//! `#[test]` per backend, named `native_only::sqlite::<case>` and `native_only::postgres::<case>`.

use super::native::{Store, from_one_start_line};
use std::cell::Cell;
use std::rc::Rc;
use zoe_session::config::Config;
use zoe_session::session::engine::{Engine, EngineError, SessionRef};
use zoe_session::session::policy::ACTIVITY_WRITE_INTERVAL_MS;
use zoe_session::session::token::Token;
use zoe_session::store::native_postgres::NativePostgres;
use zoe_session::store::sql::{Dialect, POSTGRES, SQLITE};
use zoe_session::store::{Db, Device, Executor, Param, Row, StoreError};

/// 2027-01-15T08:00:00Z, as in the component tests.
const T0: u64 = crate::support::START_MS;
const SEC: u64 = 1000;

fn engine<'a>(db: &'a Db, config: &'a Config, now: u64) -> Engine<'a> {
    Engine::new(config, db, now)
}

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_pairs(pairs)
}

macro_rules! native {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $case() { super::$case(&super::Store::sqlite()); } )*
        }
        mod postgres {
            $( #[test] fn $case() { super::$case(&super::Store::postgres()); } )*
        }
    };
}

native!(
    the_store_keeps_only_a_hash_of_the_secret,
    a_rotate_from_a_stale_read_loses,
    a_public_id_acts_only_when_explicitly_trusted,
    of_two_cleanup_claims_at_one_time_one_wins,
    a_failed_cleanup_leaves_the_committed_create_standing,
    migrations_are_idempotent,
    a_newer_schema_is_refused,
    a_deferred_handle_validates_in_one_statement,
    a_create_below_the_limit_is_one_statement_on_sqlite_and_four_on_postgres,
    a_deferred_handle_migrates_a_fresh_database_when_first_needed,
    a_deferred_handle_refuses_a_newer_schema_on_its_first_write,
    replicas_starting_together_migrate_once,
    an_older_schema_gains_the_rotation_columns,
    a_session_records_its_device_at_create_and_at_activity_writes_only,
);

// --- the cases -----------------------------------------------------------------------------

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
            &stale,
            (&stale.secret_hash, &[7; 32]),
            &stale.retired_secrets.retire(&stale.secret_hash),
            T0,
            T0,
            None
        )
        .unwrap()
    );
    assert!(
        !db.record_activity(&stale, &stale.secret_hash, T0, T0, None)
            .unwrap()
    );
    // The guard does let the current secret through.
    let current = db.find(id).unwrap().unwrap();
    assert!(
        db.record_activity(
            &current,
            &current.secret_hash,
            T0 + 1,
            current.expires_at,
            None
        )
        .unwrap()
    );
}

fn a_public_id_acts_only_when_explicitly_trusted(store: &Store) {
    let db = store.db();
    let config = Config::default();
    let at = engine(&db, &config, T0);
    let issued = at.create("alice", None, None).unwrap();
    let id = issued.session.id.clone();
    // The WIT has no trusted id: that a bare id is refused where a token goes is a rule of the
    // suite (`a_bare_public_id_is_refused_where_a_token_goes`). The HTTP layer, having
    // decided the caller may act on the session, passes the id explicitly trusted: it acts.
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

fn of_two_cleanup_claims_at_one_time_one_wins(store: &Store) {
    let db = store.db();
    assert!(db.claim_cleanup(T0, 3600 * SEC).unwrap());
    assert!(!db.claim_cleanup(T0, 3600 * SEC).unwrap());
    // Positive control: an interval later the next claim wins.
    assert!(db.claim_cleanup(T0 + 3600 * SEC, 3600 * SEC).unwrap());
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
    assert_eq!(store.count("SELECT max(version) FROM zoe_schema"), 4);
    assert_eq!(store.count("SELECT count(*) FROM zoe_state"), 1);
}

fn a_newer_schema_is_refused(store: &Store) {
    drop(store.db());
    store
        .raw()
        .execute("UPDATE zoe_schema SET version = version + 1", &[])
        .unwrap();
    match Db::open(store.raw()) {
        Err(StoreError::FutureSchema { found: 5, known: 4 }) => {}
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
    assert_eq!(store.count("SELECT max(version) FROM zoe_schema"), 4);
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
        Err(EngineError::Storage(StoreError::FutureSchema { found: 5, known: 4 })) => {}
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
    assert_eq!(store.count("SELECT max(version) FROM zoe_schema"), 4);
    let new = engine(&db, &config, T0 + SEC).rotate(&token).unwrap();
    assert!(
        engine(&db, &config, T0 + SEC)
            .validate(&new.token.expose())
            .is_ok()
    );
}

// --- devices (issue 13): activity writes, which the WIT cannot attribute to a device ---------

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
    let store = Store::sqlite();
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
    let store = Store::postgres();
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
    assert!(NativePostgres::connect(&crate::support::fresh_database()).is_ok());
}

#[test]
fn cleanup_never_blocks_a_validate_on_postgres() {
    let store = Store::postgres();
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
