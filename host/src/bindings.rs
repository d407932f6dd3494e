//! Generated bindings for the `engine` world, and nothing else.
//!
//! Imports (`spin:sqlite`, `fermyon:spin/variables`) are synchronous: each runs to completion
//! on the calling thread, so a guest call never yields while it holds a transaction open.
//! Exports are async because the store is async (wasi-http needs it).

wasmtime::component::bindgen!({
    world: "engine",
    path: "../wit",
    imports: {
        // SQLite runs on tokio's blocking pool (host/src/sqlite.rs), so its calls yield.
        "spin:sqlite/sqlite": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    additional_derives: [PartialEq],
    with: {
        "spin:sqlite/sqlite.connection": crate::sqlite::Connection,
    },
});
