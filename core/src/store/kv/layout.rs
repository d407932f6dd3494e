//! The key-value layout: every key the store writes and the JSON record under each, in one
//! place (docs/key-value.md explains why each is split the way it is). All keys start with
//! `zs:` so the store can share Spin's `default` store with the rest of an app.
//!
//! | key | record | written by |
//! |---|---|---|
//! | `zs:g` | [`GenRecord`] | `invalidate-all` only (a fresh random value) |
//! | `zs:s:<id>` | [`SessionRecord`] | `create`; a delete replaces it with a mark ([`StoredSession`]) |
//! | `zs:r:<id>` | [`SecretRecord`] | `rotate` only |
//! | `zs:a:<id>` | [`ActivityRecord`] | activity writes (validate, touch, extend) |
//! | `zs:u:<hex user>:<n>` | [`SlotRecord`] | `create` (takes or evicts), `invalidate-user` (deletes) |
//! | `zs:c` | [`CleanupRecord`] | the cleanup claim and mark |
//!
//! A session is live when its session record exists, slot `n` of its user (`n` below
//! `max_per_user`) names it, and its generation is the store's. Only a create writes a slot
//! or a session record, always with a new id (the slot first, then the record), so nothing
//! a delete removed can be written back.

use super::super::error::StoreError;
use super::super::rows::{Device, RetiredSecrets};
use serde::{Deserialize, Serialize};

/// Every key of ours starts with this.
pub const PREFIX: &str = "zs:";
/// The store's generation.
pub const GEN_KEY: &str = "zs:g";
/// The cleanup claim.
pub const CLEANUP_KEY: &str = "zs:c";
const SESSION: &str = "zs:s:";
const SECRET: &str = "zs:r:";
const ACTIVITY: &str = "zs:a:";
const SLOT: &str = "zs:u:";

/// Largest value Akamai's store (the strictest of Spin's) accepts.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Longest key Akamai's store accepts.
pub const MAX_KEY_BYTES: usize = 8 * 1024;

pub fn session_key(id: &str) -> String {
    format!("{SESSION}{id}")
}

pub fn secret_key(id: &str) -> String {
    format!("{SECRET}{id}")
}

pub fn activity_key(id: &str) -> String {
    format!("{ACTIVITY}{id}")
}

/// Slot `n` of `user_id`. The user id is hex-encoded: any id is a valid key of at most
/// `2 * MAX_USER_ID_BYTES` characters, and hex keeps the ids' byte order, which the admin
/// console's range scan relies on.
pub fn slot_key(user_id: &str, n: u32) -> String {
    format!("{SLOT}{}:{n}", hex(user_id.as_bytes()))
}

/// What a key of ours is, from its name alone (as `get_keys` lists them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Session(String),
    Secret(String),
    Activity(String),
    /// A user's slot: the user id and the slot number.
    Slot(String, u32),
    /// `zs:g`, `zs:c`, or a key that is not ours.
    Other,
}

impl KeyKind {
    pub fn of(key: &str) -> Self {
        let id = |prefix: &str| key.strip_prefix(prefix).map(str::to_owned);
        if let Some(id) = id(SESSION) {
            Self::Session(id)
        } else if let Some(id) = id(SECRET) {
            Self::Secret(id)
        } else if let Some(id) = id(ACTIVITY) {
            Self::Activity(id)
        } else if let Some((user, n)) = key.strip_prefix(SLOT).and_then(|s| s.rsplit_once(':'))
            && let (Some(user), Ok(n)) = (unhex(user), n.parse())
        {
            Self::Slot(user, n)
        } else {
            Self::Other
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A fresh random generation or claim: 16 bytes from the OS, hex.
pub fn random_tag() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|err| StoreError::KeyValue(format!("no randomness for a generation: {err}")))?;
    Ok(hex(&bytes))
}

/// `zs:g`: the store's generation; sessions created under another are dead. Absent means the
/// empty generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenRecord {
    #[serde(rename = "gen")]
    pub generation: String,
}

/// `zs:s:<id>`: what a create decided, never rewritten once published.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user_id: String,
    /// The user's slot this session took.
    pub slot: u32,
    /// The store's generation when it was created.
    #[serde(rename = "gen")]
    pub generation: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub absolute_expires_at: u64,
    pub idle_timeout: u32,
    pub metadata: String,
    /// SHA-256 of the first secret, hex.
    pub secret_hash: String,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

/// What is stored under `zs:s:<id>`: the session, or the mark a delete leaves in its place
/// (so that a create can tell a deleted session's slot, which is free, from a slot whose
/// create has not written its record yet, which is taken). The cleanup removes marks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredSession {
    /// Stored as `{"deleted":true}`.
    Deleted {
        deleted: bool,
    },
    Live(Box<SessionRecord>),
}

/// `zs:r:<id>`: the secret after the latest rotate, the secrets rotates retired (newest
/// first, hex), and the activity the rotate recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretRecord {
    pub secret_hash: String,
    pub retired: Vec<String>,
    pub rotated_at: u64,
    pub activity: ActivityRecord,
}

/// `zs:a:<id>` (and the activity inside a [`SecretRecord`]): the latest activity, expiry and
/// device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRecord {
    pub last_activity: u64,
    pub expires_at: u64,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

