//! The session store on a [`KeyValue`] store: the operations of [`Db`](super::Db) on the
//! layout of [`layout`], with only get, set, delete and a full key listing: no transaction,
//! no compare-and-swap, no expiry.
//!
//! The rules that must hold under any interleaving rest on three facts (docs/key-value.md
//! has the whole argument and the per-backend guarantee table):
//!
//! - a session is live only while slot `n` of its user names it: `invalidate-user` deletes
//!   the slots, a create overwrites one, and nothing else writes a slot or writes an old id
//!   into one, so the per-user limit holds at every instant and no invalidated session can
//!   come back;
//! - the session record is written once, by the create, and a delete removes it; the writes
//!   that follow a session's life (activity in `zs:a:`, the secret in `zs:r:`) are in keys of
//!   their own, and without the session record they are dead weight for the cleanup, so a
//!   late write never resurrects a deleted session and an activity write never restores a
//!   rotated secret;
//! - `invalidate-all` writes a fresh random store generation that every live session must
//!   carry: one write, whatever the number of sessions.
//!
//! What is weaker than on SQL, and measured by the races in the conformance suite: a create
//! may be told it succeeded while a concurrent create of the same user took its slot a moment
//! later (the session is then dead, never over the limit); two racing rotates may both answer
//! a token, of which only the later write validates; concurrent cleanups may count a row twice.

pub mod layout;
pub mod memory;
pub mod read_ahead;

use super::error::StoreError;
use super::key_value::KeyValue;
use super::rows::{Device, RetiredSecrets, SessionRow, StoreStats, UserRow};
use layout::{
    ActivityRecord, CleanupRecord, GenRecord, KeyKind, SecretRecord, SessionRecord, SlotRecord,
    StoredSession,
};
use std::collections::{BTreeMap, BTreeSet};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A create that lost its slot to a concurrent create tries again this many times before
/// giving up with an error (each try reads the user's slots afresh).
const CREATE_ATTEMPTS: u32 = 64;

/// A slot naming a session without a record counts as taken for this long after it was
/// taken: the create that took it writes the record next (a request ends within 30 s on
/// Akamai), and a create that died in between frees its slot after this.
const CREATE_GRACE_MS: u64 = 60 * 1000;

/// Slots a user may hold on a key-value store: creates and listings read a user's slots one
/// key at a time.
pub const MAX_SLOTS: u32 = 1_000;

/// The store's operations on one key-value store, for users of at most `slots` sessions.
#[derive(Debug)]
pub struct KvStore {
    kv: Box<dyn KeyValue>,
    slots: u32,
}

/// What a create did: the session it evicted, if any, and the last cleanup time it read.
#[derive(Debug)]
pub struct KvCreated {
    pub evicted: Vec<String>,
    pub last_cleanup_at: u64,
}

/// Keys known to exist (from one `get_keys`), so a scan skips reading keys that are absent.
type Known = BTreeSet<String>;

impl KvStore {
    /// The store on `kv` for users of at most `max_per_user` sessions (the setting in force:
    /// a session in a slot at or above it is no longer live, so lowering the setting ends
    /// the sessions beyond it).
    ///
    /// # Errors
    ///
    /// [`StoreError::KeyValue`] when `max_per_user` is over [`MAX_SLOTS`].
    pub fn new(kv: Box<dyn KeyValue>, max_per_user: u32) -> Result<Self> {
        if max_per_user > MAX_SLOTS {
            return Err(StoreError::KeyValue(format!(
                "max_per_user is {max_per_user}, over the {MAX_SLOTS} sessions per user a \
                 key-value store keeps"
            )));
        }
        Ok(Self {
            kv,
            slots: max_per_user,
        })
    }

    fn get<T: for<'de> serde::Deserialize<'de>>(&self, key: &str) -> Result<Option<T>> {
        self.kv
            .get(key)?
            .map(|value| layout::decode(key, &value))
            .transpose()
    }

