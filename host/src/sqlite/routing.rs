//! Which connection a statement runs on: the writer for anything that may write and for
//! transaction control, a reader for the rest, remembered per statement text.

use super::connection::Role;
use super::pool::{Database, Lease, PoolError, lock};
use crate::transaction_sql::{Effect, classify};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Distinct statements whose route (reader or writer) is remembered; the guest's set is far
/// smaller, and past this a statement is simply classified again.
const ROUTE_CACHE: usize = 256;

impl Database {
    /// The connection `statement` belongs on, if it was classified before.
    fn known_route(&self, statement: &str) -> Option<Role> {
        if self.readers.is_none() {
            return Some(Role::Writer);
        }
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(statement)
            .copied()
    }

    fn remember_route(&self, statement: &str, role: Role) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if routes.len() < ROUTE_CACHE {
            routes.insert(statement.into(), role);
        }
    }

    /// An idle reader for `statement`, if it is known to be a read-only statement and a
    /// reader is free right now; never waits.
    pub(super) fn idle_reader_for(self: &Arc<Self>, statement: &str) -> Option<Lease> {
        let readers = self.readers.as_ref()?;
        if self.known_route(statement) != Some(Role::Reader) {
            return None;
        }
        let conn = lock(&readers.pool).idle.pop()?;
        self.reads_in_place.fetch_add(1, Ordering::Relaxed);
        Some(Lease::new(conn, Role::Reader, self.clone()))
    }

    /// A connection for `statement` outside a transaction: the reader pool for a statement
    /// SQLite calls read-only that is not transaction control, else the writer. An unknown
    /// statement is prepared on a reader to find out (and kept in its statement cache).
    pub(super) fn lease_for(self: &Arc<Self>, statement: &str) -> Result<Lease, PoolError> {
        if let Some(role) = self.known_route(statement) {
            return self.acquire(role);
        }
        let reader = self.acquire(Role::Reader)?;
        // `None`: it does not prepare, possibly a schema the reader's snapshot does not have
        // yet; the writer prepares it, and reports its error if it has one too.
        let readonly = reader
            .conn()
            .prepare_cached(statement)
            .map(|stmt| stmt.readonly())
            .ok();
        match readonly {
            Some(true) if !is_transaction_control(statement) => {
                self.remember_route(statement, Role::Reader);
                Ok(reader)
            }
            Some(_) => {
                self.remember_route(statement, Role::Writer);
                drop(reader);
                self.acquire(Role::Writer)
            }
            None => {
                drop(reader);
                self.acquire(Role::Writer)
            }
        }
    }
}

/// `BEGIN`, `COMMIT`, `END`, `ROLLBACK`, `SAVEPOINT` and `RELEASE`, which
/// `sqlite3_stmt_readonly` reports as read-only although they open or close a transaction (and
/// so must run on the writer, where the transaction's writes will go).
fn is_transaction_control(statement: &str) -> bool {
    classify(statement) != Effect::Neither
}
