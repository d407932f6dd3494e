//! zoe-session: session management as one WebAssembly component — the WASIp2 shell (spin-sdk
//! 5.2) around the core crate `zoe-session-core`, whose modules it re-exports.
//!
//! The component exports `zoe:session/sessions` (the trusted in-process API) and
//! `wasi:http/incoming-handler`, and stores sessions in Spin's SQLite, in PostgreSQL when
//! `database_url` is set, or in a Spin key-value store when `key_value_store` names one. What is here binds the core to spin-sdk and nothing more:
//!
//! - `component`: the WIT exports, which read the clock and configuration once per call and
//!   turn engine errors into the WIT `error` variant;
//! - `instance`: what an instance keeps across calls (its database handle), and the clock;
//! - `settings`: the configuration from Spin variables;
//! - `http_entry`: the `wasi:http` export, reading the request and writing the reply;
//! - `spin_sqlite`, `spin_postgres`: the store executors on Spin's interfaces;
//! - `spin_key_value`: the key-value store on Spin's `key-value` (`key_value_store`).
//!
//! The WASIp3 build (`p3/`, spin-sdk 7) includes `component`, `instance` and the executors
//! from here, over its own bindings of the same names; only its `wasi:http` entry and its
//! settings reader are its own.

// The WIT exports exist only in the wasm build: a native build (unit tests) would otherwise
// try to export symbols named like `zoe:session/sessions@0.2.0#create`, which no native
// linker accepts.
#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(target_arch = "wasm32")]
mod http_entry;
#[cfg(target_arch = "wasm32")]
mod instance;
#[cfg(target_arch = "wasm32")]
mod settings;
#[cfg(target_arch = "wasm32")]
mod spin_key_value;
#[cfg(target_arch = "wasm32")]
mod spin_postgres;
#[cfg(target_arch = "wasm32")]
mod spin_sqlite;

pub use zoe_session_core::{config, http, session, store};
