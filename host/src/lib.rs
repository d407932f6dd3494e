//! zoe-session-host: runs the zoe-session WebAssembly component natively with Wasmtime.
//!
//! - [`Runtime`]: the component compiled once (embedded by this crate's build, or from a file);
//! - [`SessionHost`]: one database, one set of Spin variables and one clock, with
//!   [`SessionHost::sessions`] giving the typed async API of `zoe:session/sessions`;
//! - the host side of `spin:sqlite@3.0.0` ([`sqlite`]), `spin:postgres@4.0.0` ([`postgres`],
//!   pooled tokio-postgres, only the configured `database_url`) and
//!   `fermyon:spin/variables@2.0.0` ([`variables`]), implemented the way Spin implements them;
//! - [`Clock`]: the wall clock the guest sees, settable in tests;
//! - [`Server`]: the component's HTTP API served over real HTTP ([`serve`]).
//!
//! See [`api`] for an example.

pub mod admin_key;
pub mod api;
mod bindings;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod host_calls;
mod outgoing_http;
pub mod postgres;
mod private_fs;
pub mod runtime;
pub mod serve;
pub mod sqlite;
mod state;
pub mod variables;

pub use api::{
    CreateOptions, Issued, Requirement, Session, SessionError, SessionHost, SessionStats, Sessions,
};
pub use clock::Clock;
pub use config::HostConfig;
pub use error::{HostError, ServeError};
pub use host_calls::HostCallCounts;
pub use postgres::Postgres;
pub use runtime::{Allocation, Metering, Runtime, RuntimeOptions};
pub use serve::{BodyAtHead, HostCallSink, RequestCosts, ServeOptions, Server};
pub use sqlite::Location;
pub use state::HostState;
