//! Every failure of the stores, as one type that names no interface version: each version of
//! the key-value interface turns it into its own error variant where it answers the guest
//! (`From<KeyValueError>` in `key_value` for 2.0.0 and in `v3_0` for 3.0.0), so the stores
//! and the guest's handle use no bindings. The interface has one variant for every backend
//! failure, `other`, with a sentence for operators. Redis errors name the server as
//! `redis://HOST:PORT`, never the URL (which may hold a password).

/// Why a store did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueError {
    /// No store has the label.
    NoSuchStore,
    /// The store exists, but the component may not open it.
    AccessDenied,
    /// The backend failed: Redis down or too slow, a file that cannot be written.
    Other(String),
}

pub(super) fn local_error(err: &rusqlite::Error) -> KeyValueError {
    KeyValueError::Other(format!("key-value file: {err}"))
}

pub(super) fn redis_error(address: &str, err: &redis::RedisError) -> KeyValueError {
    let what = if err.is_timeout() {
        "did not answer in time".to_owned()
    } else if err.is_connection_refusal() {
        format!("refused the connection ({err})")
    } else if err.is_io_error() || err.is_connection_dropped() {
        format!("cannot be reached ({err})")
    } else {
        format!("failed: {err}")
    };
    KeyValueError::Other(format!("Redis at {address} {what}"))
}
