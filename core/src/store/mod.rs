//! Storage of sessions behind a small seam: [`Db`] holds the store's operations, written
//! once; an [`Executor`] runs them on one backend, in that backend's [`Dialect`] (module
//! [`sql`] holds every statement of every dialect). Backends:
//!
//! - `spin:sqlite/sqlite@3.0.0`, database `default` (inside the component, the default);
//! - `spin:postgres/postgres@4.0.0` (inside the component, when `database_url` is set);
//! - rusqlite natively (feature `native-sqlite`) and the `postgres` crate natively (feature
//!   `native-postgres`), for the engine's native tests and benchmarks;
//! - a key-value store ([`KeyValue`]: Spin's `key-value`, on its local file, Redis or
//!   Akamai's store), on the layout of module [`kv`] instead of SQL
//!   ([`Db::open_key_value`]); [`kv::memory`] is one in memory for native tests.
//!
//! Every statement is parameterised. Write paths that must be atomic run inside
//! [`Db::transaction`] or [`Db::user_transaction`], or are one statement where the dialect
//! makes one statement enough ([`Dialect::single_statement_limit`]).

mod error;
pub mod executor;
pub mod key_value;
pub mod kv;
mod rows;
mod schema;
pub mod sql;

#[cfg(all(feature = "native-postgres", not(target_arch = "wasm32")))]
pub mod native_postgres;
#[cfg(all(feature = "native-sqlite", not(target_arch = "wasm32")))]
pub mod native_sqlite;

pub use error::StoreError;
pub use executor::{Executor, Param, Row, Value};
pub use key_value::KeyValue;
pub use rows::{Device, RetiredSecrets, SessionRow, StoreStats, UserRow};
pub use sql::Dialect;
use std::cell::Cell;

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A connection to the session store, and whether its schema is known to be current.
#[derive(Debug)]
pub struct Db {
    backend: Backend,
    // Set when the connection should not serve another call: a transaction may not have
    // ended (its ROLLBACK failed) or the database was unreachable. Whoever keeps this handle
    // between calls opens a fresh one instead, which is how the service recovers by itself.
    unsettled: Cell<bool>,
    // Whether the migrations have been checked (and applied) on this handle.
    migrated: Cell<bool>,
}

/// What a [`Db`] runs on: SQL through an executor, or the key-value layout.
#[derive(Debug)]
enum Backend {
    Sql(Box<dyn Executor>),
    KeyValue(KvStore),
}

/// What a create on a key-value store did: the session it evicted, if any, and the last
/// cleanup time it read.
pub use kv::KvCreated;
use kv::KvStore;

impl Db {
    /// Takes over `exec` and applies pending migrations at once.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when a statement or migration fails, or the database's schema is newer
    /// than this build ([`StoreError::FutureSchema`]).
    pub fn open(exec: Box<dyn Executor>) -> Result<Self> {
        let db = Self::open_deferred(exec);
        db.check_schema()?;
        Ok(db)
    }

    /// Takes over `exec` without running a statement: the migrations are checked before the
    /// first write, or when a read fails (a fresh database has no tables yet), whichever
    /// comes first. A fresh instance that only reads, as a validate does, so pays for one
    /// statement instead of a version check besides (issue 18).
    ///
    /// This relies on a rule for every future migration: an older schema either fails the
    /// statements of this build (a missing table or column, which triggers the migration and
    /// a retry) or answers them correctly. A newer schema than this build is refused on the
    /// first write, as [`Db::open`] refuses it at once.
    pub fn open_deferred(exec: Box<dyn Executor>) -> Self {
        Self {
            backend: Backend::Sql(exec),
            unsettled: Cell::new(false),
            migrated: Cell::new(false),
        }
    }

