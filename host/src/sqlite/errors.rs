//! Every failure of this layer turned into the `spin:sqlite` error Spin gives, here and
//! nowhere else: a full disk is `database-full`, anything else `io` with SQLite's text.

use super::pool::PoolError;
use crate::bindings::spin::sqlite::sqlite::Error;

pub(super) fn sqlite_error(err: &rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(code, _) = err
        && code.code == rusqlite::ErrorCode::DiskFull
    {
        return Error::DatabaseFull;
    }
    io_error(err)
}

pub(super) fn io_error(err: &rusqlite::Error) -> Error {
    Error::Io(err.to_string())
}

impl From<PoolError> for Error {
    fn from(err: PoolError) -> Self {
        Error::Io(err.to_string())
    }
}
