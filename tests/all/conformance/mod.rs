//! The conformance suite: every session rule, written once against [`Backend`] and run on
//! every backend that ships. tower-sessions' shared store tests are the model: a rule is an
//! async function generic over the backend, and [`conformance!`] makes one `#[test]` per rule
//! per backend, named `conformance::<backend>::<rule>`:
//!
//! - `native_sqlite`, `native_postgres`: the engine over a [`Db`] on rusqlite and on a real
//!   PostgreSQL server, at a time the test sets ([`native`]);
//! - `component_sqlite`, `component_postgres`: the real `.wasm` through the host's typed API,
//!   on its `spin:sqlite` (a database file) and on its `spin:postgres` answering as Spin 4.0.x
//!   does, with a manual clock ([`component`]); `component_wasip3_sqlite` and
//!   `component_wasip3_postgres`: the same for the WASIp3 build (`p3/`), whose synchronous
//!   `sessions` export reads its settings under `block_on`;
//! - `native_kv`: the engine over the key-value layout on an in-memory store, whose raced
//!   handles wait a round trip per call ([`native`]);
//! - `component_kv_local`, `component_kv_redis`: the real `.wasm` with `key_value_store =
//!   default`, on the host's `fermyon:spin/key-value` over Spin's local file and over a
//!   database of its own on the run's Redis server ([`component`]);
//!   `component_wasip3_kv_local` and `component_wasip3_kv_redis`: the same for the WASIp3
//!   build, which imports the same synchronous `fermyon:spin/key-value@2.0.0`.
//!
//! The operations are the WIT interface's, in its types ([`Session`], [`Issued`],
//! [`SessionError`]); the native backend converts the engine's results as the component does.
//! A rule added once is tested on every backend. What is about one layer only stays next to the
//! suite: [`native_only`] (SQL shapes, migrations, statement counts, the `Db` guards, the
//! devices of activity writes and trusted ids, which the WIT cannot reach),
//! [`component_only`] (database files on disk, host configuration, in-memory hosts) and
//! [`key_value`] (the key-value layout's write budget, records and invalidation races).
//!
//! [`Db`]: zoe_session::store::Db

mod component;
mod component_only;
mod key_value;
mod native;
mod native_only;
mod rules;

use serde_json::Value;
use std::time::Duration;
pub use zoe_session_host::{
    CreateOptions, Issued, Requirement, Session, SessionError, SessionStats,
};

/// What one call answers: its value, or the component's error value.
pub type Outcome<T> = Result<T, SessionError>;

/// One page of `list-users` (the admin's list of users; over HTTP on the component).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// `(user id, unexpired sessions, latest activity as RFC 3339)`, in byte order.
    pub users: Vec<(String, u64, String)>,
    pub next_after: Option<String>,
}

/// A call that [`Backend::race`] runs at once with others, each on a connection or instance
/// of its own.
#[derive(Debug, Clone)]
pub enum Call {
    Create(String),
    /// A create for the user, then a validate of its token (which a later create for the
    /// same user may already have evicted).
    CreateThenValidate(String),
    Validate(String),
    Get(String),
    Touch(String),
    Extend(String, u32),
    Rotate(String),
    Invalidate(String),
    Cleanup(u32),
}

/// What a raced [`Call`] answered.
#[derive(Debug)]
pub enum Answer {
    Issued(Issued),
    /// A session the call read or changed (the rules only count these).
    Session,
    /// An invalidate that deleted.
    Done,
    Count(u32),
}

impl Answer {
    /// The token a create or rotate issued.
    pub fn token(&self) -> Option<&str> {
        match self {
            Self::Issued(issued) => Some(&issued.token),
            _ => None,
        }
    }

    /// The rows a cleanup deleted.
    pub fn count(&self) -> u32 {
        match self {
            Self::Count(n) => *n,
            other => panic!("not a count: {other:?}"),
        }
    }
}

