//! Generated bindings for the `engine` world as this host sees it, and nothing else.
//!
//! The world bound here is `zoe:session/engine` plus `spin:postgres/postgres@4.0.0`: the host
//! defines the Postgres import whether or not the component imports it, so a component built
//! for either backend links against the same host. Defining an import that a component does
//! not use is harmless to the linker, and once `engine` itself imports Postgres the `include`
//! merges the two imports into one.
//!
//! `spin:sqlite` and `spin:postgres` are async, so neither a SQLite statement (run on tokio's
//! blocking pool) nor a network round trip blocks a tokio worker; a transaction keeps its
//! connection across calls (see [`crate::sqlite`] and [`crate::postgres`]).
//! `fermyon:spin/variables` is synchronous (an in-memory lookup). Exports are async
//! because the store is async (wasi-http needs it).

wasmtime::component::bindgen!({
    path: "../wit",
    inline: "
        package zoe:host;

        world engine {
            include zoe:session/engine@0.2.0;
            import spin:postgres/postgres@4.0.0;
            import fermyon:spin/key-value@2.0.0;
        }
    ",
    world: "zoe:host/engine",
    imports: {
        "spin:postgres/postgres": async | trappable,
        // Redis is a network round trip, Spin's file a statement on the blocking pool.
        "fermyon:spin/key-value": async | trappable,
        // SQLite runs on tokio's blocking pool (host/src/sqlite/statements.rs), so its calls yield.
        "spin:sqlite/sqlite": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    additional_derives: [PartialEq],
    // Each interface is implemented once, for any store that has its view
    // (`impl<T: SqliteView> HostConnection for T`); bindgen's own `&mut T` forwarding would
    // overlap with that, and the views forward `&mut T` instead.
    skip_mut_forwarding_impls: true,
    with: {
        "spin:sqlite/sqlite.connection": crate::sqlite::handle::Connection,
        "spin:postgres/postgres.connection": crate::postgres::handle::Connection,
        "fermyon:spin/key-value.store": crate::key_value::handle::Store,
    },
});

/// The WASIp3-era Spin interfaces (`spin:sqlite@3.1.0`, `spin:postgres@4.2.0`,
/// `spin:variables@3.0.0`, `spin:key-value@3.0.0`), which spin-sdk 7 guests import. Their WIT
/// `async func`s are bound as concurrent host functions (an `Accessor`, so many calls of one
/// instance may be in flight); the functions they keep from the WASIp2 era are bound async, as
/// above. Their resources are, or wrap, the WASIp2-era ones, in the same handle files (so those
/// still use no bindings); `sqlite/v3_1`, `postgres/v4_2`, `variables/v3_0` and
/// `key_value/v3_0` implement them over the same backends.
pub mod p3 {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "zoe:host-p3/spin-p3",
        imports: { default: async | trappable },
        additional_derives: [PartialEq],
        skip_mut_forwarding_impls: true,
        with: {
            "spin:sqlite/sqlite.connection": crate::sqlite::handle::SharedConnection,
            "spin:postgres/postgres.connection": crate::postgres::handle::SharedConnection,
            "spin:postgres/postgres.connection-builder": crate::postgres::handle::ConnectionBuilder,
            "spin:key-value/key-value.store": crate::key_value::handle::Store,
        },
    });
}
