//! The session engine: each operation of the `sessions` interface over a [`Db`], with the
//! configuration and the current time passed in by the caller (the clock is read once, at
//! the component's entry point).

use super::audit::{Event, Events, FailureKind, Scope};
use super::policy::{self, Expiry, InvalidInput, Requirement};
use super::token::{self, MalformedToken, RandomError, Token};
use crate::config::{Config, ConfigError, LimitPolicy};
use crate::store::{Db, Device, RetiredSecrets, SessionRow, StoreError, StoreStats, UserRow};

/// Expired rows deleted per statement by `cleanup`: small enough that the write lock is held
/// for well under a millisecond, so validates are not held up behind a big delete.
pub const CLEANUP_BATCH: u32 = 500;

/// Rows the opportunistic cleanup (run by `create` once per `cleanup_interval`) may delete.
pub const OPPORTUNISTIC_CLEANUP_ROWS: u32 = 2_000;

/// Sessions one batch of the opportunistic cleanup may read on a key-value store, where
/// finding the expired ones means reading each session: the create that runs it answers
/// within some 500 × 4 reads, whatever the size of the store (a SQL store's `DELETE … LIMIT`
/// needs no bound: its index finds the expired rows).
pub const OPPORTUNISTIC_CLEANUP_SCAN: u32 = CLEANUP_BATCH;

/// Largest `max-rows` accepted by one `cleanup` call.
pub const MAX_CLEANUP_ROWS: u32 = 1_000_000;

/// How long after a rotate the token it replaced is merely refused, before presenting it
/// again counts as theft and revokes the session. A client's own requests still in flight
/// with the old token when the rotate answered, and its retries, arrive within seconds; 30 s
/// (SuperTokens' choice for refresh tokens) leaves room for a slow mobile network, while a
/// thief replaying a copied token is caught as soon as the grace is over.
pub const REUSE_GRACE_MS: u64 = 30_000;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("session not found")]
    NotFound,
    #[error("session expired")]
    Expired,
    #[error("invalid session token")]
    InvalidToken,
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("session limit reached for this user")]
    LimitReached,
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl From<InvalidInput> for EngineError {
    fn from(err: InvalidInput) -> Self {
        Self::InvalidInput(err.0)
    }
}

impl From<MalformedToken> for EngineError {
    fn from(_: MalformedToken) -> Self {
        Self::InvalidToken
    }
}

type Result<T> = std::result::Result<T, EngineError>;

/// A session as returned to callers (no secret material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: u64,
    pub last_activity: u64,
    pub expires_at: u64,
    pub absolute_expires_at: u64,
    pub idle_timeout: u32,
    pub metadata: String,
    pub is_active: bool,
    /// The client's address and user agent at the create or the last activity write.
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

impl Session {
    fn from_row(row: SessionRow, now: u64) -> Self {
        Self {
            client_addr: row.client_addr,
            user_agent: row.user_agent,
            is_active: row.expires_at > now,
            id: row.id,
            user_id: row.user_id,
            created_at: row.created_at,
            last_activity: row.last_activity,
            expires_at: row.expires_at,
            absolute_expires_at: row.absolute_expires_at,
            idle_timeout: row.idle_timeout,
            metadata: row.metadata,
        }
    }
}

/// The session an operation acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRef<'a> {
    /// A full token: its secret is checked.
    Token(&'a str),
    /// A public id, for callers that have already decided the caller may act on that session
    /// (the HTTP layer's admin or own-session checks): no secret is checked.
    TrustedId(&'a str),
}

/// A plain string is a token: only an explicit [`SessionRef::TrustedId`] skips the secret.
impl<'a> From<&'a str> for SessionRef<'a> {
    fn from(token: &'a str) -> Self {
        Self::Token(token)
    }
}

impl<'a> From<&'a String> for SessionRef<'a> {
    fn from(token: &'a String) -> Self {
        Self::Token(token)
    }
}

