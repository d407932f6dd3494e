//! The store's records as the engine sees them, whatever the backend: a session row, its
//! rotation chain and device, and the counters and user summaries of `stats` and the admin
//! console.

/// One stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub secret_hash: Vec<u8>,
    pub user_id: String,
    pub created_at: u64,
    pub last_activity: u64,
    pub expires_at: u64,
    pub absolute_expires_at: u64,
    pub idle_timeout: u32,
    pub metadata: String,
    /// The secrets rotates replaced, newest first (empty before any rotate): presenting one
    /// again is the sign of a stolen token.
    pub retired_secrets: RetiredSecrets,
    /// When the last rotate happened (0: never).
    pub rotated_at: u64,
    /// The client's address and user agent at the create or the last activity write.
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

/// The SHA-256 hashes of the secrets a session's rotates replaced, newest first, at most
/// [`RetiredSecrets::MAX`] of them: the session's whole rotation chain as far as a thief can
/// use it. Stored as one column (`previous_secret_hash`, the hashes back to back), so a rotate
/// stays one guarded `UPDATE` and reading a session stays one row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetiredSecrets(Vec<u8>);

impl RetiredSecrets {
    /// Secrets remembered per session: 16 rotates back, 512 bytes a session at most. A token
    /// retired longer ago than that is only refused, not treated as stolen; a client that
    /// rotates that often in a session's life is rare, and a thief who rotates 16 times
    /// before the owner returns has held the session for as long.
    pub const MAX: usize = 16;
    const HASH_BYTES: usize = 32;

    /// The chain as stored. A value that is not whole hashes (none is ever written) keeps its
    /// whole hashes only.
    pub fn from_stored(bytes: Option<&[u8]>) -> Self {
        let bytes = bytes.unwrap_or_default();
        let whole = bytes.len() - bytes.len() % Self::HASH_BYTES;
        Self(bytes[..whole.min(Self::MAX * Self::HASH_BYTES)].to_vec())
    }

    /// The chain after a rotate retires `secret_hash`: it comes first, the oldest drops off.
    pub fn retire(&self, secret_hash: &[u8]) -> Self {
        let mut chain = Vec::with_capacity(Self::MAX * Self::HASH_BYTES);
        chain.extend_from_slice(secret_hash);
        let keep = (Self::MAX - 1) * Self::HASH_BYTES;
        chain.extend_from_slice(&self.0[..self.0.len().min(keep)]);
        Self(chain)
    }

    /// The hashes, newest first.
    pub fn hashes(&self) -> impl Iterator<Item = &[u8]> {
        self.0.chunks_exact(Self::HASH_BYTES)
    }

    /// The stored value: `None` for an empty chain.
    pub fn stored(&self) -> Option<&[u8]> {
        (!self.0.is_empty()).then_some(self.0.as_slice())
    }
}

/// Where a call came from, as sessions record it ("your devices").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

impl Device {
    /// Longest address kept (an IPv6 address with a port and a zone fits).
    pub const MAX_ADDR_CHARS: usize = 64;
    /// Longest user agent kept.
    pub const MAX_USER_AGENT_CHARS: usize = 256;

    /// A device from what the caller saw, each part cut to its cap; empty parts are absent.
    pub fn new(client_addr: Option<&str>, user_agent: Option<&str>) -> Self {
        let cut = |text: Option<&str>, max: usize| {
            text.map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| t.chars().filter(|c| !c.is_control()).take(max).collect())
        };
        Self {
            client_addr: cut(client_addr, Self::MAX_ADDR_CHARS),
            user_agent: cut(user_agent, Self::MAX_USER_AGENT_CHARS),
        }
    }
}

/// Counters for `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub active_sessions: u64,
    pub active_users: u64,
    pub expired: u64,
    pub last_cleanup_at: u64,
}

/// A user with unexpired sessions, for the admin's list of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub user_id: String,
    pub sessions: u64,
    pub last_activity: u64,
}

impl SessionRow {
    /// What an activity write with `device` leaves in the row (parts left out stay).
    pub fn record_device(&mut self, device: Option<&Device>) {
        if let Some(device) = device {
            if device.client_addr.is_some() {
                self.client_addr.clone_from(&device.client_addr);
            }
            if device.user_agent.is_some() {
                self.user_agent.clone_from(&device.user_agent);
            }
        }
    }
}