    /// Takes over a key-value store, for users of at most `max_per_user` sessions (the
    /// setting in force; see [`KvStore::new`]). Nothing is run: a key-value store has no
    /// schema, and the first call reads what it needs.
    ///
    /// # Errors
    ///
    /// [`StoreError::KeyValue`] when `max_per_user` is over [`kv::MAX_SLOTS`].
    pub fn open_key_value(kv: Box<dyn KeyValue>, max_per_user: u32) -> Result<Self> {
        Ok(Self {
            backend: Backend::KeyValue(KvStore::new(kv, max_per_user)?),
            unsettled: Cell::new(false),
            // Nothing to migrate.
            migrated: Cell::new(true),
        })
    }

    /// The key-value layout this handle runs on, if it does.
    fn key_value(&self) -> Option<&KvStore> {
        match &self.backend {
            Backend::KeyValue(kv) => Some(kv),
            Backend::Sql(_) => None,
        }
    }

    /// The executor this handle runs SQL on.
    fn exec(&self) -> Result<&dyn Executor> {
        match &self.backend {
            Backend::Sql(exec) => Ok(exec.as_ref()),
            Backend::KeyValue(_) => Err(StoreError::KeyValue(
                "a SQL statement was sent to a key-value store".into(),
            )),
        }
    }

    /// Whether this handle runs on a key-value store.
    pub fn is_key_value(&self) -> bool {
        self.key_value().is_some()
    }

    /// Applies pending migrations unless this handle already has.
    ///
    /// # Errors
    ///
    /// As [`Db::open`].
    pub fn check_schema(&self) -> Result<()> {
        if self.migrated.replace(true) {
            return Ok(());
        }
        self.migrate().inspect_err(|_| self.migrated.set(false))
    }

