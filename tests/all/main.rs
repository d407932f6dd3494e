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
mod http_api;
#[path = "http_api.rs"]
mod http_api_wasip3;
mod native_postgres_tls;
mod node;
mod postgres_collation;
mod postgres_component;
mod wasip3_reuse;
