//! Every failure of a key-value backend turned into the `fermyon:spin/key-value` error Spin
//! gives, here and nowhere else: the interface has one variant for all of them, `other`, with
//! a sentence for operators. Redis errors name the server as `redis://HOST:PORT`, never the
//! URL (which may hold a password).

use crate::bindings::fermyon::spin::key_value::Error;

pub(super) fn local_error(err: &rusqlite::Error) -> Error {
    Error::Other(format!("key-value file: {err}"))
}

pub(super) fn redis_error(address: &str, err: &redis::RedisError) -> Error {
    let what = if err.is_timeout() {
        "did not answer in time".to_owned()
    } else if err.is_connection_refusal() {
        format!("refused the connection ({err})")
    } else if err.is_io_error() || err.is_connection_dropped() {
        format!("cannot be reached ({err})")
    } else {
        format!("failed: {err}")
    };
    Error::Other(format!("Redis at {address} {what}"))
}