impl ActivityRecord {
    /// This activity with `device`'s parts replacing the recorded ones (absent parts stay).
    pub fn with_device(mut self, device: Option<&Device>) -> Self {
        if let Some(device) = device {
            if device.client_addr.is_some() {
                self.client_addr.clone_from(&device.client_addr);
            }
            if device.user_agent.is_some() {
                self.user_agent.clone_from(&device.user_agent);
            }
        }
        self
    }
}

/// `zs:u:<hex user>:<n>`: the session holding the slot, and when its create took it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotRecord {
    pub session_id: String,
    pub taken_at: u64,
}

/// `zs:c`: the last cleanup, and the claim of whoever claimed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CleanupRecord {
    pub last_cleanup_at: u64,
    pub claim: String,
}

/// A record as stored.
///
/// # Errors
///
/// [`StoreError::TooLarge`] when it would be over [`MAX_VALUE_BYTES`] (metadata is the only
/// part that can grow that large).
pub fn encode<T: Serialize>(key: &str, record: &T) -> Result<Vec<u8>, StoreError> {
    let value = serde_json::to_vec(record)
        .map_err(|err| StoreError::KeyValue(format!("encoding {key}: {err}")))?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::TooLarge(format!(
            "metadata too large for the key-value store: the session's record would be {} \
             bytes, over the {MAX_VALUE_BYTES} bytes a value may hold",
            value.len()
        )));
    }
    Ok(value)
}

/// A stored record.
///
/// # Errors
///
/// [`StoreError::KeyValue`] naming the key when the value is not such a record: a malformed
/// record is reported, never taken for a missing one.
pub fn decode<T: for<'de> Deserialize<'de>>(key: &str, value: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(value)
        .map_err(|err| StoreError::KeyValue(format!("malformed record under {key}: {err}")))
}

pub fn hash_hex(hash: &[u8]) -> String {
    hex(hash)
}

/// A hash stored as hex.
///
/// # Errors
///
/// [`StoreError::KeyValue`] naming the key when it is not hex.
pub fn hash_bytes(key: &str, text: &str) -> Result<Vec<u8>, StoreError> {
    if !text.len().is_multiple_of(2) {
        return Err(malformed_hash(key));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| malformed_hash(key))
        })
        .collect()
}

fn malformed_hash(key: &str) -> StoreError {
    StoreError::KeyValue(format!("malformed record under {key}: a hash is not hex"))
}

/// The retired chain as stored (hex hashes, newest first).
pub fn retired_hex(retired: &RetiredSecrets) -> Vec<String> {
    retired.hashes().map(hex).collect()
}

/// The retired chain from its stored form.
///
/// # Errors
///
/// As [`hash_bytes`].
pub fn retired_from(key: &str, hashes: &[String]) -> Result<RetiredSecrets, StoreError> {
    let mut bytes = Vec::new();
    for hash in hashes {
        bytes.extend(hash_bytes(key, hash)?);
    }
    Ok(RetiredSecrets::from_stored(Some(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_user_id_makes_a_bounded_key_that_names_it_back() {
        for user in ["alice", "a:b:c", "ü ñ 𝄞", "zs:u:", &"x".repeat(256)] {
            let key = slot_key(user, 7);
            assert!(key.len() <= 4 + 2 * 256 + 11, "{key}");
            assert_eq!(KeyKind::of(&key), KeyKind::Slot(user.to_owned(), 7));
        }
        assert_eq!(KeyKind::of("zs:s:abc"), KeyKind::Session("abc".into()));
        assert_eq!(KeyKind::of("zs:u:zz:1"), KeyKind::Other, "not hex");
        assert_eq!(KeyKind::of("other"), KeyKind::Other);
    }

    #[test]
    fn hex_keeps_byte_order() {
        let mut users = ["b", "a", "ab", "\u{e9}", "Z", "a\u{0}"];
        let mut keys: Vec<String> = users.iter().map(|u| hex(u.as_bytes())).collect();
        users.sort_unstable();
        keys.sort_unstable();
        let back: Vec<String> = keys.iter().map(|k| unhex(k).unwrap()).collect();
        assert_eq!(back, users);
    }

    #[test]
    fn a_malformed_record_is_an_error_naming_its_key() {
        let err = decode::<SlotRecord>("zs:u:61:0", b"{not json").unwrap_err();
        assert!(
            matches!(&err, StoreError::KeyValue(text) if text.contains("zs:u:61:0")),
            "{err:?}"
        );
        let ok: SlotRecord = decode("k", br#"{"session_id":"x","taken_at":1}"#).unwrap();
        assert_eq!(ok.session_id, "x");
    }

    #[test]
    fn a_record_over_the_value_limit_is_refused() {
        let big = SlotRecord {
            session_id: "x".repeat(MAX_VALUE_BYTES),
            taken_at: 0,
        };
        let err = encode("zs:u:61:0", &big).unwrap_err();
        assert!(matches!(err, StoreError::TooLarge(text) if text.contains("over")));
        assert!(
            encode(
                "k",
                &SlotRecord {
                    session_id: "x".into(),
                    taken_at: 0,
                }
            )
            .is_ok()
        );
    }
}
