//! The host's integration tests, one binary with a module per area (as wasmtime's
//! `tests/all`): one link instead of eight, and one process whose shared component, `serve`
//! runtime and PostgreSQL server every area uses. Each test keeps its name under its module
//! path, e.g. `abuse::idle_connections_are_cut_off`.

mod abuse;
mod cli;
mod crash;
mod fresh_instance;
mod metrics;
mod p3_serve;
mod platform;
mod postgres;
mod postgres_tls;
mod replicas;
mod reuse;
mod support;