    /// `get`, skipping the call when a scan showed the key absent.
    fn get_known<T: for<'de> serde::Deserialize<'de>>(
        &self,
        key: &str,
        known: Option<&Known>,
    ) -> Result<Option<T>> {
        match known {
            Some(keys) if !keys.contains(key) => Ok(None),
            _ => self.get(key),
        }
    }

    fn put<T: serde::Serialize>(&self, key: &str, record: &T) -> Result<()> {
        if key.len() > layout::MAX_KEY_BYTES {
            return Err(StoreError::KeyValue(format!(
                "a key of {} bytes is over the {} bytes a key-value store accepts",
                key.len(),
                layout::MAX_KEY_BYTES
            )));
        }
        self.kv.set(key, &layout::encode(key, record)?)
    }

    /// The session record of `id`: `None` when there is none or a delete left its mark.
    fn record(&self, id: &str, known: Option<&Known>) -> Result<Option<SessionRecord>> {
        Ok(match self.get_known(&layout::session_key(id), known)? {
            Some(StoredSession::Live(record)) => Some(*record),
            Some(StoredSession::Deleted { .. }) | None => None,
        })
    }

    /// Ends session `id` for good: its record is replaced by a deletion mark (one write).
    fn mark_deleted(&self, id: &str) -> Result<()> {
        self.put(
            &layout::session_key(id),
            &StoredSession::Deleted { deleted: true },
        )
    }

    fn generation(&self) -> Result<String> {
        Ok(self
            .get::<GenRecord>(layout::GEN_KEY)?
            .map(|g| g.generation)
            .unwrap_or_default())
    }

    fn slot_holder(&self, user_id: &str, n: u32) -> Result<Option<String>> {
        Ok(self
            .get::<SlotRecord>(&layout::slot_key(user_id, n))?
            .map(|slot| slot.session_id))
    }

    /// The session `id` if it is live: its record, its slot naming it, the store's
    /// generation; with its secret and activity resolved. `slot_checked` when the caller has
    /// just read the slot naming `id`.
    fn live(
        &self,
        id: &str,
        generation: &str,
        slot_checked: bool,
        known: Option<&Known>,
    ) -> Result<Option<SessionRow>> {
        let Some(record) = self.record(id, known)? else {
            return Ok(None);
        };
        if !self.holds_slot(id, &record, slot_checked)? || record.generation != generation {
            return Ok(None);
        }
        self.row(id, record, known).map(Some)
    }

    fn holds_slot(&self, id: &str, record: &SessionRecord, slot_checked: bool) -> Result<bool> {
        Ok(record.slot < self.slots
            && (slot_checked
                || self.slot_holder(&record.user_id, record.slot)?.as_deref() == Some(id)))
    }

    /// The row of a session whose record is `record`: the latest of the create's, the last
    /// rotate's and the last activity write's activity, ties going to the later kind.
    fn row(&self, id: &str, record: SessionRecord, known: Option<&Known>) -> Result<SessionRow> {
        let secret_key = layout::secret_key(id);
        let activity: Option<ActivityRecord> = self.get_known(&layout::activity_key(id), known)?;
        // The secret last, so that a rotate writes it as soon after reading it as it can.
        let secret: Option<SecretRecord> = self.get_known(&secret_key, known)?;
        let session_key = layout::session_key(id);
        let mut latest = ActivityRecord {
            last_activity: record.created_at,
            expires_at: record.expires_at,
            client_addr: record.client_addr,
            user_agent: record.user_agent,
        };
        let (mut secret_hash, mut retired, mut rotated_at) = (
            layout::hash_bytes(&session_key, &record.secret_hash)?,
            RetiredSecrets::default(),
            0,
        );
        if let Some(secret) = secret {
            secret_hash = layout::hash_bytes(&secret_key, &secret.secret_hash)?;
            retired = layout::retired_from(&secret_key, &secret.retired)?;
            rotated_at = secret.rotated_at;
            if secret.activity.last_activity >= latest.last_activity {
                latest = secret.activity;
            }
        }
        if let Some(activity) = activity
            && activity.last_activity >= latest.last_activity
        {
            latest = activity;
        }
        Ok(SessionRow {
            id: id.to_owned(),
            secret_hash,
            user_id: record.user_id,
            created_at: record.created_at,
            last_activity: latest.last_activity,
            expires_at: latest.expires_at,
            absolute_expires_at: record.absolute_expires_at,
            idle_timeout: record.idle_timeout,
            metadata: record.metadata,
            retired_secrets: retired,
            rotated_at,
            client_addr: latest.client_addr,
            user_agent: latest.user_agent,
        })
    }

