//! The typed Rust API: every function of `zoe:session/sessions` as an async method.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoe_session_host::HostError> {
//! use zoe_session_host::{CreateOptions, HostConfig, Runtime, SessionHost, Allocation};
//!
//! let runtime = Runtime::new(Allocation::OnDemand)?;
//! let host = SessionHost::open(&runtime, HostConfig::in_memory()).await?;
//! let mut sessions = host.sessions().await?;
//!
//! let issued = sessions.create("alice", CreateOptions::default()).await?;
//! let session = sessions.validate(&issued.token).await?;
//! assert_eq!(session.user_id, "alice");
//! assert!(session.is_active);
//! # Ok(())
//! # }
//! ```

use crate::bindings::Engine as EngineBindings;
use crate::bindings::exports::zoe::session::sessions as wit;
use crate::clock::Clock;
use crate::config::HostConfig;
use crate::runtime::Runtime;
use crate::sqlite::{Database, OpenError};
use crate::state::{HostState, NoOutgoingHttp};
use crate::variables::Variables;
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::WasiHttpCtx;

pub use wit::{CreateOptions, Error as SessionError, Issued, Requirement, Session, SessionStats};

/// Why a host call failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The component answered with an error value (bad token, expired, bad input, …).
    #[error("{}", describe(.0))]
    Session(SessionError),
    /// The database could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Wasmtime failed or the guest trapped: a bug, not bad input.
    #[error("component runtime failure: {0:#}")]
    Runtime(anyhow::Error),
}

impl HostError {
    /// The component's error value, if that is what this is.
    pub fn session(&self) -> Option<&SessionError> {
        match self {
            Self::Session(err) => Some(err),
            _ => None,
        }
    }
}

/// A sentence describing a session error, for people (the generated `Display` is terse).
pub fn describe(err: &SessionError) -> String {
    match err {
        SessionError::NotFound => "session not found".to_owned(),
        SessionError::Expired => "session expired".to_owned(),
        SessionError::InvalidToken => "invalid session token".to_owned(),
        SessionError::InvalidInput(detail) => format!("invalid input: {detail}"),
        SessionError::Forbidden(detail) => format!("forbidden: {detail}"),
        SessionError::LimitReached => "session limit reached for this user".to_owned(),
        SessionError::Storage(detail) => format!("storage failure: {detail}"),
        SessionError::Config(detail) => format!("configuration error: {detail}"),
    }
}

impl From<wasmtime::Error> for HostError {
    fn from(err: wasmtime::Error) -> Self {
        Self::Runtime(err.into())
    }
}

impl From<anyhow::Error> for HostError {
    fn from(err: anyhow::Error) -> Self {
        Self::Runtime(err)
    }
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            timeout_seconds: None,
            metadata: None,
        }
    }
}

impl CreateOptions {
    /// Sets the idle timeout in seconds.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout_seconds = Some(seconds);
        self
    }

    /// Sets the metadata from a JSON value (which must be an object to be accepted).
    pub fn metadata(mut self, metadata: &serde_json::Value) -> Self {
        self.metadata = Some(metadata.to_string());
        self
    }
}

/// A session store: one database, one set of variables, one clock, served by the component.
#[derive(Debug, Clone)]
pub struct SessionHost {
    runtime: Runtime,
    database: Arc<Database>,
    variables: Arc<Variables>,
    clock: Clock,
    /// Where guest stderr goes: ours (`None`), or a pipe a test reads.
    guest_stderr: Option<MemoryOutputPipe>,
}

impl SessionHost {
    /// Opens the database and checks the configuration by asking the component for `stats`.
    ///
    /// # Errors
    ///
    /// [`HostError::Open`] if the database cannot be opened; [`HostError::Session`] with
    /// [`SessionError::Config`] naming the bad setting if a variable is invalid.
    pub async fn open(runtime: &Runtime, config: HostConfig) -> Result<Self, HostError> {
        Self::open_with_clock(runtime, config, Clock::system()).await
    }