    /// The SQL of this handle's backend; `None` on a key-value store.
    pub fn dialect(&self) -> Option<&'static Dialect> {
        match &self.backend {
            Backend::Sql(exec) => Some(exec.dialect()),
            Backend::KeyValue(_) => None,
        }
    }

    /// The SQL dialect, for the statements only a SQL handle runs.
    fn sql(&self) -> Result<&'static Dialect> {
        Ok(self.exec()?.dialect())
    }

    /// Runs a statement that returns rows. A failure before the schema was checked may mean
    /// there is no schema yet: migrate, then try once more.
    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        match self.watch(self.exec()?.query(sql, params)) {
            Err(err) if !self.migrated.get() && !matches!(err, StoreError::Unavailable(_)) => {
                self.check_schema()?;
                self.watch(self.exec()?.query(sql, params))
            }
            result => result,
        }
    }

    /// Runs a statement that returns no rows and reports how many rows it changed; the
    /// schema is brought up to date before the first.
    fn change(&self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.check_schema()?;
        self.watch(self.exec()?.execute(sql, params))
    }

    /// Runs a statement that writes and returns rows (`… RETURNING`); the schema is brought
    /// up to date before the first, as for [`Db::change`].
    fn write_query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.check_schema()?;
        self.watch(self.exec()?.query(sql, params))
    }

    fn watch<T>(&self, result: Result<T>) -> Result<T> {
        if matches!(result, Err(StoreError::Unavailable(_))) {
            self.unsettled.set(true);
        }
        result
    }

    /// Runs `work` in a write transaction, committing on `Ok` and rolling back on `Err`.
    ///
    /// # Errors
    ///
    /// Whatever `work` returns, or a [`StoreError`] from `BEGIN`/`COMMIT`.
    pub fn transaction<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.check_schema()?;
        self.watch(self.exec()?.begin())?;
        match work(self) {
            Ok(value) => match self.watch(self.exec()?.commit()) {
                Ok(()) => Ok(value),
                Err(err) => {
                    self.rollback();
                    Err(err.into())
                }
            },
            Err(err) => {
                self.rollback();
                Err(err)
            }
        }
    }

    /// Like [`Db::transaction`], for work on one user's sessions that must not interleave
    /// with another such transaction of the same user, on any replica (the per-user limit).
    ///
    /// # Errors
    ///
    /// As [`Db::transaction`], or a [`StoreError`] from taking the user's lock.
    pub fn user_transaction<T, E: From<StoreError>>(
        &self,
        user_id: &str,
        work: impl FnOnce(&Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transaction(|db| {
            if let Some(lock) = db.sql()?.lock_user {
                db.change(lock, &[Param::Text(user_id)])?;
            }
            work(db)
        })
    }

    fn rollback(&self) {
        // A failed rollback usually means the backend already rolled back (COMMIT or a
        // statement failed fatally); if it did not, the handle must not be used for another
        // call.
        if self.exec().and_then(|exec| exec.rollback()).is_err() {
            self.unsettled.set(true);
        }
    }

    /// Whether this handle should be replaced by a fresh one before the next call: a
    /// transaction may still be open, or the database was unreachable.
    pub fn is_unsettled(&self) -> bool {
        self.unsettled.get()
    }

    pub fn find(&self, id: &str) -> Result<Option<SessionRow>> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.find(id));
        }
        let rows = self.query(self.sql()?.find, &[Param::Text(id)])?;
        rows.into_iter().next().map(session_row).transpose()
    }

    /// Inserts `row` whatever its user holds, for a caller that holds the user's lock and has
    /// made room; returns the last cleanup time as [`Db::insert_within_limit`] does.
    pub fn insert(&self, row: &SessionRow) -> Result<u64> {
        self.insert_within_limit(row, row.created_at, u32::MAX)?
            .ok_or(StoreError::Shape(
                "an insert without a limit inserted nothing",
            ))
    }

    /// Inserts `row` provided its user holds fewer than `limit` sessions unexpired at `now`,
    /// in one statement. `Some(last cleanup time)` (0 for never) when it inserted, so a create
    /// learns whether a cleanup is due without another statement; `None` when the user was
    /// full. Atomic on its own only under [`Dialect::single_statement_limit`]; otherwise run
    /// it inside [`Db::user_transaction`].
    pub fn insert_within_limit(
        &self,
        row: &SessionRow,
        now: u64,
        limit: u32,
    ) -> Result<Option<u64>> {
        let rows = self.write_query(
            self.sql()?.insert_within_limit,
            &[
                Param::Text(&row.id),
                Param::Bytes(&row.secret_hash),
                Param::Text(&row.user_id),
                int(row.created_at),
                int(row.last_activity),
                int(row.expires_at),
                int(row.absolute_expires_at),
                Param::Int(i64::from(row.idle_timeout)),
                Param::Text(&row.metadata),
                opt_text(row.client_addr.as_deref()),
                opt_text(row.user_agent.as_deref()),
                int(now),
                Param::Int(i64::from(limit)),
            ],
        )?;
        rows.first()
            .map(|row| Ok(row.opt_uint(0)?.unwrap_or(0)))
            .transpose()
    }

    /// Inserts `row` on a key-value store within its user's `limit` (evicting the least
    /// recently active session under `evict`, else `None` when the user is full): the whole
    /// create on that backend, which has no transaction to run [`Db::insert_within_limit`]
    /// in. See [`KvStore::insert`] for what holds under concurrent creates.
    ///
    /// # Errors
    ///
    /// [`StoreError::KeyValue`] on a SQL handle, which creates through
    /// [`Db::insert_within_limit`].
    pub fn insert_key_value(
        &self,
        row: &SessionRow,
        now: u64,
        limit: u32,
        evict: bool,
    ) -> Result<Option<KvCreated>> {
        match self.key_value() {
            Some(kv) => self.watch(kv.insert(row, now, limit, evict)),
            None => Err(StoreError::KeyValue(
                "a key-value create was sent to a SQL database".into(),
            )),
        }
    }

    /// Records activity on `row` (as the caller read it), but only if the session still has
    /// the secret the caller verified: a concurrent rotate or delete wins, and nothing
    /// deleted comes back. The device, when given, replaces the recorded one (a part left out
    /// keeps its old value). On a key-value store the write is blind and the guarantees are
    /// those of [`kv`]'s documentation.
    pub fn record_activity(
        &self,
        row: &SessionRow,
        secret_hash: &[u8],
        now: u64,
        expires_at: u64,
        device: Option<&Device>,
    ) -> Result<bool> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.record_activity(row, secret_hash, now, expires_at, device));
        }
        let changed = self.change(
            self.sql()?.record_activity,
            &[
                Param::Text(&row.id),
                Param::Bytes(secret_hash),
                int(now),
                int(expires_at),
                opt_text(device.and_then(|d| d.client_addr.as_deref())),
                opt_text(device.and_then(|d| d.user_agent.as_deref())),
            ],
        )?;
        Ok(changed == 1)
    }

    /// Sets a new expiry under the same guard as [`Db::record_activity`].
    pub fn set_expiry(
        &self,
        row: &SessionRow,
        secret_hash: &[u8],
        expires_at: u64,
    ) -> Result<bool> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.set_expiry(row, secret_hash, expires_at));
        }
        let changed = self.change(
            self.sql()?.set_expiry,
            &[
                Param::Text(&row.id),
                Param::Bytes(secret_hash),
                int(expires_at),
            ],
        )?;
        Ok(changed == 1)
    }

    /// Swaps the secret if it is still `old`, so of two concurrent rotations only one wins,
    /// and stores `retired` (the chain with `old` first); a rotate is activity, so the device
    /// is recorded as by [`Db::record_activity`].
    pub fn replace_secret(
        &self,
        row: &SessionRow,
        (old, new): (&[u8], &[u8]),
        retired: &RetiredSecrets,
        now: u64,
        expires_at: u64,
        device: Option<&Device>,
    ) -> Result<bool> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.replace_secret(
                row,
                (old, new),
                retired,
                now,
                expires_at,
                device,
            ));
        }
        let changed = self.change(
            self.sql()?.replace_secret,
            &[
                Param::Text(&row.id),
                Param::Bytes(old),
                Param::Bytes(new),
                int(now),
                int(expires_at),
                opt_text(device.and_then(|d| d.client_addr.as_deref())),
                opt_text(device.and_then(|d| d.user_agent.as_deref())),
                retired.stored().map_or(Param::Null, Param::Bytes),
            ],
        )?;
        Ok(changed == 1)
    }

    /// Deletes the session one of whose rotated-away secrets was presented again, provided
    /// its chain is still `retired` (a rotate since moved on, and the caller decides anew).
    pub fn delete_reused(&self, id: &str, retired: &RetiredSecrets) -> Result<bool> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.delete_reused(id, retired));
        }
        let Some(chain) = retired.stored() else {
            return Ok(false);
        };
        let changed = self.change(
            self.sql()?.delete_reused,
            &[Param::Text(id), Param::Bytes(chain)],
        )?;
        Ok(changed == 1)
    }

    pub fn delete(&self, id: &str) -> Result<bool> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.delete(id));
        }
        Ok(self.change(self.sql()?.delete, &[Param::Text(id)])? == 1)
    }

    /// Deletes all of a user's rows (expired ones too) except `keep`.
    pub fn delete_user(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.delete_user(user_id, keep));
        }
        self.change(
            self.sql()?.delete_user,
            &[Param::Text(user_id), keep.map_or(Param::Null, Param::Text)],
        )
    }

    /// Deletes every row, expired or not.
    pub fn delete_all(&self) -> Result<u64> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.delete_all());
        }
        self.change(self.sql()?.delete_all, &[])
    }

    /// The user's unexpired sessions, most recently active first.
    pub fn list_user(&self, user_id: &str, now: u64) -> Result<Vec<SessionRow>> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.list_user(user_id, now));
        }
        self.query(self.sql()?.list_user, &[Param::Text(user_id), int(now)])?
            .into_iter()
            .map(session_row)
            .collect()
    }

    /// Ids of the user's unexpired sessions, least recently active first.
    pub fn user_ids_by_age(&self, user_id: &str, now: u64) -> Result<Vec<String>> {
        self.query(
            self.sql()?.user_ids_by_age,
            &[Param::Text(user_id), int(now)],
        )?
        .into_iter()
        .map(|row| row.text(0).map(str::to_owned))
        .collect()
    }

    /// Deletes at most `limit` expired rows in one statement. On a key-value store, where
    /// finding them means reading sessions one by one, `scan` bounds the sessions read (a SQL
    /// `DELETE … LIMIT` finds them through its index, and ignores it).
    pub fn delete_expired(&self, now: u64, limit: u32, scan: Option<u32>) -> Result<u64> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.delete_expired(now, limit, scan));
        }
        self.change(
            self.sql()?.delete_expired,
            &[int(now), Param::Int(i64::from(limit))],
        )
    }

    pub fn stats(&self, now: u64) -> Result<StoreStats> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.stats(now));
        }
        let rows = self.query(self.sql()?.stats, &[int(now)])?;
        let row = rows
            .first()
            .ok_or(StoreError::Shape("stats returned no row"))?;
        Ok(StoreStats {
            active_sessions: row.uint(0)?,
            active_users: row.uint(1)?,
            expired: row.uint(2)?,
            last_cleanup_at: row.opt_uint(3)?.unwrap_or(0),
        })
    }

    /// Users with unexpired sessions whose id is in `[from, below)` and is not `except`, at
    /// most `limit`, in byte order of the id.
    pub fn users_in_range(
        &self,
        from: &str,
        below: &str,
        except: &str,
        now: u64,
        limit: u32,
    ) -> Result<Vec<UserRow>> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.users_in_range(from, below, except, now, limit));
        }
        self.query(
            self.sql()?.users_in_range,
            &[
                Param::Text(from),
                Param::Text(below),
                Param::Text(except),
                int(now),
                Param::Int(i64::from(limit)),
            ],
        )?
        .into_iter()
        .map(|row| {
            Ok(UserRow {
                user_id: row.text(0)?.to_owned(),
                sessions: row.uint(1)?,
                last_activity: row.uint(2)?,
            })
        })
        .collect()
    }

    /// Claims the cleanup slot if `interval_ms` has passed since the last cleanup: only one
    /// of several concurrent callers gets `true`.
    pub fn claim_cleanup(&self, now: u64, interval_ms: u64) -> Result<bool> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.claim_cleanup(now, interval_ms));
        }
        let changed = self.change(
            self.sql()?.claim_cleanup,
            &[int(now), int(now.saturating_sub(interval_ms))],
        )?;
        Ok(changed == 1)
    }

    /// Records that a cleanup ran at `now`.
    pub fn mark_cleanup(&self, now: u64) -> Result<()> {
        if let Some(kv) = self.key_value() {
            return self.watch(kv.mark_cleanup(now));
        }
        self.change(self.sql()?.mark_cleanup, &[int(now)])?;
        Ok(())
    }
}

fn session_row(row: Row) -> Result<SessionRow> {
    Ok(SessionRow {
        id: row.text(0)?.to_owned(),
        secret_hash: row.blob(1)?.to_vec(),
        user_id: row.text(2)?.to_owned(),
        created_at: row.uint(3)?,
        last_activity: row.uint(4)?,
        expires_at: row.uint(5)?,
        absolute_expires_at: row.uint(6)?,
        idle_timeout: u32::try_from(row.uint(7)?)
            .map_err(|_| StoreError::Shape("idle_timeout out of range"))?,
        metadata: row.text(8)?.to_owned(),
        retired_secrets: RetiredSecrets::from_stored(row.opt_blob(9)?),
        rotated_at: row.uint(10)?,
        client_addr: row.opt_text(11)?.map(str::to_owned),
        user_agent: row.opt_text(12)?.map(str::to_owned),
    })
}

/// An optional text as a parameter: null when absent.
fn opt_text(value: Option<&str>) -> Param<'_> {
    value.map_or(Param::Null, Param::Text)
}

/// Times are far below `i64::MAX` milliseconds; saturate rather than wrap if one is not.
fn int(value: u64) -> Param<'static> {
    Param::Int(i64::try_from(value).unwrap_or(i64::MAX))
}
