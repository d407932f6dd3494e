//! What a component instance keeps across calls, for both builds (the WASIp3 shell in `p3/`
//! includes this file): its database handle, on the SQL database or the key-value store the
//! settings choose (`crate::spin_key_value`, which each build provides). And the clock, read
//! once per call.
//!
//! Only the handle lives across calls. Spin gives a WASIp2 instance one request; it reuses a
//! WASIp3 instance for up to 128, 16 at once, interleaved at their awaits. The engine's work
//! is synchronous and never awaits, so one call has the handle from its first statement to
//! its last, and a transaction never spans an await; everything of one request (its id,
//! identity, cookies, CSRF decision, audit fields, its clock reading) lives in that call's
//! frame (`http::handle`'s context), never here.

use crate::config::{Backend, Config, Database};
use crate::session::engine::EngineError;
use crate::spin_postgres::SpinPostgres;
use crate::spin_sqlite::SpinSqlite;
use crate::store::{Db, Executor};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch from the WASI wall clock: the one place the clock is read.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

thread_local! {
    // The instance's database handle, opened on first use (the schema is checked when first
    // needed, see `Db::open_deferred`). A reused instance (WASIp3 on Spin 4.1) keeps its
    // connection, which is most of what reuse saves; a fresh one (WASIp2) loses nothing.
    static DB: RefCell<Option<Rc<Db>>> = const { RefCell::new(None) };
}

/// The instance's database handle on the backend `config` names. A failed open is not
/// remembered, so the next call tries again; a handle whose transaction may not have ended,
/// or whose database was unreachable, is replaced by a fresh one.
pub(crate) fn db(config: &Config) -> Result<Rc<Db>, EngineError> {
    DB.with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some(db) = slot.as_ref().filter(|db| !db.is_unsettled()) {
            return Ok(db.clone());
        }
        // Drop a stale handle (and its connection) before opening the next.
        *slot = None;
        let open_sql = |exec: Box<dyn Executor>| {
            // Migrations wait for the first write or failed read, so that a fresh instance's
            // validate is one statement.
            Db::open_deferred(exec)
        };
        let db = Rc::new(match config.backend()? {
            Backend::Sql(Database::Sqlite) => open_sql(Box::new(SpinSqlite::open()?)),
            Backend::Sql(Database::Postgres(url)) => open_sql(Box::new(SpinPostgres::open(url)?)),
            Backend::KeyValue(label) => {
                Db::open_key_value(crate::spin_key_value::open(label)?, *config.max_per_user()?)?
            }
        });
        *slot = Some(db.clone());
        Ok(db)
    })
}