    /// As [`Db::find`](super::Db::find): the live session `id`, expired or not.
    ///
    /// # Errors
    ///
    /// [`StoreError`] from the store, or for a malformed record.
    pub fn find(&self, id: &str) -> Result<Option<SessionRow>> {
        let generation = self.generation()?;
        self.live(id, &generation, false, None)
    }

    fn last_cleanup_at(&self) -> Result<u64> {
        Ok(self
            .get::<CleanupRecord>(layout::CLEANUP_KEY)?
            .map_or(0, |c| c.last_cleanup_at))
    }

    /// Inserts `row` into a free slot of its user, or under `evict` into the slot of the
    /// least recently active of `limit` live sessions; `None` when the user is full and
    /// `evict` is off. The slot is written first and read back: a create that finds another
    /// id there lost a race for it and tries again; the winner then writes the session
    /// record, until which the session is not live (nor is its token out).
    ///
    /// # Errors
    ///
    /// [`StoreError`] from the store, or [`StoreError::KeyValue`] when every attempt lost.
    pub fn insert(
        &self,
        row: &SessionRow,
        now: u64,
        limit: u32,
        evict: bool,
    ) -> Result<Option<KvCreated>> {
        let limit = limit.min(self.slots);
        let generation = self.generation()?;
        for attempt in 0..CREATE_ATTEMPTS {
            let (mut free, mut live, mut seen) = (Vec::new(), Vec::new(), Vec::new());
            for n in 0..limit {
                let holder = self.get::<SlotRecord>(&layout::slot_key(&row.user_id, n))?;
                seen.push(holder.as_ref().map(|slot| slot.session_id.clone()));
                match holder {
                    None => free.push(n),
                    Some(slot) => match self.live(&slot.session_id, &generation, true, None)? {
                        Some(session) if session.expires_at > now => live.push((n, session)),
                        // A create between taking the slot and writing the record: taken.
                        None if slot.taken_at.saturating_add(CREATE_GRACE_MS) > now
                            && self
                                .kv
                                .get(&layout::session_key(&slot.session_id))?
                                .is_none() => {}
                        _ => free.push(n),
                    },
                }
                // The first free slot is enough on a first try: no need to read the rest.
                if attempt == 0 && !free.is_empty() {
                    break;
                }
            }
            let (slot, evicted) = if let Some(&first) = free.first() {
                (pick(attempt, &free).unwrap_or(first), None)
            } else if evict {
                live.sort_by_key(|(_, s)| (s.last_activity, s.created_at));
                // After a lost race the choice is spread over the oldest half, so the losers
                // of one race do not all go for the same slot again.
                let oldest: Vec<u32> = live
                    .iter()
                    .take(live.len().div_ceil(2))
                    .map(|(n, _)| *n)
                    .collect();
                let Some(slot) = pick(attempt, &oldest).or(oldest.first().copied()) else {
                    return Ok(None);
                };
                let id = live
                    .iter()
                    .find(|(n, _)| *n == slot)
                    .map(|(_, s)| s.id.clone());
                (slot, id)
            } else {
                return Ok(None);
            };
            // The slot is written straight after it was read: the less time between the read
            // and the write, the fewer concurrent creates can both see it free. A slot read
            // earlier in a long scan (a retry, an eviction) is read again first.
            if slot + 1 != seen.len() as u32
                && self.slot_holder(&row.user_id, slot)? != seen[slot as usize]
            {
                continue;
            }
            // The record is encoded before, so one too large for the store takes no slot.
            let session_key = layout::session_key(&row.id);
            let record = layout::encode(
                &session_key,
                &StoredSession::Live(Box::new(session_record(row, slot, &generation))),
            )?;
            self.put(
                &layout::slot_key(&row.user_id, slot),
                &SlotRecord {
                    session_id: row.id.clone(),
                    taken_at: now,
                },
            )?;
            let ours = |db: &Self| {
                Ok::<_, StoreError>(
                    db.slot_holder(&row.user_id, slot)?.as_deref() == Some(row.id.as_str()),
                )
            };
            if !ours(self)? {
                continue;
            }
            self.kv.set(&session_key, &record)?;
            let last_cleanup_at = self.last_cleanup_at()?;
            // Once more, two round trips later: a create that read the slot free just before
            // this one wrote it has most likely written it by now. Until this answers, nobody
            // holds the token, so losing here is only another try (which rewrites the record).
            if ours(self)? {
                return Ok(Some(KvCreated {
                    evicted: evicted.into_iter().collect(),
                    last_cleanup_at,
                }));
            }
        }
        Err(StoreError::KeyValue(format!(
            "a create lost the race for a slot {CREATE_ATTEMPTS} times: too many concurrent \
             creates for one user"
        )))
    }