/// A newly issued token (the only time it is visible) and its session.
#[derive(Debug)]
pub struct Issued {
    pub token: Token,
    pub session: Session,
    /// Housekeeping that failed after the session was committed (the opportunistic cleanup
    /// of `create`). The session exists and the token works regardless: the caller logs this
    /// and answers with the token, because failing the call would hide a live session's token.
    pub cleanup_failure: Option<EngineError>,
}

/// What a create's insert did: the sessions it evicted, and the last cleanup time it read.
struct Created {
    evicted: Vec<String>,
    last_cleanup_at: u64,
}

/// Counters over the whole store.
pub type Stats = StoreStats;

/// Users per page of [`Engine::list_users`] when the caller does not say.
pub const DEFAULT_USER_PAGE: u32 = 50;

/// Largest page of [`Engine::list_users`].
pub const MAX_USER_PAGE: u32 = 200;

/// A user with unexpired sessions: id, how many, and the latest activity among them.
pub type UserSummary = UserRow;

/// One page of users, and the cursor of the next page (`None` on the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    pub next_after: Option<String>,
}

/// The engine: configuration, storage and the time of the current call, and the audit events
/// the call produced (the caller takes them afterwards, whatever the outcome).
#[derive(Debug)]
pub struct Engine<'a> {
    pub config: &'a Config,
    pub db: &'a Db,
    pub now: u64,
    pub events: Events,
    /// The caller's device, recorded by a create and by activity writes when
    /// `record_devices` is on; `None` leaves what is recorded as it is.
    pub device: Option<Device>,
}

impl<'a> Engine<'a> {
    /// An engine for one call at `now`, with no events yet and no device.
    pub fn new(config: &'a Config, db: &'a Db, now: u64) -> Self {
        Self {
            config,
            db,
            now,
            events: Events::default(),
            device: None,
        }
    }

    /// The device to record, if the caller gave one and recording is on.
    fn device(&self) -> Result<Option<&Device>> {
        match &self.device {
            Some(device) if *self.config.record_devices()? => Ok(Some(device)),
            _ => Ok(None),
        }
    }
}

