//! The root crate's integration tests, one binary (as wasmtime's `tests/all`): one link, one
//! compile of the component per runtime, one PostgreSQL server for the whole run. A module per
//! area; what they share (the HTTP client, hosts with a manual clock, servers) is in
//! [`support`].

#![cfg(not(target_arch = "wasm32"))]

mod support;

mod admin_console;
mod akamai_manifests;
mod audit;
mod component_shape;
mod composition;
mod configuration;
mod conformance;
mod gate_unit;
// The REST API suite, once per way of serving it (see http_api.rs). `not_on_akamai!` wraps
// the tests that need the SQLite file or an instance kept across requests: each copy sees the
// definition above it, so the copy served as Akamai Functions serves the component leaves them
// out.
macro_rules! not_on_akamai {
    ($($item:item)*) => { $($item)* };
}
mod http_api;
#[path = "http_api.rs"]
#[expect(
    clippy::duplicate_mod,
    reason = "one copy of the suite per build and platform"
)]
mod http_api_wasip3;
macro_rules! not_on_akamai {
    ($($item:item)*) => {};
}
#[path = "http_api.rs"]
#[expect(
    clippy::duplicate_mod,
    reason = "one copy of the suite per build and platform"
)]
mod http_api_key_value_wasip3;
macro_rules! not_on_akamai {
    ($($item:item)*) => {};
}
#[path = "http_api.rs"]
#[expect(
    clippy::duplicate_mod,
    reason = "one copy of the suite per build and platform"
)]
mod http_api_on_akamai;
mod middleware;
mod middleware_key_value;
mod native_postgres_tls;
mod node;
mod postgres_collation;
mod postgres_component;
mod read_ahead;
mod wasip3_reuse;
