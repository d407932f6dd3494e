//! Generated bindings for the `engine` world as this host sees it, and nothing else.
//!
//! The world bound here is `zoe:session/engine` plus `spin:postgres/postgres@4.0.0`: the host
//! defines the Postgres import whether or not the component imports it, so a component built
//! for either backend links against the same host. Defining an import that a component does
//! not use is harmless to the linker, and once `engine` itself imports Postgres the `include`
//! merges the two imports into one.
//!
//! `spin:sqlite` and `fermyon:spin/variables` are synchronous: each runs to completion on the
//! calling thread, so a guest call never yields while it holds a transaction open. Postgres
//! calls are async, because a network round trip must not block a tokio worker; a transaction
//! keeps its server connection across them (see [`crate::postgres`]). Exports are async
//! because the store is async (wasi-http needs it).

wasmtime::component::bindgen!({
    path: "../wit",
    inline: "
        package zoe:host;

        world engine {
            include zoe:session/engine@0.1.0;
            import spin:postgres/postgres@4.0.0;
        }
    ",
    world: "zoe:host/engine",
    imports: {
        "spin:postgres/postgres": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    additional_derives: [PartialEq],
    with: {
        "spin:sqlite/sqlite.connection": crate::sqlite::Connection,
        "spin:postgres/postgres.connection": crate::postgres::Connection,
    },
});
