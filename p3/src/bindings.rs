//! Generated bindings for the WASIp3 build's engine world (`p3/wit/world.wit`: the
//! `zoe:session/sessions` export, the Spin 4.1 imports and `fermyon:spin/key-value@2.0.0`),
//! and nothing else. spin-sdk 7 generates the `wasi:http` side; both use spin-sdk's
//! wit-bindgen runtime, so the two exports share one async executor.

spin_sdk::wit_bindgen::generate!({
    world: "zoe:session-p3/engine",
    // The `sessions` interface from the WASIp2 build's WIT, the Spin 4.1 interfaces as the
    // host vendors them, then this build's world.
    path: ["../wit", "../host/wit", "wit"],
    runtime_path: "spin_sdk::wit_bindgen::rt",
    pub_export_macro: true,
    generate_all,
});

/// The Spin interfaces under the names the shared executors (`spin_sqlite`, `spin_postgres`,
/// `spin_key_value`) use.
pub(crate) use fermyon::spin::key_value;
/// The async key-value interface, for the reads ahead (`read_ahead`).
pub(crate) use spin::key_value::key_value as key_value_async;
pub(crate) use spin::postgres4_2_0::postgres;
pub(crate) use spin::sqlite3_1_0::sqlite;

/// This build runs only on Spin 4.1 and later, whose `spin:postgres` answers a query that
/// matches no rows (spinframework/spin#3673): statements go bare (`crate::spin_postgres`).
pub(crate) const POSTGRES_QUERY_ENVELOPE: bool = false;
