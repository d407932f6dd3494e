//! Keeping the WAL bounded: with one writer, the writer itself truncates a WAL grown past
//! [`DatabaseOptions::wal_checkpoint_bytes`](super::DatabaseOptions::wal_checkpoint_bytes)
//! after a commit, rather than waiting for the cleanup timer or for a gap between readers
//! that a busy machine may never leave.

use super::options::BUSY_TIMEOUT;
use super::pool::Database;
use std::time::Duration;

/// How long the writer's checkpoint waits for readers to leave the WAL before giving up until
/// the next commit; readers hold one statement at a time, so this is plenty, and it bounds what
/// a checkpoint can add to the write that triggered it.
const CHECKPOINT_BUSY_TIMEOUT: Duration = Duration::from_millis(250);

impl Database {
    /// After a commit on the writer, truncates a WAL grown past the configured size. A busy
    /// or failed checkpoint leaves the WAL for the next commit to try: the statement that
    /// triggered it has already committed and must still succeed.
    pub(super) fn checkpoint_if_large(&self, writer: &rusqlite::Connection) {
        let (Some(limit), Some(wal)) = (self.options.wal_checkpoint_bytes, self.wal_path()) else {
            return;
        };
        if std::fs::metadata(&wal).map_or(0, |m| m.len()) <= limit {
            return;
        }
        // TRUNCATE waits (busy handler) for readers still on the old WAL frames; readers that
        // start meanwhile read the database file, so it succeeds under any steady load.
        let _ = writer.busy_timeout(CHECKPOINT_BUSY_TIMEOUT);
        let _ = writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = writer.busy_timeout(BUSY_TIMEOUT);
    }
}
