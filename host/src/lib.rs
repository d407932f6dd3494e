//! zoe-session-host: runs the zoe-session WebAssembly component natively with Wasmtime.
//!
//! - [`Runtime`]: the component compiled once (embedded by this crate's build, or from a file);
//! - [`SessionHost`]: one database, one set of Spin variables and one clock, with
//!   [`SessionHost::sessions`] giving the typed async API of `zoe:session/sessions`;
//! - the host side of `spin:sqlite@3.0.0` ([`sqlite`]), `spin:postgres@4.0.0` ([`postgres`],
//!   pooled tokio-postgres, only the configured `database_url`), `fermyon:spin/key-value@2.0.0`
//!   ([`key_value`]: Spin's local file, or Redis through a runtime config file in Spin's format)
//!   and `fermyon:spin/variables@2.0.0` ([`variables`]), implemented the way Spin implements
//!   them;
//! - [`Clock`]: the wall clock the guest sees, settable in tests;
//! - [`Server`]: the component's HTTP API served over real HTTP ([`serve`]).
//!
//! See [`api`] for an example.
//!
//! # Modules
//!
//! One module per imported interface, each with its own context and view, as wasmtime-wasi
//! splits WASI and wasi-http: [`sqlite`] (`SqliteView`), [`postgres`] (`PostgresView`),
//! [`key_value`] (`KeyValueView`), [`variables`] (`VariablesView`); `outgoing_http` refuses outgoing `wasi:http`. [`HostState`]
//! only composes their contexts with WASI's and wasi-http's, and hands each its own view;
//! [`host_calls`] is the counter they all report to. `bindings` is the generated code and
//! nothing else. Above them: [`runtime`] (the compiled component and its linker), [`api`] (the
//! typed API), [`error`], [`serve`] and [`cli`].
//!
//! An arrow is "uses"; every module uses only modules to its right or below, so no two use each
//! other (shortcuts, such as `api → sqlite` or `serve → state`, are left out):
//!
//! ```text
//! main ─► cli ─┬─► serve/ ─► api ─┬─► runtime ─► state ─┬──────────────► outgoing_http
//!              │                  │                     ├──────────────► host_calls
//!              │                  │                     ├─► sqlite/ ───┐
//!              │                  └─► error ─► config ──┼─► postgres/ ─┼─► bindings ─► sqlite/handle
//!              │                                        ├─► key_value/ ┤               postgres/handle
//!              │                                        └─► variables ─┘               key_value/handle
//!              ├─► middleware (wac-graph: a chain composed in front of the app)
//!              └─► admin_key ─► private_fs
//!
//! serve/:    mod ─► {guest, maintenance, p3}; guest ─► {p3, pool, costs, metrics, spin_request,
//!            errors}; p3 ─► {pool, spin_request, errors}
//!            spin_request ─► errors; {costs, errors, metrics, maintenance, p3} ─► log
//! sqlite/:   mod ─► statements ─► {routing, wal, values, errors, handle} ─► pool ─► connection
//!            ─► options
//! postgres/: mod ─► statements ─► pool ─► handle ─► {transactions, compat, options}
//!            {statements, pool, values} ─► errors; statements ─► values
//! key_value/: {mod, v3_0} ─► handle ─► stores ─► {local, redis, runtime_config} ─► errors
//! ```
//!
//! `sqlite/routing` and `postgres/transactions` both use `transaction_sql`, where a guest
//! statement's effect on the transaction (`BEGIN`, `COMMIT`, savepoints) is recognised once.
//!
//! Each interface of the WASIp3 era has a file beside its WASIp2 one (`sqlite/v3_1`,
//! `postgres/v4_2`, `variables/v3_0`, `key_value/v3_0`) that uses that interface's module and
//! `bindings`, and whose resource types live in the handle files, as the WASIp2 ones do.
//!
//! `platform` (what `serve --platform` grants and limits) uses nothing of ours; `config`, `api`
//! and `cli` use it.
//!
//! `config` uses the interface modules for their settings' types (not `state`); `error`
//! uses `config`, `sqlite` and `bindings`. `bindings` names the guests' resource types
//! (bindgen's `with:`), so their files, `sqlite/handle`, `postgres/handle` and
//! `key_value/handle`, and all they use, use no bindings (the key-value stores answer with
//! their own `KeyValueError`, which each interface version turns into its error).

pub mod admin_key;
pub mod api;
mod bindings;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod host_calls;
pub mod key_value;
pub mod middleware;
mod outgoing_http;
pub mod platform;
pub mod postgres;
mod private_fs;
pub mod runtime;
pub mod serve;
pub mod sqlite;
mod state;
mod transaction_sql;
pub mod variables;

pub use api::{
    CreateOptions, Issued, Requirement, Session, SessionError, SessionHost, SessionStats, Sessions,
};
pub use clock::Clock;
pub use config::HostConfig;
pub use error::{HostError, ServeError};
pub use host_calls::HostCallCounts;
pub use platform::Platform;
pub use postgres::Postgres;
pub use runtime::{Allocation, Metering, Runtime, RuntimeOptions};
pub use serve::{BodyAtHead, HostCallSink, RequestCosts, ServeOptions, Server};
pub use sqlite::Location;
pub use state::HostState;