    /// As [`Db::record_activity`](super::Db::record_activity): one blind write of the
    /// activity key, built from `row` as the caller read it (so a part of the device
    /// `device` leaves out keeps the value read). A write that lands after a delete or a
    /// rotate changes nothing: the session record is gone, or the secret is in its own key.
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`]; `Ok(false)` when `secret_hash` is not `row`'s.
    pub fn record_activity(
        &self,
        row: &SessionRow,
        secret_hash: &[u8],
        now: u64,
        expires_at: u64,
        device: Option<&Device>,
    ) -> Result<bool> {
        if row.secret_hash != secret_hash {
            return Ok(false);
        }
        let activity = activity_of(row, now, expires_at).with_device(device);
        self.put(&layout::activity_key(&row.id), &activity)?;
        Ok(true)
    }

    /// As [`Db::set_expiry`](super::Db::set_expiry), written as [`KvStore::record_activity`]
    /// with the activity time unchanged. An extend and an activity write that race are one
    /// key: the later write's expiry stands (never past the caps either computed).
    ///
    /// # Errors
    ///
    /// As [`KvStore::record_activity`].
    pub fn set_expiry(
        &self,
        row: &SessionRow,
        secret_hash: &[u8],
        expires_at: u64,
    ) -> Result<bool> {
        self.record_activity(row, secret_hash, row.last_activity, expires_at, None)
    }

    /// As [`Db::replace_secret`](super::Db::replace_secret): one write of the secret key,
    /// then two reads back; `false` when `old` is not `row`'s secret or a concurrent rotate's
    /// write landed after this one. The caller read the secret key last of the session's
    /// keys, so the window in which two rotates both succeed is about one round trip.
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`].
    pub fn replace_secret(
        &self,
        row: &SessionRow,
        (old, new): (&[u8], &[u8]),
        retired: &RetiredSecrets,
        now: u64,
        expires_at: u64,
        device: Option<&Device>,
    ) -> Result<bool> {
        if row.secret_hash != old {
            return Ok(false);
        }
        let key = layout::secret_key(&row.id);
        let new_hex = layout::hash_hex(new);
        self.put(
            &key,
            &SecretRecord {
                secret_hash: new_hex.clone(),
                retired: layout::retired_hex(retired),
                rotated_at: now,
                activity: activity_of(row, now, expires_at).with_device(device),
            },
        )?;
        // Read back twice: a racing rotate that read the old secret just before this write
        // has most likely written by the second read. A rotate that loses answers no token.
        for _ in 0..2 {
            let current = self.get::<SecretRecord>(&key)?;
            if current.is_none_or(|secret| secret.secret_hash != new_hex) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// As [`Db::delete_reused`](super::Db::delete_reused).
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`].
    pub fn delete_reused(&self, id: &str, retired: &RetiredSecrets) -> Result<bool> {
        match self.find(id)? {
            Some(row) if row.retired_secrets == *retired => {
                self.mark_deleted(id)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// As [`Db::delete`](super::Db::delete): replaces the session record by a deletion mark
    /// (one write); whether the session was live. Its other keys are the cleanup's.
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`].
    pub fn delete(&self, id: &str) -> Result<bool> {
        let Some(record) = self.record(id, None)? else {
            return Ok(false);
        };
        let live =
            self.holds_slot(id, &record, false)? && record.generation == self.generation()?;
        self.mark_deleted(id)?;
        Ok(live)
    }

    /// As [`Db::delete_user`](super::Db::delete_user): deletes every slot of the user but
    /// `keep`'s, which ends those sessions at once; counts the ones that were live.
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`].
    pub fn delete_user(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
        let generation = self.generation()?;
        let mut deleted = 0;
        for n in 0..self.slots {
            let Some(id) = self.slot_holder(user_id, n)? else {
                continue;
            };
            if keep == Some(id.as_str()) {
                continue;
            }
            let record = self.record(&id, None)?;
            if record.is_some_and(|r| r.generation == generation && r.user_id == user_id) {
                deleted += 1;
            }
            self.kv.delete(&layout::slot_key(user_id, n))?;
        }
        Ok(deleted)
    }

    /// As [`Db::delete_all`](super::Db::delete_all): counts the live sessions, then writes a
    /// fresh store generation, which ends every one of them in one write. Their keys are
    /// the cleanup's.
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`].
    pub fn delete_all(&self) -> Result<u64> {
        let generation = self.generation()?;
        let mut count = 0;
        for key in self.kv.get_keys()? {
            if let KeyKind::Session(id) = KeyKind::of(&key)
                && let Some(record) = self.record(&id, None)?
                && record.generation == generation
                && self.holds_slot(&id, &record, false)?
            {
                count += 1;
            }
        }
        self.put(
            layout::GEN_KEY,
            &GenRecord {
                generation: layout::random_tag()?,
            },
        )?;
        Ok(count)
    }

    /// As [`Db::list_user`](super::Db::list_user): the live sessions in the user's slots.
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`].
    pub fn list_user(&self, user_id: &str, now: u64) -> Result<Vec<SessionRow>> {
        let generation = self.generation()?;
        let mut rows = self.user_sessions(user_id, now, &generation, 0..self.slots)?;
        rows.sort_by_key(|row| std::cmp::Reverse((row.last_activity, row.created_at)));
        Ok(rows)
    }

    fn user_sessions(
        &self,
        user_id: &str,
        now: u64,
        generation: &str,
        slots: impl IntoIterator<Item = u32>,
    ) -> Result<Vec<SessionRow>> {
        let mut rows = Vec::new();
        for n in slots {
            if let Some(id) = self.slot_holder(user_id, n)?
                && let Some(row) = self.live(&id, generation, true, None)?
                && row.expires_at > now
                && row.user_id == user_id
            {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// As [`Db::delete_expired`](super::Db::delete_expired): deletes at most `limit` expired
    /// live sessions (counted), and on the way the keys of dead and deleted sessions and
    /// orphans (not counted), looking at no more than `scan` sessions and orphans when it is
    /// set. Unlike a SQL `DELETE … LIMIT`, finding the expired ones means reading each session
    /// (two to four round trips): a whole pass over a store of 40,000 sessions held the create
    /// that ran it past its deadline (seen in the `--stores` bench), and on Akamai it would
    /// spend minutes of the read budget, hence the bound for a create's cleanup. Each scan
    /// visits the keys in an order of its own (a shuffle), so successive bounded passes reach
    /// every session, and concurrent cleanups seldom read the same session at the same moment,
    /// which is when both count it; the record is deleted first, so a session is never seen
    /// without its secret key (which would bring its first secret back).
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`].
    pub fn delete_expired(&self, now: u64, limit: u32, scan: Option<u32>) -> Result<u64> {
        let mut keys = self.kv.get_keys()?;
        let known: Known = keys.iter().cloned().collect();
        let generation = self.generation()?;
        shuffle(&mut keys)?;
        let (mut deleted, mut examined) = (0u64, 0u32);
        for key in &keys {
            if deleted >= u64::from(limit) || scan.is_some_and(|scan| examined >= scan) {
                break;
            }
            match KeyKind::of(key) {
                KeyKind::Session(id) => {
                    examined += 1;
                    match self.get::<StoredSession>(key)? {
                        Some(StoredSession::Live(record)) => {
                            let live = record.generation == generation
                                && self.holds_slot(&id, &record, false)?;
                            if !live {
                                // Evicted, invalidated: nothing can make it live again. But a
                                // create that lost its slot after writing the record rewrites it
                                // for the next slot it tries, under the same id: a record younger
                                // than the create grace may be that create's, and deleting it
                                // would leave the create's answered token dead.
                                if record.created_at.saturating_add(CREATE_GRACE_MS) <= now {
                                    self.delete_session_keys(&id, &known)?;
                                }
                            } else if self.row(&id, *record, Some(&known))?.expires_at <= now {
                                self.delete_session_keys(&id, &known)?;
                                deleted += 1;
                            }
                        }
                        Some(StoredSession::Deleted { .. }) => {
                            self.delete_session_keys(&id, &known)?
                        }
                        None => {}
                    }
                }
                KeyKind::Secret(id) | KeyKind::Activity(id)
                    if !known.contains(&layout::session_key(&id))
                        && self.kv.get(&layout::session_key(&id))?.is_none() =>
                {
                    examined += 1;
                    self.kv.delete(key)?;
                }
                _ => {}
            }
        }
        Ok(deleted)
    }

    fn delete_session_keys(&self, id: &str, known: &Known) -> Result<()> {
        self.kv.delete(&layout::session_key(id))?;
        for key in [layout::secret_key(id), layout::activity_key(id)] {
            if known.contains(&key) {
                self.kv.delete(&key)?;
            }
        }
        Ok(())
    }

    /// As [`Db::stats`](super::Db::stats), over one scan of the store.
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`].
    pub fn stats(&self, now: u64) -> Result<StoreStats> {
        let keys = self.kv.get_keys()?;
        let known: Known = keys.iter().cloned().collect();
        let generation = self.generation()?;
        let (mut active, mut expired, mut users) = (0, 0, BTreeSet::new());
        for key in &keys {
            if let KeyKind::Session(id) = KeyKind::of(key)
                && let Some(row) = self.live(&id, &generation, false, Some(&known))?
            {
                if row.expires_at > now {
                    active += 1;
                    users.insert(row.user_id);
                } else {
                    expired += 1;
                }
            }
        }
        Ok(StoreStats {
            active_sessions: active,
            active_users: users.len() as u64,
            expired,
            last_cleanup_at: self.last_cleanup_at()?,
        })
    }

    /// As [`Db::users_in_range`](super::Db::users_in_range): the users are found in the slot
    /// keys' names (the hex keeps byte order), then their slots are read.
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`].
    pub fn users_in_range(
        &self,
        from: &str,
        below: &str,
        except: &str,
        now: u64,
        limit: u32,
    ) -> Result<Vec<UserRow>> {
        let mut slots: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for key in self.kv.get_keys()? {
            if let KeyKind::Slot(user, n) = KeyKind::of(&key)
                && user.as_str() >= from
                && user.as_str() < below
                && user != except
                && n < self.slots
            {
                slots.entry(user).or_default().push(n);
            }
        }
        let generation = self.generation()?;
        let mut users = Vec::new();
        for (user_id, user_slots) in slots {
            if users.len() >= limit as usize {
                break;
            }
            let rows = self.user_sessions(&user_id, now, &generation, user_slots)?;
            if let Some(last_activity) = rows.iter().map(|r| r.last_activity).max() {
                users.push(UserRow {
                    user_id,
                    sessions: rows.len() as u64,
                    last_activity,
                });
            }
        }
        Ok(users)
    }

    /// As [`Db::claim_cleanup`](super::Db::claim_cleanup): writes a random claim and reads
    /// it back; of concurrent claimers, those whose write another's overwrote before their
    /// read back lose.
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`].
    pub fn claim_cleanup(&self, now: u64, interval_ms: u64) -> Result<bool> {
        if self.last_cleanup_at()? > now.saturating_sub(interval_ms) {
            return Ok(false);
        }
        let claim = layout::random_tag()?;
        self.put(
            layout::CLEANUP_KEY,
            &CleanupRecord {
                last_cleanup_at: now,
                claim: claim.clone(),
            },
        )?;
        Ok(self
            .get::<CleanupRecord>(layout::CLEANUP_KEY)?
            .is_some_and(|c| c.claim == claim))
    }

    /// As [`Db::mark_cleanup`](super::Db::mark_cleanup).
    ///
    /// # Errors
    ///
    /// As [`KvStore::find`].
    pub fn mark_cleanup(&self, now: u64) -> Result<()> {
        self.put(
            layout::CLEANUP_KEY,
            &CleanupRecord {
                last_cleanup_at: now,
                claim: String::new(),
            },
        )
    }
}

fn session_record(row: &SessionRow, slot: u32, generation: &str) -> SessionRecord {
    SessionRecord {
        user_id: row.user_id.clone(),
        slot,
        generation: generation.to_owned(),
        created_at: row.created_at,
        expires_at: row.expires_at,
        absolute_expires_at: row.absolute_expires_at,
        idle_timeout: row.idle_timeout,
        metadata: row.metadata.clone(),
        secret_hash: layout::hash_hex(&row.secret_hash),
        client_addr: row.client_addr.clone(),
        user_agent: row.user_agent.clone(),
    }
}

fn activity_of(row: &SessionRow, last_activity: u64, expires_at: u64) -> ActivityRecord {
    ActivityRecord {
        last_activity,
        expires_at,
        client_addr: row.client_addr.clone(),
        user_agent: row.user_agent.clone(),
    }
}

/// On a retry, one of `choices` at random (`None` on a first try, or with no choice).
fn pick(attempt: u32, choices: &[u32]) -> Option<u32> {
    if attempt == 0 || choices.is_empty() {
        return None;
    }
    let n = random_u16().ok()?;
    choices.get(usize::from(n) % choices.len()).copied()
}

fn random_u16() -> Result<u16> {
    let mut bytes = [0u8; 2];
    getrandom::fill(&mut bytes)
        .map_err(|err| StoreError::KeyValue(format!("no randomness: {err}")))?;
    Ok(u16::from_le_bytes(bytes))
}

/// Puts `keys` in a random order (Fisher-Yates on xorshift64* from one OS-random seed: the
/// order only has to differ between cleanups, not to be unpredictable). A rotation of the
/// list was not enough: a cleanup that started behind another skipped the keys already
/// deleted, caught up, and then counted every session the other one did.
fn shuffle(keys: &mut [String]) -> Result<()> {
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed)
        .map_err(|err| StoreError::KeyValue(format!("no randomness: {err}")))?;
    let mut state = u64::from_le_bytes(seed) | 1;
    for i in (1..keys.len()).rev() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let random = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let j = usize::try_from(random % (i as u64 + 1)).unwrap_or(0);
        keys.swap(i, j);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RetiredSecrets, SessionRow};
    use memory::MemoryKeyValue;

    const NOW: u64 = 1_800_000_000_000;

    /// A session of alice's, `id`, created at `created_at` (shared with `read_ahead`'s tests).
    pub(super) fn row(id: &str, created_at: u64) -> SessionRow {
        SessionRow {
            id: id.to_owned(),
            secret_hash: vec![7; 32],
            user_id: "alice".to_owned(),
            created_at,
            last_activity: created_at,
            expires_at: created_at + 3_600_000,
            absolute_expires_at: created_at + 86_400_000,
            idle_timeout: 3_600,
            metadata: "{}".to_owned(),
            retired_secrets: RetiredSecrets::default(),
            rotated_at: 0,
            client_addr: None,
            user_agent: None,
        }
    }

    /// A session `id` of alice's created at `created_at` whose slot another session has since
    /// taken, as a create that lost its slot leaves it before it retries; whether a cleanup at
    /// `NOW` deletes its record.
    fn cleanup_deletes_a_record_that_lost_its_slot(created_at: u64) -> bool {
        let kv = MemoryKeyValue::new();
        let store = KvStore::new(Box::new(kv.clone()), 5).unwrap();
        let id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
        store
            .insert(&row(id, created_at), created_at, 5, false)
            .unwrap()
            .unwrap();
        store
            .put(
                &layout::slot_key("alice", 0),
                &SlotRecord {
                    session_id: "1a2b3c4d-5e6f-4a0b-9c1d-2e3f4a5b6c7d".to_owned(),
                    taken_at: created_at,
                },
            )
            .unwrap();
        assert!(store.find(id).unwrap().is_none(), "it has lost its slot");
        store.delete_expired(NOW, 100, None).unwrap();
        !kv.snapshot().contains_key(&layout::session_key(id))
    }

    /// Counts the reads made of the store it wraps.
    /// Records the keys read from the store it wraps, in order (shared with `read_ahead`'s
    /// tests).
    #[derive(Debug)]
    pub(super) struct Recording {
        pub(super) inner: MemoryKeyValue,
        pub(super) reads: std::rc::Rc<std::cell::RefCell<Vec<String>>>,
    }

    impl KeyValue for Recording {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
            self.reads.borrow_mut().push(key.to_owned());
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<()> {
            self.inner.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<()> {
            self.inner.delete(key)
        }
        fn get_keys(&self) -> Result<Vec<String>> {
            self.inner.get_keys()
        }
    }

    fn cleanup_reads(scan: Option<u32>) -> u32 {
        let reads = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let store = KvStore::new(
            Box::new(Recording {
                inner: MemoryKeyValue::new(),
                reads: reads.clone(),
            }),
            5,
        )
        .unwrap();
        for n in 0..60u32 {
            let mut session = row(&format!("0f1e2d3c-4b5a-4978-8695-a4b3c2d1{n:04x}"), NOW);
            session.user_id = format!("user-{n}");
            store.insert(&session, NOW, 5, false).unwrap().unwrap();
        }
        reads.borrow_mut().clear();
        assert_eq!(store.delete_expired(NOW + 1_000, 500, scan).unwrap(), 0);
        u32::try_from(reads.borrow().len()).unwrap()
    }

    #[test]
    fn a_bounded_cleanup_looks_at_no_more_sessions_than_its_bound() {
        // The generation, then at most four reads per session looked at.
        let bounded = cleanup_reads(Some(10));
        assert!(bounded <= 1 + 4 * 10, "{bounded} reads");
        // Positive control: an unbounded one reads every session.
        let whole = cleanup_reads(None);
        assert!(whole >= 60 * 2, "{whole} reads");
    }

    #[test]
    fn the_cleanup_leaves_a_young_record_that_lost_its_slot_to_its_create_s_retry() {
        assert!(!cleanup_deletes_a_record_that_lost_its_slot(NOW - 1_000));
        // Positive control: past the create grace, the dead record goes.
        assert!(cleanup_deletes_a_record_that_lost_its_slot(
            NOW - CREATE_GRACE_MS - 1
        ));
    }
}
