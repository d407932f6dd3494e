//! The Spin interfaces under the names the shared executors (`spin_sqlite`, `spin_postgres`,
//! `spin_key_value`, the API's own files) use: spin-sdk 7's bindings of `spin:sqlite@3.1.0`
//! and `spin:postgres@4.2.0`, whose synchronous functions the executors call, and this
//! crate's own of `fermyon:spin/key-value@2.0.0`, the synchronous key-value interface Spin
//! links for every component (spin-sdk 7 binds only the async `spin:key-value@3.0.0`).

mod spin_v2 {
    spin_sdk::wit_bindgen::generate!({
        inline: "
            package zoe:middleware-imports;

            world key-value {
                import fermyon:spin/key-value@2.0.0;
            }
        ",
        // The API's vendored `fermyon:spin@2.0.0` (key-value and variables).
        path: "../wit/deps/spin@2.0.0",
        world: "zoe:middleware-imports/key-value",
        runtime_path: "spin_sdk::wit_bindgen::rt",
        generate_all,
    });
}

/// spin-sdk 7's async `spin:key-value@3.0.0`, for the reads ahead (`read_ahead`).
pub(crate) use spin_sdk::key_value::wit::key_value as key_value_async;
pub(crate) use spin_sdk::pg::wit::postgres;
pub(crate) use spin_sdk::sqlite::wit::sqlite;
pub(crate) use spin_v2::fermyon::spin::key_value;

/// The middleware runs only on Spin 4.1 and later (it is a WASIp3 component), whose
/// `spin:postgres` answers a query that matches no rows (spinframework/spin#3673): statements
/// go bare.
pub(crate) const POSTGRES_QUERY_ENVELOPE: bool = false;