/// A session store as the rules see it: the `zoe:session/sessions` operations on one
/// database at a clock the test moves.
pub trait Backend: Sized {
    /// Whether this backend is a key-value store: no transaction, no compare-and-swap. The
    /// rules that need one of those check there the weaker bound docs/key-value.md states
    /// for it, and say which.
    const KEY_VALUE: bool = false;

    /// A fresh, empty database with `settings` (as Spin variables name them), the clock at
    /// [`START_MS`](crate::support::START_MS).
    async fn open(settings: &[(&str, &str)]) -> Self;
    /// A replica on the same database, settings and clock: another connection (native), another
    /// host (component).
    async fn another(&self) -> Self;
    /// Moves the shared clock forward.
    fn advance(&self, by: Duration);
    /// The shared clock, in milliseconds since the epoch.
    fn now(&self) -> u64;

    async fn create(&mut self, user_id: &str, options: CreateOptions) -> Outcome<Issued>;
    async fn validate(&mut self, token: &str) -> Outcome<Session>;
    async fn authorize(&mut self, token: &str, requirement: &Requirement) -> Outcome<Session>;
    async fn get(&mut self, id_or_token: &str) -> Outcome<Session>;
    async fn touch(&mut self, token: &str) -> Outcome<Session>;
    async fn extend(&mut self, token: &str, additional_seconds: u32) -> Outcome<Session>;
    async fn rotate(&mut self, token: &str) -> Outcome<Issued>;
    async fn invalidate(&mut self, id_or_token: &str) -> Outcome<()>;
    async fn invalidate_user(&mut self, user_id: &str, except_id: Option<&str>) -> Outcome<u32>;
    async fn invalidate_all(&mut self) -> Outcome<u32>;
    async fn list_user(&mut self, user_id: &str) -> Outcome<Vec<Session>>;
    async fn list_users(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Outcome<UserPage>;
    async fn stats(&mut self) -> Outcome<SessionStats>;
    async fn cleanup(&mut self, max_rows: u32) -> Outcome<u32>;

    /// The audit events written since the last call, oldest first, each as its log line's
    /// `event` and the event's own fields.
    fn take_events(&mut self) -> Vec<Value>;

    /// Runs `calls` at once, from one start line, each on its own connection or instance;
    /// answers in the order of `calls`.
    async fn race(&self, calls: Vec<Call>) -> Vec<Outcome<Answer>>;
}

/// The keys of an audit line that are the line's, not the event's.
const LINE_KEYS: [&str; 7] = [
    "audit",
    "client_addr",
    "request_id",
    "ts",
    "level",
    "message",
    "suppressed",
];

/// An audit line as the rules compare it: `event` and the event's own fields.
fn event_of(line: &Value) -> Value {
    let mut event = line.clone();
    if let Value::Object(fields) = &mut event {
        fields.retain(|key, _| !LINE_KEYS.contains(&key.as_str()));
    }
    event
}

/// Runs a rule on the native engine to completion on the test's thread: the engine never
/// waits, and the synchronous PostgreSQL client must not run inside a tokio runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(value) => return value,
            std::task::Poll::Pending => std::thread::park(),
        }
    }
}

