//! A key-value store on Redis (`type = "redis"`), as Spin's `key-value-redis` crate maps it:
//! a key is a Redis key, `get`/`set`/`delete`/`exists` are `GET`/`SET`/`DEL`/`EXISTS`, and
//! `get-keys` is `KEYS *` (every key of the Redis database, so give the store a database of
//! its own).
//!
//! One multiplexed connection per store (redis-rs's `ConnectionManager`), made at the first
//! call: an instance's calls share it, so a request pays no handshake. Faults are bounded and
//! passing, never a hang and never a restart:
//!
//! - a connection attempt gives up after [`RedisOptions::connect_timeout`];
//! - a command gives up after [`RedisOptions::response_timeout`] (a Redis that accepts the
//!   connection but does not answer, such as a stopped process);
//! - a whole call, reconnection included, gives up after [`RedisOptions::call_timeout`].
//!
//! Each failure reaches the guest as `other("Redis at redis://HOST:PORT …")`, which the
//! component answers with 503. A dropped connection is replaced in the background at the next
//! call, so the first call after Redis comes back succeeds, or the one after it.

use super::errors::{KeyValueError as Error, redis_error};
use super::runtime_config::redis_address;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long a Redis store waits; see the module's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub call_timeout: Duration,
}

impl Default for RedisOptions {
    /// 1 s to connect, 1 s for an answer, 2 s for a call: a validate is at most a few calls,
    /// so a request against a dead or stopped Redis answers 503 well inside `serve`'s 10 s
    /// request timeout and Spin's.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            call_timeout: Duration::from_secs(2),
        }
    }
}

/// One Redis database, as a key-value store.
pub struct RedisStore {
    client: redis::Client,
    /// `redis://HOST:PORT`, for errors: the URL may hold a password.
    address: String,
    options: RedisOptions,
    connection: OnceCell<ConnectionManager>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.address)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the Redis at `url`; nothing connects yet.
    ///
    /// # Errors
    ///
    /// The URL's problem (never the URL itself) when redis-rs cannot parse it.
    pub(super) fn new(url: &str, options: RedisOptions) -> Result<Self, String> {
        let address = redis_address(url);
        let client = redis::Client::open(url)
            .map_err(|err| format!("{address}: not a usable Redis URL ({:?})", err.kind()))?;
        Ok(Self {
            client,
            address,
            options,
            connection: OnceCell::new(),
        })
    }

    /// `redis://HOST:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    async fn connection(&self) -> Result<ConnectionManager, Error> {
        let options = self.options;
        self.connection
            .get_or_try_init(|| async {
                // Few quick retries: a caller is waiting. A later call starts another round.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(options.connect_timeout))
                    .set_response_timeout(Some(options.response_timeout))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(250));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
                    .map_err(|err| redis_error(&self.address, &err))
            })
            .await
            .cloned()
    }

    /// Runs one command, within the call timeout.
    async fn call<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, Error> {
        let run = async {
            let mut connection = self.connection().await?;
            command
                .query_async::<T>(&mut connection)
                .await
                .map_err(|err| redis_error(&self.address, &err))
        };
        match tokio::time::timeout(self.options.call_timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(Error::Other(format!(
                "Redis at {} did not answer within {:?}",
                self.address, self.options.call_timeout
            ))),
        }
    }

    pub(super) async fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.call(redis::cmd("GET").arg(key).clone()).await
    }

    pub(super) async fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.call(redis::cmd("SET").arg(key).arg(value).clone())
            .await
    }

    pub(super) async fn delete(&self, key: String) -> Result<(), Error> {
        self.call::<i64>(redis::cmd("DEL").arg(key).clone())
            .await
            .map(drop)
    }

    pub(super) async fn exists(&self, key: String) -> Result<bool, Error> {
        self.call(redis::cmd("EXISTS").arg(key).clone()).await
    }

    pub(super) async fn get_keys(&self) -> Result<Vec<String>, Error> {
        self.call(redis::cmd("KEYS").arg("*").clone()).await
    }
}
