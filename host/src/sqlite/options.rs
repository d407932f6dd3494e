//! How the `default` database is opened: where it lives, how much a commit waits for the disk,
//! and when the WAL is truncated.

use std::path::PathBuf;
use std::time::Duration;

/// How long a statement waits for SQLite's write lock, and an `open` for a free connection.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The WAL size past which a commit on the writer truncates the WAL (see
/// [`DatabaseOptions::wal_checkpoint_bytes`]).
pub const WAL_CHECKPOINT_BYTES: u64 = 4 << 20;

/// Where the `default` database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// One in-memory database, shared by every instance of this host, gone at exit.
    Memory,
    /// A database file, created if missing (with its parent directories).
    File(PathBuf),
}

impl Location {
    /// `:memory:` means [`Location::Memory`]; anything else is a file path.
    pub fn parse(text: &str) -> Self {
        if text == ":memory:" {
            Self::Memory
        } else {
            Self::File(PathBuf::from(text))
        }
    }
}

/// SQLite's `synchronous` setting for a file database: how much a commit waits for the disk.
///
/// In WAL mode `Normal` loses nothing on a process crash but may lose the newest commits on a
/// power loss or kernel crash; `Full` syncs the WAL on every commit, so nothing acknowledged is
/// lost even then, at the cost of one `fsync` per commit (SECURITY.md, "Durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=NORMAL` (the default).
    #[default]
    Normal,
    /// `synchronous=FULL`.
    Full,
}

/// A `synchronous` value that is neither `normal` nor `full`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("synchronous must be `normal` or `full`, not {0:?}")]
pub struct SynchronousError(String);

impl std::str::FromStr for Synchronous {
    type Err = SynchronousError;

    /// `normal` or `full`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(Self::Normal),
            "full" => Ok(Self::Full),
            _ => Err(SynchronousError(text.to_owned())),
        }
    }
}

impl Synchronous {
    pub(super) fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// How the `default` database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseOptions {
    /// `synchronous` on every connection.
    pub synchronous: Synchronous,
    /// After a statement on the writer leaves it in autocommit mode (a commit), a WAL larger
    /// than this is checkpointed and truncated (`wal_checkpoint(TRUNCATE)`) on the writer.
    /// `None` leaves the WAL to SQLite's passive auto-checkpoint, which under steady writes and
    /// overlapping readers never finds the gap it needs to reset the file.
    pub wal_checkpoint_bytes: Option<u64>,
    /// Spin's way, for measuring what Spin pays (a file database only): every guest `open`
    /// gets a connection of its own, opened on its first statement with rusqlite's defaults
    /// (a 5 s busy timeout, nothing else), and the file is in rollback-journal mode, as Spin's
    /// `sqlite-inproc` leaves it. Slower than the pool; not for production.
    pub connection_per_open: bool,
    /// Whether the component is granted this database (Spin's `sqlite_databases =
    /// ["default"]`). When it is not, as on a platform without SQLite, every `open` is refused
    /// with `access-denied`, Spin's answer for a database the manifest does not list.
    pub granted: bool,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            wal_checkpoint_bytes: Some(WAL_CHECKPOINT_BYTES),
            connection_per_open: false,
            granted: true,
        }
    }
}
