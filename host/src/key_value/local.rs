//! Spin's own key-value store (`type = "spin"`): one SQLite table, `spin_key_value (store,
//! key, value)`, keyed by label and key, as Spin's `key-value-spin` crate creates it, so a file
//! either of them wrote the other reads.
//!
//! One connection per store, opened at its first use (as Spin does), in WAL mode with a busy
//! timeout, so that two hosts on one file (two replicas, or `serve` beside an operator command)
//! wait for each other's writes instead of failing. Every statement runs on tokio's blocking
//! pool: a write queued behind another process's lock never holds a runtime worker.

use super::errors::{KeyValueError as Error, local_error};
use crate::sqlite::{BUSY_TIMEOUT, Location, Synchronous};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::{Arc, Mutex, OnceLock};

/// One label's rows in a Spin key-value file (or in memory).
#[derive(Debug)]
pub struct LocalStore {
    label: String,
    location: Location,
    synchronous: Synchronous,
    connection: OnceLock<Arc<Mutex<Connection>>>,
}

impl LocalStore {
    pub(super) fn new(label: &str, location: Location, synchronous: Synchronous) -> Self {
        Self {
            label: label.to_owned(),
            location,
            synchronous,
            connection: OnceLock::new(),
        }
    }

    /// Where the rows live.
    pub fn location(&self) -> &Location {
        &self.location
    }

    fn connection(&self) -> Result<Arc<Mutex<Connection>>, Error> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        // Two first uses may race; the loser's connection is dropped, which costs nothing.
        let opened = Arc::new(Mutex::new(self.open()?));
        Ok(self.connection.get_or_init(|| opened).clone())
    }

    fn open(&self) -> Result<Connection, Error> {
        if let Location::File(path) = &self.location
            && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|err| {
                Error::Other(format!("cannot create {}: {err}", parent.display()))
            })?;
        }
        self.connect().map_err(|err| local_error(&err))
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let connection = match &self.location {
            Location::Memory => Connection::open_in_memory()?,
            Location::File(path) => {
                let connection = Connection::open(path)?;
                connection.busy_timeout(BUSY_TIMEOUT)?;
                connection.pragma_update(None, "journal_mode", "WAL")?;
                connection.pragma_update(
                    None,
                    "synchronous",
                    match self.synchronous {
                        Synchronous::Normal => "NORMAL",
                        Synchronous::Full => "FULL",
                    },
                )?;
                connection
            }
        };
        // Spin's schema, byte for byte in effect: its files and ours are one format.
        connection.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
            [],
        )?;
        Ok(connection)
    }

    /// Runs `op` on this store's connection on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection, &str) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let connection = self.connection()?;
        let label = self.label.clone();
        tokio::task::spawn_blocking(move || {
            // A panic inside rusqlite while the lock was held leaves a connection whose state is
            // still SQLite's own and consistent, so a poisoned lock is taken as it is.
            let connection = connection.lock().unwrap_or_else(|p| p.into_inner());
            op(&connection, &label).map_err(|err| local_error(&err))
        })
        .await
        .map_err(|err| Error::Other(format!("key-value statement did not finish: {err}")))?
    }

    pub(super) async fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.run(move |c, label| {
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row(params![label, key], |row| row.get(0))
                .optional()
        })
        .await
    }

    pub(super) async fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.run(move |c, label| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![label, key, value])
            .map(drop)
        })
        .await
    }

    pub(super) async fn delete(&self, key: String) -> Result<(), Error> {
        self.run(move |c, label| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute(params![label, key])
                .map(drop)
        })
        .await
    }

    pub(super) async fn exists(&self, key: String) -> Result<bool, Error> {
        self.run(move |c, label| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .exists(params![label, key])
        })
        .await
    }

    pub(super) async fn get_keys(&self) -> Result<Vec<String>, Error> {
        self.run(move |c, label| {
            c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?
                .query_map(params![label], |row| row.get(0))?
                .collect()
        })
        .await
    }
}