impl Engine<'_> {
    /// Creates a session, enforcing the per-user limit atomically.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad user id, timeout or metadata; `LimitReached` under the reject
    /// policy; `Config` for a setting it needs; `Storage`. A failed cleanup after the commit
    /// is not an error: it is in [`Issued::cleanup_failure`].
    pub fn create(
        &self,
        user_id: &str,
        timeout: Option<u32>,
        metadata: Option<&str>,
    ) -> Result<Issued> {
        policy::check_new_user_id(user_id)?;
        let idle_timeout = policy::idle_timeout(timeout, self.config.timeouts()?)?;
        let metadata = policy::metadata(metadata, *self.config.max_metadata_bytes()?)?;
        let token = Token::generate()?;
        let expiry =
            policy::initial_expiry(self.now, idle_timeout, *self.config.absolute_lifetime()?);
        let (limit, limit_policy, cleanup_interval) = (
            *self.config.max_per_user()?,
            *self.config.limit_policy()?,
            *self.config.cleanup_interval()?,
        );
        let device = self.device()?;
        let row = SessionRow {
            id: token.id.clone(),
            secret_hash: token.secret_hash(),
            user_id: user_id.to_owned(),
            created_at: self.now,
            last_activity: self.now,
            expires_at: expiry.expires_at,
            absolute_expires_at: expiry.absolute_expires_at,
            idle_timeout,
            metadata,
            retired_secrets: RetiredSecrets::default(),
            rotated_at: 0,
            client_addr: device.and_then(|d| d.client_addr.clone()),
            user_agent: device.and_then(|d| d.user_agent.clone()),
        };
        let Created {
            evicted,
            last_cleanup_at,
        } = self
            .insert_within_limit(&row, limit, limit_policy)
            .map_err(|err| match err {
                // Metadata within max_metadata_bytes can still overflow a key-value store's
                // value with the rest of the record: the caller's input, so a 422.
                EngineError::Storage(StoreError::TooLarge(text)) => EngineError::InvalidInput(text),
                other => other,
            })?;
        // Recorded once committed: a rolled-back create evicted nothing.
        for session_id in evicted {
            self.events.record(Event::Evicted {
                session_id,
                user_id: user_id.to_owned(),
            });
        }
        self.events.record(Event::Created {
            session_id: row.id.clone(),
            user_id: user_id.to_owned(),
        });
        Ok(Issued {
            session: Session::from_row(row, self.now),
            token,
            cleanup_failure: self
                .opportunistic_cleanup(last_cleanup_at, cleanup_interval)
                .err(),
        })
    }

    /// Inserts `row` within its user's limit, atomically against concurrent creates of that
    /// user on every replica. The common case, a user below the limit, is one guarded
    /// `INSERT` that counts and inserts: on its own where one statement is atomic (SQLite),
    /// else after the user's lock in a transaction (PostgreSQL). A full user is refused, or
    /// under `evict_oldest` has its least recently active sessions deleted and the row
    /// inserted, in that same transaction (or, on SQLite, in one opened for it). A key-value
    /// store has no transaction: it takes one of the user's slots ([`Db::insert_key_value`]).
    ///
    /// Expired rows are left to the periodic cleanup: they do not count against the limit.
    fn insert_within_limit(
        &self,
        row: &SessionRow,
        limit: u32,
        limit_policy: LimitPolicy,
    ) -> Result<Created> {
        let make_room = |db: &Db| {
            let existing = db.user_ids_by_age(&row.user_id, self.now)?;
            let excess = (existing.len() + 1).saturating_sub(limit as usize);
            let evicted: Vec<String> = existing.into_iter().take(excess).collect();
            for id in &evicted {
                db.delete(id)?;
            }
            // Under the user's lock, with room made: no count needed.
            let last_cleanup_at = db.insert(row)?;
            Ok::<_, EngineError>(Created {
                evicted,
                last_cleanup_at,
            })
        };
        let first_try = |db: &Db| match db.insert_within_limit(row, self.now, limit)? {
            Some(last_cleanup_at) => Ok(Some(Created {
                evicted: Vec::new(),
                last_cleanup_at,
            })),
            None if limit_policy == LimitPolicy::Reject => Err(EngineError::LimitReached),
            None => Ok(None),
        };
        if self.db.is_key_value() {
            let evict = limit_policy == LimitPolicy::EvictOldest;
            return match self.db.insert_key_value(row, self.now, limit, evict)? {
                Some(created) => Ok(Created {
                    evicted: created.evicted,
                    last_cleanup_at: created.last_cleanup_at,
                }),
                None => Err(EngineError::LimitReached),
            };
        }
        if self.db.dialect().is_some_and(|d| d.single_statement_limit) {
            match first_try(self.db)? {
                Some(created) => Ok(created),
                None => self.db.user_transaction(&row.user_id, make_room),
            }
        } else {
            self.db
                .user_transaction(&row.user_id, |db| match first_try(db)? {
                    Some(created) => Ok(created),
                    None => make_room(db),
                })
        }
    }

    /// Checks a token; with `auto_update`, records activity (throttled).
    ///
    /// # Errors
    ///
    /// `InvalidToken` (malformed or wrong secret), `NotFound`, `Expired`, `Config`, `Storage`.
    pub fn validate(&self, token: &str) -> Result<Session> {
        let (token, row) = self.verified(token)?;
        // The setting is read only when a write is due, so a hot validate does not read it.
        if policy::activity_write_due(self.now, row.last_activity) && *self.config.auto_update()? {
            return self.record_activity(&token, row);
        }
        Ok(Session::from_row(row, self.now))
    }

    /// Validates, then checks a role or permission against the session's metadata.
    ///
    /// # Errors
    ///
    /// As [`Engine::validate`], and `Forbidden` naming the unmet requirement.
    pub fn authorize(&self, token: &str, requirement: &Requirement) -> Result<Session> {
        let session = self.validate(token)?;
        if policy::authorizes(&session.metadata, requirement) {
            Ok(session)
        } else {
            Err(EngineError::Forbidden(match requirement {
                Requirement::Role(role) => format!("role `{role}` required"),
                Requirement::Permission(p) => format!("permission `{p}` required"),
            }))
        }
    }

    /// Looks a session up by public id, or by token (whose secret is then checked).
    ///
    /// # Errors
    ///
    /// As [`Engine::validate`].
    pub fn get(&self, id_or_token: &str) -> Result<Session> {
        let row = match Reference::parse(id_or_token)? {
            Reference::Id(id) => self.db.find(&id)?.ok_or(EngineError::NotFound)?,
            Reference::Token(token) => self.verified_token(&token)?,
        };
        self.unexpired(row)
    }

    /// Records activity now, ignoring the throttle window.
    ///
    /// # Errors
    ///
    /// As [`Engine::validate`]; for a trusted id, `InvalidInput` when it is not a UUID.
    pub fn touch<'t>(&self, target: impl Into<SessionRef<'t>>) -> Result<Session> {
        let (hash, row) = self.target_row(target.into())?;
        self.record_activity_hash(&hash, row)
    }

    /// Pushes expiry out by `additional` seconds within the caps.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an extension outside `1..=max_timeout`, else as [`Engine::touch`].
    pub fn extend<'t>(
        &self,
        target: impl Into<SessionRef<'t>>,
        additional: u32,
    ) -> Result<Session> {
        let max_timeout = self.config.timeouts()?.max;
        policy::check_extension(additional, max_timeout)?;
        let (hash, mut row) = self.target_row(target.into())?;
        let expires_at = policy::after_extend(self.now, additional, expiry(&row), max_timeout);
        if !self.db.set_expiry(&row, &hash, expires_at)? {
            return Err(EngineError::NotFound);
        }
        row.expires_at = expires_at;
        self.events.record(Event::Extended {
            session_id: row.id.clone(),
            user_id: row.user_id.clone(),
            expires_at,
        });
        Ok(Session::from_row(row, self.now))
    }

    /// Issues a new secret for the session; the old token is dead once this returns.
    ///
    /// # Errors
    ///
    /// As [`Engine::touch`]; `InvalidToken` when a concurrent rotate won.
    pub fn rotate<'t>(&self, target: impl Into<SessionRef<'t>>) -> Result<Issued> {
        let (hash, row) = self.target_row(target.into())?;
        self.replace_secret(&hash, row)
    }

    /// The unexpired row `target` names, and the secret hash a guarded write must still find:
    /// the token's (checked here), or for a trusted id the row's own.
    fn target_row(&self, target: SessionRef<'_>) -> Result<(Vec<u8>, SessionRow)> {
        match target {
            SessionRef::Token(token) => {
                let (token, row) = self.verified(token)?;
                Ok((token.secret_hash(), row))
            }
            SessionRef::TrustedId(id) => {
                let row = self.unexpired_by_id(id)?;
                Ok((row.secret_hash.clone(), row))
            }
        }
    }

    /// Swaps the secret of `row`, provided it is still `old_hash`.
    fn replace_secret(&self, old_hash: &[u8], mut row: SessionRow) -> Result<Issued> {
        let new = Token::with_id(row.id.clone())?;
        let expires_at = policy::after_activity(self.now, row.idle_timeout, expiry(&row));
        let new_hash = new.secret_hash();
        let device = self.device()?;
        let retired = row.retired_secrets.retire(old_hash);
        if !self.db.replace_secret(
            &row,
            (old_hash, &new_hash),
            &retired,
            self.now,
            expires_at,
            device,
        )? {
            // A concurrent rotate or delete got there first; the old token is dead either way.
            return Err(EngineError::InvalidToken);
        }
        row.secret_hash = new_hash;
        row.retired_secrets = retired;
        row.rotated_at = self.now;
        row.last_activity = self.now;
        row.expires_at = expires_at;
        row.record_device(device);
        self.events.record(Event::Rotated {
            session_id: row.id.clone(),
            user_id: row.user_id.clone(),
        });
        Ok(Issued {
            token: new,
            session: Session::from_row(row, self.now),
            cleanup_failure: None,
        })
    }

    /// Deletes one session by public id or token. Expired sessions may be deleted too.
    ///
    /// # Errors
    ///
    /// `InvalidToken`, `NotFound`, `Storage`.
    pub fn invalidate(&self, id_or_token: &str) -> Result<()> {
        let id = match Reference::parse(id_or_token)? {
            Reference::Id(id) => id,
            Reference::Token(token) => self.verified_token(&token)?.id,
        };
        if self.db.delete(&id)? {
            self.events.record(Event::Invalidated {
                scope: Scope::One,
                count: 1,
                session_id: Some(id),
                user_id: None,
            });
            Ok(())
        } else {
            Err(EngineError::NotFound)
        }
    }

    /// Deletes every session of a user except `except_id`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad user id or an `except_id` that is not a UUID; `Storage`.
    pub fn invalidate_user(&self, user_id: &str, except_id: Option<&str>) -> Result<u32> {
        policy::check_user_id(user_id)?;
        if let Some(id) = except_id
            && !token::is_session_id(id)
        {
            return Err(EngineError::InvalidInput(
                "except_id must be a session id (a UUID)".into(),
            ));
        }
        let count = row_count(self.db.delete_user(user_id, except_id)?);
        self.events.record(Event::Invalidated {
            scope: Scope::User,
            count,
            session_id: None,
            user_id: Some(user_id.to_owned()),
        });
        Ok(count)
    }

    /// Deletes every session of every user.
    ///
    /// # Errors
    ///
    /// `Storage`.
    pub fn invalidate_all(&self) -> Result<u32> {
        let count = row_count(self.db.delete_all()?);
        self.events.record(Event::Invalidated {
            scope: Scope::All,
            count,
            session_id: None,
            user_id: None,
        });
        Ok(count)
    }

    /// The user's unexpired sessions, most recently active first.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad user id; `Storage`.
    pub fn list_user(&self, user_id: &str) -> Result<Vec<Session>> {
        policy::check_user_id(user_id)?;
        Ok(self
            .db
            .list_user(user_id, self.now)?
            .into_iter()
            .map(|row| Session::from_row(row, self.now))
            .collect())
    }

    /// Users with unexpired sessions whose id starts with `prefix`, in byte order, at most
    /// `limit`, after the cursor `after` (the previous page's `next_after`). Keyset
    /// pagination over a range of the user index: every page costs the same, however many
    /// users come before it.
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidInput`] for a `limit` outside 1..=[`MAX_USER_PAGE`], a prefix
    /// longer than a user id may be or holding control characters, or an `after` that is
    /// not a valid user id.
    pub fn list_users(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<UserPage> {
        if limit == 0 || limit > MAX_USER_PAGE {
            return Err(EngineError::InvalidInput(format!(
                "limit must be between 1 and {MAX_USER_PAGE}, got {limit}"
            )));
        }
        policy::check_user_id_prefix(prefix)?;
        if let Some(after) = after {
            policy::check_user_id(after).map_err(|err| {
                EngineError::InvalidInput(format!(
                    "after must be the user id that ended the previous page: {}",
                    err.0
                ))
            })?;
        }
        // The range starts at the prefix, or just past the cursor when that lies further
        // on: `>= after` and `<> after` is `> after`. No user id is empty, so `""` excludes
        // nothing.
        let (from, except) = match after {
            Some(after) if after >= prefix => (after, after),
            _ => (prefix, ""),
        };
        let below = policy::prefix_upper_bound(prefix);
        let mut users = self
            .db
            .users_in_range(from, &below, except, self.now, limit + 1)?;
        let next_after = if users.len() > limit as usize {
            users.truncate(limit as usize);
            users.last().map(|user| user.user_id.clone())
        } else {
            None
        };
        Ok(UserPage { users, next_after })
    }

    /// Counters over the whole store. Also the operator's check of the deployment: every
    /// setting is read and the schema checked, so a bad setting or a database this build
    /// cannot use is reported here even if no other call has needed it yet (the host calls
    /// this when it starts).
    ///
    /// # Errors
    ///
    /// [`EngineError::Config`] naming a bad setting, [`EngineError::Storage`] for the store.
    pub fn stats(&self) -> Result<Stats> {
        self.config.check_all()?;
        self.db.check_schema()?;
        Ok(self.db.stats(self.now)?)
    }

    /// Deletes up to `max_rows` expired rows, [`CLEANUP_BATCH`] per statement.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `max_rows` outside `1..=MAX_CLEANUP_ROWS`; `Storage`.
    pub fn cleanup(&self, max_rows: u32) -> Result<u32> {
        if max_rows == 0 || max_rows > MAX_CLEANUP_ROWS {
            return Err(EngineError::InvalidInput(format!(
                "max_rows must be between 1 and {MAX_CLEANUP_ROWS}, got {max_rows}"
            )));
        }
        let deleted = self.delete_expired(max_rows, None)?;
        self.db.mark_cleanup(self.now)?;
        self.events.record(Event::Cleanup { deleted });
        Ok(deleted)
    }

    fn unexpired_by_id(&self, id: &str) -> Result<SessionRow> {
        if !token::is_session_id(id) {
            return Err(EngineError::InvalidInput(
                "a session id must be a UUID".to_owned(),
            ));
        }
        let row = self.db.find(id)?.ok_or(EngineError::NotFound)?;
        self.unexpired_row(row)
    }

    /// Deletes up to `max_rows` expired rows in batches, each reading at most `scan` sessions
    /// of a key-value store; a batch that finds fewer than it may delete ends it.
    fn delete_expired(&self, max_rows: u32, scan: Option<u32>) -> Result<u32> {
        let mut deleted = 0u32;
        while deleted < max_rows {
            let batch = CLEANUP_BATCH.min(max_rows - deleted);
            let n = self.db.delete_expired(self.now, batch, scan)?;
            deleted += u32::try_from(n).unwrap_or(batch);
            if n < u64::from(batch) {
                break;
            }
        }
        Ok(deleted)
    }

    /// Spin has no background threads, so `create` cleans up a bounded number of expired rows
    /// whenever `cleanup_interval` has passed since the last cleanup. `last_cleanup_at` is
    /// what the create's insert read: only when that makes a cleanup due is the slot claimed,
    /// and the claim, a conditional write, is what decides which of several creates (on any
    /// replica) cleans up.
    fn opportunistic_cleanup(&self, last_cleanup_at: u64, cleanup_interval: u32) -> Result<()> {
        let interval_ms = u64::from(cleanup_interval) * 1000;
        if last_cleanup_at > self.now.saturating_sub(interval_ms) {
            return Ok(());
        }
        if self.db.claim_cleanup(self.now, interval_ms)? {
            let deleted =
                self.delete_expired(OPPORTUNISTIC_CLEANUP_ROWS, Some(OPPORTUNISTIC_CLEANUP_SCAN))?;
            // A create that found nothing to clean up is not worth a line.
            if deleted > 0 {
                self.events.record(Event::Cleanup { deleted });
            }
        }
        Ok(())
    }

    fn record_activity(&self, token: &Token, row: SessionRow) -> Result<Session> {
        self.record_activity_hash(&token.secret_hash(), row)
    }

    /// Records activity on `row`, provided its secret is still `secret_hash` (a concurrent
    /// rotate or delete makes this a `NotFound`).
    fn record_activity_hash(&self, secret_hash: &[u8], mut row: SessionRow) -> Result<Session> {
        let expires_at = policy::after_activity(self.now, row.idle_timeout, expiry(&row));
        let device = self.device()?;
        if !self
            .db
            .record_activity(&row, secret_hash, self.now, expires_at, device)?
        {
            return Err(EngineError::NotFound);
        }
        row.last_activity = self.now;
        row.expires_at = expires_at;
        row.record_device(device);
        Ok(Session::from_row(row, self.now))
    }

    /// Parses a token and returns its unexpired row.
    fn verified(&self, token: &str) -> Result<(Token, SessionRow)> {
        let token = Token::parse(token).inspect_err(|_| {
            self.failed(FailureKind::Malformed, None);
        })?;
        let row = self.verified_token(&token)?;
        let row = self.unexpired_row(row).inspect_err(|_| {
            self.failed(FailureKind::Expired, Some(&token.id));
        })?;
        Ok((token, row))
    }

    /// The row whose secret matches `token`, expired or not. A token whose secret a rotate
    /// replaced has been copied, and the session is revoked (neither the thief's token nor
    /// the one the rotate issued works any more), when it is presented [`REUSE_GRACE_MS`] or
    /// more after the latest rotate, or at any time once a later rotate retired its successor:
    /// rotating with the successor proved its holder had moved on (refresh-token rotation as
    /// the OAuth 2.0 Security BCP and SuperTokens do it), so only the latest retired token can
    /// still be one of its holder's requests in flight.
    fn verified_token(&self, token: &Token) -> Result<SessionRow> {
        let Some(row) = self.db.find(&token.id)? else {
            self.failed(FailureKind::Unknown, Some(&token.id));
            return Err(EngineError::NotFound);
        };
        if token.matches(&row.secret_hash) {
            return Ok(row);
        }
        let retired = row
            .retired_secrets
            .hashes()
            .position(|hash| token.matches(hash));
        let reused = match retired {
            Some(0) => self.now >= row.rotated_at.saturating_add(REUSE_GRACE_MS),
            Some(_) => true,
            None => false,
        };
        if reused
            && *self.config.token_reuse_detection()?
            && self.db.delete_reused(&row.id, &row.retired_secrets)?
        {
            self.events.record(Event::TokenReuse {
                session_id: row.id.clone(),
                user_id: row.user_id.clone(),
                rotated_at: row.rotated_at,
            });
            return Err(EngineError::InvalidToken);
        }
        self.events.record(Event::ValidateFailed {
            kind: FailureKind::BadSecret,
            session_id: Some(row.id.clone()),
            user_id: Some(row.user_id.clone()),
        });
        Err(EngineError::InvalidToken)
    }

    fn failed(&self, kind: FailureKind, session_id: Option<&str>) {
        self.events.record(Event::ValidateFailed {
            kind,
            session_id: session_id.map(str::to_owned),
            user_id: None,
        });
    }

    fn unexpired_row(&self, row: SessionRow) -> Result<SessionRow> {
        if row.expires_at > self.now {
            Ok(row)
        } else {
            Err(EngineError::Expired)
        }
    }

    fn unexpired(&self, row: SessionRow) -> Result<Session> {
        self.unexpired_row(row)
            .map(|row| Session::from_row(row, self.now))
    }
}

fn expiry(row: &SessionRow) -> Expiry {
    Expiry {
        expires_at: row.expires_at,
        absolute_expires_at: row.absolute_expires_at,
    }
}

/// A session named by public id (trusted callers) or by token (possession is the proof).
enum Reference {
    Id(String),
    Token(Token),
}

impl Reference {
    fn parse(text: &str) -> Result<Self> {
        if token::is_session_id(text) {
            Ok(Self::Id(text.to_owned()))
        } else {
            Ok(Self::Token(Token::parse(text)?))
        }
    }
}

/// A count of deleted rows as the WIT's `u32`, saturating (no store holds 4 billion sessions).
fn row_count(rows: u64) -> u32 {
    u32::try_from(rows).unwrap_or(u32::MAX)
}
