//! The native baseline: the engine's validate, create, extend and list-user written directly
//! on rusqlite, with the component's exact SQL (`src/store/mod.rs`), the same token format and
//! checks (`src/session/token.rs`) and the host's connection settings (`host/src/sqlite.rs`).
//!
//! This is the physical limit of the design: the same work with no Wasm, no component-model
//! copies and no `spin:sqlite` indirection. It keeps one open connection with cached prepared
//! statements, which is what the host's pool gives the component at best.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The host's busy timeout (`host/src/sqlite.rs`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The component's activity write throttle (`policy::ACTIVITY_WRITE_INTERVAL_MS`).
const ACTIVITY_WRITE_INTERVAL_MS: u64 = 15_000;
/// Component defaults for the settings these operations read.
const DEFAULT_TIMEOUT_S: u64 = 3_600;
const MAX_TIMEOUT_S: u64 = 86_400;
const ABSOLUTE_LIFETIME_S: u64 = 604_800;
const CLEANUP_INTERVAL_MS: u64 = 300_000;

const COLUMNS: &str = "id, secret_hash, user_id, created_at, last_activity, expires_at, \
                       absolute_expires_at, idle_timeout, metadata";

/// A stored session, as the component's store reads it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub secret_hash: Vec<u8>,
    pub user_id: String,
    pub created_at: u64,
    pub last_activity: u64,
    pub expires_at: u64,
    pub absolute_expires_at: u64,
    pub idle_timeout: u32,
    pub metadata: String,
}

/// Why a native operation failed (only the kinds the benchmark can meet).
#[derive(Debug)]
pub enum Failure {
    InvalidToken,
    NotFound,
    Expired,
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(err: rusqlite::Error) -> Self {
        Self::Sqlite(err)
    }
}

/// Opens `path` the way the host opens a file database.
///
/// # Errors
///
/// SQLite's, when the file cannot be opened.
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Milliseconds since the epoch, as the component reads its clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A fresh token `(id, secret)`, generated as the component does.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 48];
    getrandom::fill(&mut bytes).expect("OS randomness");
    let (id, secret) = bytes.split_at_mut(16);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    (id, URL_SAFE_NO_PAD.encode(secret))
}

/// SHA-256 of a secret's text, the only form stored.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn is_session_id(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// The component's token parse: shape of both halves, then a base64url decode.
fn parse(token: &str) -> Result<(String, String), Failure> {
    let (id, secret) = token.split_once('.').ok_or(Failure::InvalidToken)?;
    if !is_session_id(id) || secret.len() != 43 {
        return Err(Failure::InvalidToken);
    }
    let decoded = URL_SAFE_NO_PAD
        .decode(secret)
        .map_err(|_| Failure::InvalidToken)?;
    if decoded.len() != 32 {
        return Err(Failure::InvalidToken);
    }
    Ok((id.to_owned(), secret.to_owned()))
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        secret_hash: r.get(1)?,
        user_id: r.get(2)?,
        created_at: r.get(3)?,
        last_activity: r.get(4)?,
        expires_at: r.get(5)?,
        absolute_expires_at: r.get(6)?,
        idle_timeout: r.get(7)?,
        metadata: r.get(8)?,
    })
}

fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<Row>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"))?
        .query_row(params![id], row)
        .optional()
}

/// Token parse, lookup, constant-time hash compare and expiry check (`Engine::verified`).
fn verified(conn: &Connection, token: &str, now: u64) -> Result<(String, Row), Failure> {
    let (id, secret) = parse(token)?;
    let row = find(conn, &id)?.ok_or(Failure::NotFound)?;
    if !bool::from(hash(&secret).ct_eq(&row.secret_hash)) {
        return Err(Failure::InvalidToken);
    }
    if row.expires_at <= now {
        return Err(Failure::Expired);
    }
    Ok((secret, row))
}

/// `Engine::validate` with auto-update on: writes activity at most every 15 s.
///
/// # Errors
///
/// As the component: invalid token, not found, expired, or SQLite's error.
pub fn validate(conn: &Connection, token: &str, now: u64) -> Result<Row, Failure> {
    let (secret, mut row) = verified(conn, token, now)?;
    if now.saturating_sub(row.last_activity) >= ACTIVITY_WRITE_INTERVAL_MS {
        let expires_at = (now + u64::from(row.idle_timeout) * 1000)
            .max(row.expires_at)
            .min(row.absolute_expires_at);
        let changed = conn
            .prepare_cached(
                "UPDATE sessions SET last_activity = ?3, expires_at = ?4 \
                 WHERE id = ?1 AND secret_hash = ?2",
            )?
            .execute(params![row.id, hash(&secret), now, expires_at])?;
        if changed != 1 {
            return Err(Failure::NotFound);
        }
        row.last_activity = now;
        row.expires_at = expires_at;
    }
    Ok(row)
}

