//! zoe-session-middleware: the seed's `SessionMiddleware` and its `require_session`,
//! `optional_session`, role and permission dependencies, as a WASIp3 component (spin-sdk 7,
//! importing and exporting `wasi:http/handler@0.3.0`) in front of any WASIp3 app.
//!
//! It validates the session **on zoe-session's store itself**, linking the same core as the
//! API: one component that Spin composes in front of the app (`dependencies.middleware` with
//! `inherit_configuration`, which hands it the app's variables and SQLite database), with no
//! second composition with zoe-session and no extra hop per request. docs/middleware.md has the
//! settings, the headers and both ways to deploy it.
//!
//! - [`rules`]: which rule a path falls under (pure);
//! - [`identity`]: the identity headers and which client headers are removed (pure);
//! - [`decide`]: the decision on one request, on the store through the core's engine;
//! - `handler`: the `wasi:http/handler` export (wasm only).
//!
//! The store's executors and the instance's database handle are the API's own files
//! (`src/spin_sqlite.rs`, `src/spin_postgres.rs`, `src/spin_key_value.rs`,
//! `src/instance.rs`), included as the WASIp3 shell `p3/` includes them, over the same
//! synchronous `spin:sqlite@3.1.0` and `spin:postgres@4.2.0` functions and
//! `fermyon:spin/key-value@2.0.0` (`bindings`); so are the WASIp3 shell's reads ahead
//! (`p3/src/read_ahead.rs`, on the async `spin:key-value@3.0.0`).

pub mod decide;
pub mod identity;
pub mod rules;

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod handler;
#[cfg(target_arch = "wasm32")]
#[path = "../../src/instance.rs"]
mod instance;
#[cfg(target_arch = "wasm32")]
#[path = "../../p3/src/read_ahead.rs"]
mod read_ahead;
#[cfg(target_arch = "wasm32")]
#[path = "../../src/spin_key_value.rs"]
mod spin_key_value;
#[cfg(target_arch = "wasm32")]
#[path = "../../src/spin_postgres.rs"]
mod spin_postgres;
#[cfg(target_arch = "wasm32")]
#[path = "../../src/spin_sqlite.rs"]
mod spin_sqlite;

#[cfg(target_arch = "wasm32")]
use zoe_session_core::{config, session, store};
