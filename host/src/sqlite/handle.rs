//! The guest's `connection` resource: what one handle holds between its statements.

use super::pool::{Database, Lease};
use std::sync::{Arc, Mutex};

/// The guest's `connection` resource: a pooled connection lent per statement, or kept for the
/// length of a transaction; returned when the transaction ends or the guest drops the handle.
#[derive(Debug)]
pub struct Connection {
    pub(super) in_transaction: Option<Lease>,
    pub(super) changes: u64,
    pub(super) last_insert_rowid: i64,
    pub(super) database: Arc<Database>,
    /// Under [`DatabaseOptions::connection_per_open`](super::DatabaseOptions::connection_per_open),
    /// this handle's own connection, once its first statement has opened it.
    pub(super) own: Option<Arc<Mutex<rusqlite::Connection>>>,
}

impl Connection {
    pub(super) fn new(database: Arc<Database>) -> Self {
        Self {
            in_transaction: None,
            changes: 0,
            last_insert_rowid: 0,
            database,
            own: None,
        }
    }
}

/// The guest's `spin:sqlite@3.1.0` `connection`: a [`Connection`] behind a lock, so that an
/// async call can hold it across its awaits without holding the store.
#[derive(Debug, Clone)]
pub struct SharedConnection(pub(super) Arc<tokio::sync::Mutex<Connection>>);
