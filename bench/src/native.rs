//! The native baseline: zoe-session's own engine and store, compiled natively on the
//! `native-sqlite` / `native-postgres` executors — the same code as the component with no
//! Wasm, no component-model copies and no `spin:*` imports in between. This is the physical
//! limit of the design; the component's figures are ratios against it.
//!
//! Seeding large tables is a fixture, not a measurement, so [`seed`] writes rows straight
//! into the schema the migrations made, with tokens made by the engine's own [`Token`].

use rusqlite::{Connection, params};
use std::path::Path;
use std::time::Duration;
use zoe_session::config::Config;
use zoe_session::session::engine::{Engine, EngineError, Issued, Session};
use zoe_session::session::token::Token;
use zoe_session::store::Db;
use zoe_session::store::native_postgres::NativePostgres;
use zoe_session::store::native_sqlite::NativeSqlite;

/// The host's busy timeout (`host/src/sqlite.rs`), for the seeding connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The component's defaults for what seeded rows carry.
const DEFAULT_TIMEOUT_S: u64 = 3_600;
const ABSOLUTE_LIFETIME_S: u64 = 604_800;

/// The engine on one native connection, with the component's default settings except
/// `max_per_user`.
#[derive(Debug)]
pub struct Native {
    db: Db,
    config: Config,
}

impl Native {
    /// The engine on the SQLite file at `path` (created and migrated if needed).
    ///
    /// # Errors
    ///
    /// The store's, when the file cannot be opened or migrated.
    pub fn sqlite(path: &Path, max_per_user: u32) -> Result<Self, EngineError> {
        Self::on(Db::open(Box::new(NativeSqlite::open(path)?))?, max_per_user)
    }

    /// The engine on the PostgreSQL database at `url`. The `postgres` crate runs its own
    /// runtime, so call this and the operations off any tokio worker thread.
    ///
    /// # Errors
    ///
    /// The store's, when the server cannot be reached or the schema migrated.
    pub fn postgres(url: &str, max_per_user: u32) -> Result<Self, EngineError> {
        Self::on(
            Db::open(Box::new(NativePostgres::connect(url)?))?,
            max_per_user,
        )
    }

    fn on(db: Db, max_per_user: u32) -> Result<Self, EngineError> {
        let config = Config::from_pairs(&[("max_per_user", &max_per_user.to_string())]);
        Ok(Self { db, config })
    }

    /// The engine at `now`.
    pub fn at(&self, now: u64) -> Engine<'_> {
        Engine::new(&self.config, &self.db, now)
    }

    /// `Engine::validate` (auto-update on, so the activity write is throttled as in the
    /// component).
    ///
    /// # Errors
    ///
    /// The engine's.
    pub fn validate(&self, token: &str, now: u64) -> Result<Session, EngineError> {
        self.at(now).validate(token)
    }

    /// `Engine::create` with the default timeout; returns the token.
    ///
    /// # Errors
    ///
    /// The engine's.
    pub fn create(&self, user_id: &str, now: u64) -> Result<String, EngineError> {
        let Issued { token, .. } = self.at(now).create(user_id, None, None)?;
        Ok(token.expose())
    }
}

/// Opens `path` for seeding, the way the host opens a file database.
///
/// # Errors
///
/// SQLite's, when the file cannot be opened.
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Milliseconds since the epoch, as the component reads its clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Inserts `count` sessions in one transaction, straight into the component's schema; returns
/// the tokens of every `keep_every`-th row so they can be validated later.
///
/// `expires_at` is relative to `now`; a negative offset seeds expired rows for cleanup.
///
/// # Errors
///
/// SQLite's, or the OS's when it has no randomness.
pub fn seed(
    conn: &Connection,
    start: u64,
    count: u64,
    now: u64,
    expires_in_ms: i64,
    keep_every: u64,
) -> anyhow::Result<Vec<String>> {
    let mut kept = Vec::new();
    let expires_at = now.saturating_add_signed(expires_in_ms);
    conn.execute_batch("BEGIN IMMEDIATE")?;
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO sessions (id, secret_hash, user_id, created_at, last_activity, \
             expires_at, absolute_expires_at, idle_timeout, metadata) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for n in start..start + count {
            let token = Token::generate().map_err(|err| anyhow::anyhow!("{err}"))?;
            // About three sessions per user, like a user with a laptop, a phone and an agent.
            let user = format!("user-{}", n / 3);
            insert.execute(params![
                token.id,
                token.secret_hash(),
                user,
                now,
                now,
                expires_at,
                now + ABSOLUTE_LIFETIME_S * 1000,
                DEFAULT_TIMEOUT_S,
                "{}"
            ])?;
            if n % keep_every == 0 {
                kept.push(token.expose());
            }
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(kept)
}
