//! Generated bindings for the `zoe:session` WIT package, and nothing else.
//!
//! The Spin imports reuse spin-sdk's own bindings so that the whole component shares one
//! set of `spin:sqlite`, `spin:postgres` and `fermyon:spin/variables` types.

wit_bindgen::generate!({
    world: "engine",
    path: "wit",
    with: {
        "spin:sqlite/sqlite@3.0.0": spin_sdk::wit::sqlite3,
        "spin:postgres/postgres@4.0.0": spin_sdk::wit::pg4,
        "fermyon:spin/key-value@2.0.0": spin_sdk::wit::v2::key_value,
        "fermyon:spin/variables@2.0.0": spin_sdk::wit::v2::variables,
    },
    pub_export_macro: true,
});

/// The Spin interfaces under the names the shared executors (`spin_sqlite`, `spin_postgres`,
/// `spin_key_value`) use, which the WASIp3 build gives its own bindings.
pub(crate) use spin_sdk::wit::v2::key_value;
pub(crate) use spin_sdk::wit::{pg4 as postgres, sqlite3 as sqlite};

/// Spin 4.0's `spin:postgres` never answers a query that matches no rows
/// (`crate::spin_postgres`): this build runs there, so every query goes in an envelope.
pub(crate) const POSTGRES_QUERY_ENVELOPE: bool = true;
