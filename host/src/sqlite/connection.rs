//! Opening one rusqlite connection with the settings a session store needs: WAL (or Spin's
//! rollback journal), `synchronous`, a bounded journal, a busy timeout and a statement cache,
//! and `query_only` on readers.

use super::options::{BUSY_TIMEOUT, DatabaseOptions, Location};
use std::time::Duration;

/// What a WAL reset truncates the file back to (`journal_size_limit`), so a WAL that SQLite's
/// own auto-checkpoint restarts does not keep the space of its largest burst.
const JOURNAL_SIZE_LIMIT: u64 = 4 << 20;

/// Prepared statements kept per connection; the guest uses a fixed, small set.
const STATEMENT_CACHE: usize = 64;

/// Which connection a statement runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The one connection that writes (and runs every transaction).
    Writer,
    /// One of the read-only pool.
    Reader,
}

pub(super) fn connect(
    location: &Location,
    options: DatabaseOptions,
    role: Role,
) -> rusqlite::Result<rusqlite::Connection> {
    let conn = match location {
        Location::Memory => rusqlite::Connection::open_in_memory()?,
        Location::File(path) => {
            let conn = rusqlite::Connection::open(path)?;
            // WAL lets readers run beside the writer; `synchronous` is the operator's choice
            // (NORMAL keeps every commit across a process crash, FULL across a power loss).
            // Spin's own SQLite never sets WAL, so its mode keeps the rollback journal.
            let journal = if options.connection_per_open {
                "DELETE"
            } else {
                "WAL"
            };
            set_journal_mode(&conn, journal)?;
            conn.pragma_update(None, "synchronous", options.synchronous.pragma())?;
            conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
            if role == Role::Reader {
                conn.pragma_update(None, "query_only", true)?;
            }
            conn
        }
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Sets the journal mode, waiting up to [`BUSY_TIMEOUT`] for other connections. SQLite answers
/// `SQLITE_BUSY` at once, without calling the busy handler, while another connection holds the
/// write lock of a file still in rollback-journal mode (two replicas starting together on a new
/// database, one of them already migrating), so this retries instead of failing the start.
fn set_journal_mode(conn: &rusqlite::Connection, mode: &str) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", mode) {
            Err(err)
                if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => return other,
        }
    }
}
