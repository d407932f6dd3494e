//! The Spin interfaces under the names the shared executors (`spin_sqlite`, `spin_postgres`,
//! the API's own files) use: spin-sdk 7's bindings of `spin:sqlite@3.1.0` and
//! `spin:postgres@4.2.0`, whose synchronous functions the executors call.

pub(crate) use spin_sdk::pg::wit::postgres;
pub(crate) use spin_sdk::sqlite::wit::sqlite;

/// The middleware runs only on Spin 4.1 and later (it is a WASIp3 component), whose
/// `spin:postgres` answers a query that matches no rows (spinframework/spin#3673): statements
/// go bare.
pub(crate) const POSTGRES_QUERY_ENVELOPE: bool = false;