/// `Engine::extend`: lookup, then a guarded expiry update.
///
/// # Errors
///
/// As [`validate`].
pub fn extend(conn: &Connection, token: &str, additional_s: u32, now: u64) -> Result<Row, Failure> {
    let (secret, mut row) = verified(conn, token, now)?;
    let wanted = row.expires_at.max(now) + u64::from(additional_s) * 1000;
    let cap = (now + MAX_TIMEOUT_S * 1000).min(row.absolute_expires_at);
    let expires_at = wanted.min(cap).max(row.expires_at);
    let changed = conn
        .prepare_cached("UPDATE sessions SET expires_at = ?3 WHERE id = ?1 AND secret_hash = ?2")?
        .execute(params![row.id, hash(&secret), expires_at])?;
    if changed != 1 {
        return Err(Failure::NotFound);
    }
    row.expires_at = expires_at;
    Ok(row)
}

/// `Engine::list_user`.
///
/// # Errors
///
/// SQLite's.
pub fn list_user(conn: &Connection, user_id: &str, now: u64) -> rusqlite::Result<Vec<Row>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = ?1 AND expires_at > ?2 \
         ORDER BY last_activity DESC, created_at DESC"
    ))?
    .query_map(params![user_id, now], row)?
    .collect()
}

/// `Engine::create` under the evict-oldest policy: the same transaction and statements,
/// then the opportunistic-cleanup claim. Returns the token.
///
/// # Errors
///
/// SQLite's.
pub fn create(
    conn: &Connection,
    user_id: &str,
    timeout_s: u64,
    max_per_user: usize,
    now: u64,
) -> rusqlite::Result<String> {
    let (id, secret) = new_token();
    let absolute = now + ABSOLUTE_LIFETIME_S * 1000;
    let expires_at = (now + timeout_s * 1000).min(absolute);
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let work = || -> rusqlite::Result<()> {
        conn.prepare_cached("DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= ?2")?
            .execute(params![user_id, now])?;
        let existing: Vec<String> = conn
            .prepare_cached(
                "SELECT id FROM sessions WHERE user_id = ?1 AND expires_at > ?2 \
                 ORDER BY last_activity ASC, created_at ASC",
            )?
            .query_map(params![user_id, now], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if existing.len() >= max_per_user {
            for old in &existing[..=existing.len() - max_per_user] {
                conn.prepare_cached("DELETE FROM sessions WHERE id = ?1")?
                    .execute(params![old])?;
            }
        }
        conn.prepare_cached(&format!(
            "INSERT INTO sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ))?
        .execute(params![
            id,
            hash(&secret),
            user_id,
            now,
            now,
            expires_at,
            absolute,
            timeout_s,
            "{}"
        ])?;
        Ok(())
    };
    match work() {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(err) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(err);
        }
    }
    conn.prepare_cached(
        "UPDATE zoe_state SET value = ?1 WHERE key = 'last_cleanup_at' AND value <= ?2",
    )?
    .execute(params![now, now.saturating_sub(CLEANUP_INTERVAL_MS)])?;
    Ok(format!("{id}.{secret}"))
}

/// Inserts `count` sessions in one transaction, straight into the component's schema; returns
/// the tokens of every `keep_every`-th row so they can be validated later.
///
/// `expires_at` is relative to `now`; a negative offset seeds expired rows for cleanup.
///
/// # Errors
///
/// SQLite's.
pub fn seed(
    conn: &Connection,
    start: u64,
    count: u64,
    now: u64,
    expires_in_ms: i64,
    keep_every: u64,
) -> rusqlite::Result<Vec<String>> {
    let mut kept = Vec::new();
    let expires_at = now.saturating_add_signed(expires_in_ms);
    conn.execute_batch("BEGIN IMMEDIATE")?;
    {
        let mut insert = conn.prepare_cached(&format!(
            "INSERT INTO sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ))?;
        for n in start..start + count {
            let (id, secret) = new_token();
            // About three sessions per user, like a user with a laptop, a phone and an agent.
            let user = format!("user-{}", n / 3);
            insert.execute(params![
                id,
                hash(&secret),
                user,
                now,
                now,
                expires_at,
                now + ABSOLUTE_LIFETIME_S * 1000,
                DEFAULT_TIMEOUT_S,
                "{}"
            ])?;
            if n % keep_every == 0 {
                kept.push(format!("{id}.{secret}"));
            }
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(kept)
}