/// One `#[test]` per rule per backend.
macro_rules! conformance {
    ($($rule:ident),* $(,)?) => {
        mod native_sqlite {
            $(#[test]
            fn $rule() {
                super::block_on(super::rules::$rule::<super::native::Native<{ super::native::SQLITE }>>());
            })*
        }
        mod native_postgres {
            $(#[test]
            fn $rule() {
                super::block_on(super::rules::$rule::<super::native::Native<{ super::native::POSTGRES }>>());
            })*
        }
        mod native_kv {
            $(#[test]
            fn $rule() {
                super::block_on(super::rules::$rule::<super::native::Native<{ super::native::KEY_VALUE }>>());
            })*
        }
        mod component_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $rule() {
                super::rules::$rule::<super::component::Component<{ super::component::SQLITE }>>().await;
            })*
        }
        mod component_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $rule() {
                super::rules::$rule::<super::component::Component<{ super::component::POSTGRES }>>().await;
            })*
        }
        mod component_kv_local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $rule() {
                super::rules::$rule::<super::component::Component<{ super::component::KV_LOCAL }>>().await;
            })*
        }
        mod component_kv_redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $rule() {
                super::rules::$rule::<super::component::Component<{ super::component::KV_REDIS }>>().await;
            })*
        }
        mod component_wasip3_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $rule() {
                super::rules::$rule::<super::component::Component<{ super::component::SQLITE }, true>>().await;
            })*
        }
        mod component_wasip3_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $rule() {
                super::rules::$rule::<super::component::Component<{ super::component::POSTGRES }, true>>().await;
            })*
        }
        mod component_wasip3_kv_local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $rule() {
                super::rules::$rule::<super::component::Component<{ super::component::KV_LOCAL }, true>>().await;
            })*
        }
        mod component_wasip3_kv_redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $rule() {
                super::rules::$rule::<super::component::Component<{ super::component::KV_REDIS }, true>>().await;
            })*
        }
    };
}

conformance!(
    seed_unit_test_creates_an_active_session_in_memory,
    create_issues_an_id_dot_secret_token_and_the_defaults,
    create_then_validate_and_get_return_the_session,
    create_keeps_metadata_and_a_custom_timeout,
    timeouts_outside_the_range_are_refused_naming_the_range,
    bad_user_ids_are_refused_and_nothing_is_stored,
    metadata_must_be_a_json_object_within_the_cap,
    malformed_tokens_are_invalid,
    a_tampered_secret_is_invalid_and_leaves_the_session_intact,
    a_well_formed_token_for_an_unknown_session_is_not_found,
    a_bare_public_id_is_refused_where_a_token_goes,
    expired_session_is_refused,
    validate_slides_the_idle_timeout,
    activity_writes_are_throttled_but_touch_always_writes,
    with_auto_update_off_validate_does_not_slide,
    nothing_extends_a_session_past_its_absolute_lifetime,
    extend_adds_time_capped_at_max_timeout_from_now,
    extend_refuses_zero_and_more_than_max_timeout,
    eleventh_session_evicts_the_least_recently_active,
    reject_policy_refuses_the_session_over_the_limit,
    expired_sessions_do_not_count_against_the_limit,
    forty_concurrent_creates_never_exceed_the_limit,
    forty_concurrent_creates_under_reject_admit_exactly_the_limit,
    rotate_issues_a_new_token_and_kills_the_old_one,
    racing_rotations_and_validations_leave_exactly_one_valid_token,
    a_deleted_session_never_comes_back_whatever_races_with_the_delete,
    many_writers_never_see_a_storage_error_and_limits_hold_per_user,
    racing_requests_with_the_old_token_right_after_a_rotate_revoke_nothing,
    a_rotated_token_presented_after_the_grace_revokes_the_session,
    within_the_grace_the_old_token_is_refused_and_the_session_lives,
    with_detection_off_an_old_token_is_only_refused,
    a_token_from_anywhere_in_the_rotation_chain_revokes_the_session,
    an_earlier_link_of_the_chain_revokes_even_within_the_grace,
    the_chain_remembers_a_bounded_number_of_rotates,
    invalidate_by_token_or_id_deletes_once,
    invalidate_user_keeps_only_the_excepted_session,
    invalidate_all_ends_every_session_of_every_user,
    authorize_checks_roles_and_permissions_from_metadata,
    list_user_shows_active_sessions_newest_activity_first_without_tokens,
    users_are_listed_by_prefix_a_page_at_a_time_in_byte_order,
    stats_count_active_sessions_users_and_expired_rows,
    cleanup_deletes_expired_rows_in_bounded_batches,
    create_cleans_up_once_per_interval,
    concurrent_cleanups_delete_each_expired_row_once,
    two_hosts_on_one_database_share_every_session,
    a_session_s_life_is_told_by_its_events_in_order,
    a_session_records_its_device_at_create_within_the_length_caps,
    with_record_devices_off_no_device_is_kept,
);