    /// Like [`SessionHost::open`] with a given clock (tests use [`Clock::manual`]).
    ///
    /// # Errors
    ///
    /// As for [`SessionHost::open`].
    pub async fn open_with_clock(
        runtime: &Runtime,
        config: HostConfig,
        clock: Clock,
    ) -> Result<Self, HostError> {
        let host = Self {
            runtime: runtime.clone(),
            database: Database::open(config.database)?,
            variables: Arc::new(config.variables),
            clock,
            guest_stderr: None,
        };
        host.sessions().await?.stats().await?;
        Ok(host)
    }

    /// The clock the component sees.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The database.
    pub fn database(&self) -> &Arc<Database> {
        &self.database
    }

    /// The component runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Sends guest stderr (the component's JSON log lines) to `pipe` instead of ours, so
    /// tests can read what the component logged.
    #[must_use]
    pub fn with_guest_stderr(mut self, pipe: MemoryOutputPipe) -> Self {
        self.guest_stderr = Some(pipe);
        self
    }

    /// A fresh store whose guest writes its stderr to ours (or the pipe given to
    /// [`SessionHost::with_guest_stderr`]).
    pub fn store(&self) -> Store<HostState> {
        let mut wasi = WasiCtx::builder();
        match &self.guest_stderr {
            Some(pipe) => wasi.stderr(pipe.clone()),
            None => wasi.inherit_stderr(),
        };
        wasi.wall_clock(self.clock.clone());
        let mut store = Store::new(
            self.runtime.engine(),
            HostState {
                wasi: wasi.build(),
                http: WasiHttpCtx::new(),
                http_hooks: NoOutgoingHttp,
                table: ResourceTable::new(),
                database: self.database.clone(),
                variables: self.variables.clone(),
            },
        );
        // No deadline for the typed API: trusted in-process callers. The deadline is relative
        // to the current epoch, which `serve`'s ticker advances, so `u64::MAX` would overflow.
        store.set_epoch_deadline(u64::MAX / 2);
        store
    }

    /// Instantiates the component. An instance may serve any number of calls.
    ///
    /// # Errors
    ///
    /// [`HostError::Runtime`] if instantiation fails.
    pub async fn sessions(&self) -> Result<Sessions, HostError> {
        let mut store = self.store();
        let bindings = self
            .runtime
            .engine_pre()?
            .instantiate_async(&mut store)
            .await?;
        Ok(Sessions { store, bindings })
    }
}

/// One instance of the component, with the typed `sessions` API.
pub struct Sessions {
    store: Store<HostState>,
    bindings: EngineBindings,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// Flattens the two layers of a guest call: a trap, or the guest's own error value.
fn flatten<T>(result: wasmtime::Result<Result<T, SessionError>>) -> Result<T, HostError> {
    result?.map_err(HostError::Session)
}

impl Sessions {
    fn api(&self) -> &wit::Guest {
        self.bindings.zoe_session_sessions()
    }

    /// Creates a session for `user_id` and issues its token.
    ///
    /// # Errors
    ///
    /// [`SessionError::InvalidInput`] for a bad user id, timeout or metadata;
    /// [`SessionError::LimitReached`] under the `reject` policy.
    pub async fn create(
        &mut self,
        user_id: &str,
        options: CreateOptions,
    ) -> Result<Issued, HostError> {
        let api = self.api().clone();
        flatten(api.call_create(&mut self.store, user_id, &options).await)
    }

    /// Checks a token; counts as activity when `auto_update` is on.
    ///
    /// # Errors
    ///
    /// [`SessionError::InvalidToken`], [`SessionError::NotFound`] or [`SessionError::Expired`].
    pub async fn validate(&mut self, token: &str) -> Result<Session, HostError> {
        let api = self.api().clone();
        flatten(api.call_validate(&mut self.store, token).await)
    }

