//! The guest's `connection` resource, and what becomes of its server connection when the
//! guest drops it.

use super::compat::SpinCompat;
use super::options::PoolOptions;
use super::transactions::Transaction;
use deadpool_postgres::{Object, Pool};

/// The guest's `connection` resource: one pooled server connection, held from `open` to drop.
pub struct Connection {
    /// `None` only while dropping.
    pub(super) client: Option<Object>,
    pub(super) pool: Pool,
    pub(super) shown: String,
    pub(super) options: PoolOptions,
    pub(super) transaction: Transaction,
    pub(super) compat: SpinCompat,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.shown)
            .field("transaction", &self.transaction)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if self.transaction == Transaction::None {
            return; // back to the pool as it is
        }
        // A transaction may be open: roll it back before anyone else gets the connection, off
        // the guest's path. Without a runtime (or if the rollback fails) close the connection
        // instead, which makes the server roll back.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if self.transaction == Transaction::Open => {
                runtime.spawn(async move {
                    if client.batch_execute("ROLLBACK").await.is_err() {
                        drop(Object::take(client));
                    }
                });
            }
            _ => drop(Object::take(client)),
        }
    }
}

/// The guest's `spin:postgres@4.2.0` `connection`: a [`Connection`] behind a lock, so that an
/// async call can hold it across its awaits without holding the store.
#[derive(Debug, Clone)]
pub struct SharedConnection(pub(super) std::sync::Arc<tokio::sync::Mutex<Connection>>);

/// The guest's `spin:postgres@4.2.0` `connection-builder`: the address, and the root
/// certificate it asked to trust.
#[derive(Debug)]
pub struct ConnectionBuilder {
    pub(super) address: String,
    pub(super) ca_root: Option<String>,
}