    /// Validates, then requires a role or permission.
    ///
    /// # Errors
    ///
    /// As [`Sessions::validate`], plus [`SessionError::Forbidden`] when unmet.
    pub async fn authorize(
        &mut self,
        token: &str,
        requirement: &Requirement,
    ) -> Result<Session, HostError> {
        let api = self.api().clone();
        flatten(
            api.call_authorize(&mut self.store, token, requirement)
                .await,
        )
    }

    /// Looks up a session by public id or token.
    ///
    /// # Errors
    ///
    /// [`SessionError::NotFound`], [`SessionError::Expired`], or for a token
    /// [`SessionError::InvalidToken`].
    pub async fn get(&mut self, id_or_token: &str) -> Result<Session, HostError> {
        let api = self.api().clone();
        flatten(api.call_get(&mut self.store, id_or_token).await)
    }

    /// Records activity now.
    ///
    /// # Errors
    ///
    /// As [`Sessions::validate`].
    pub async fn touch(&mut self, token: &str) -> Result<Session, HostError> {
        let api = self.api().clone();
        flatten(api.call_touch(&mut self.store, token).await)
    }

    /// Extends the session by `additional_seconds` within the caps.
    ///
    /// # Errors
    ///
    /// As [`Sessions::validate`], plus [`SessionError::InvalidInput`] for 0 or more than
    /// `max_timeout` seconds.
    pub async fn extend(
        &mut self,
        token: &str,
        additional_seconds: u32,
    ) -> Result<Session, HostError> {
        let api = self.api().clone();
        flatten(
            api.call_extend(&mut self.store, token, additional_seconds)
                .await,
        )
    }

    /// Issues a new token for the session; the old one stops working at once.
    ///
    /// # Errors
    ///
    /// As [`Sessions::validate`].
    pub async fn rotate(&mut self, token: &str) -> Result<Issued, HostError> {
        let api = self.api().clone();
        flatten(api.call_rotate(&mut self.store, token).await)
    }

    /// Deletes a session by public id or token.
    ///
    /// # Errors
    ///
    /// [`SessionError::NotFound`], or for a token [`SessionError::InvalidToken`].
    pub async fn invalidate(&mut self, id_or_token: &str) -> Result<(), HostError> {
        let api = self.api().clone();
        flatten(api.call_invalidate(&mut self.store, id_or_token).await)
    }

    /// Deletes every session of `user_id` except `except_id`; returns how many.
    ///
    /// # Errors
    ///
    /// [`SessionError::InvalidInput`] for a bad user id or `except_id`.
    pub async fn invalidate_user(
        &mut self,
        user_id: &str,
        except_id: Option<&str>,
    ) -> Result<u32, HostError> {
        let api = self.api().clone();
        flatten(
            api.call_invalidate_user(&mut self.store, user_id, except_id)
                .await,
        )
    }

    /// The user's active sessions, most recently active first. No tokens.
    ///
    /// # Errors
    ///
    /// [`SessionError::InvalidInput`] for a bad user id.
    pub async fn list_user(&mut self, user_id: &str) -> Result<Vec<Session>, HostError> {
        let api = self.api().clone();
        flatten(api.call_list_user(&mut self.store, user_id).await)
    }

    /// Counters over the whole store.
    ///
    /// # Errors
    ///
    /// [`SessionError::Storage`] or [`SessionError::Config`].
    pub async fn stats(&mut self) -> Result<SessionStats, HostError> {
        let api = self.api().clone();
        flatten(api.call_stats(&mut self.store).await)
    }

    /// Deletes up to `max_rows` expired sessions; returns how many.
    ///
    /// # Errors
    ///
    /// [`SessionError::InvalidInput`] for 0 or an oversized `max_rows`.
    pub async fn cleanup(&mut self, max_rows: u32) -> Result<u32, HostError> {
        let api = self.api().clone();
        flatten(api.call_cleanup(&mut self.store, max_rows).await)
    }
}
