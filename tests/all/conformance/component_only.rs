//! The `zoe:session/sessions` interface, driven through the real component in the host: every
//! function's success and failure paths, expiry with a manual clock, limits, concurrency and
//! bad input.

use crate::support as common;

use common::{HOUR, MINUTE, START_MS, file_config, host_with, open, session_error};
use serde_json::json;
use std::time::Duration;
use zoe_session_host::{
    CreateOptions, HostConfig, Issued, Requirement, SessionError, SessionHost, Sessions,
};

const SECOND: Duration = Duration::from_secs(1);

fn default_options() -> CreateOptions {
    CreateOptions::default()
}

/// A host over a fresh in-memory database with default settings, and an instance of it.
async fn fixture() -> (SessionHost, Sessions) {
    fixture_with(&[]).await
}

/// A host over a fresh in-memory database with `variables`, and an instance of it.
async fn fixture_with(variables: &[(&str, &str)]) -> (SessionHost, Sessions) {
    with_instance(host_with(variables).await).await
}

/// A host over `config`, and an instance of it.
async fn fixture_on(config: HostConfig) -> (SessionHost, Sessions) {
    with_instance(open(config).await).await
}

async fn with_instance(host: SessionHost) -> (SessionHost, Sessions) {
    let sessions = host.sessions().await.unwrap();
    (host, sessions)
}

/// A session for `alice` with the default options.
async fn create_alice(sessions: &mut Sessions) -> Issued {
    sessions.create("alice", default_options()).await.unwrap()
}

// --- The seed's own unit test -------------------------------------------------------------

/// `SessionManager(db_path=":memory:")`, `create_session("testuser")`, `user_id`, `is_active`.
#[tokio::test]
async fn seed_unit_test_creates_an_active_session_in_memory() {
    let (_host, mut sessions) = fixture().await;
    let issued = sessions
        .create("testuser", default_options())
        .await
        .unwrap();
    assert_eq!(issued.session.user_id, "testuser");
    assert!(issued.session.is_active);
}

// --- create and tokens --------------------------------------------------------------------

#[tokio::test]
async fn create_issues_an_id_dot_secret_token_and_the_defaults() {
    let (_host, mut sessions) = fixture().await;
    let issued = create_alice(&mut sessions).await;
    let (id, secret) = issued.token.split_once('.').expect("token is id.secret");
    assert_eq!(id, issued.session.id);
    assert_eq!(id.len(), 36);
    assert_eq!(secret.len(), 43, "32 bytes, unpadded base64url");
    let s = &issued.session;
    assert_eq!(s.created_at, START_MS);
    assert_eq!(s.last_activity, START_MS);
    assert_eq!(s.idle_timeout, 3600);
    assert_eq!(s.expires_at, START_MS + 3_600_000);
    assert_eq!(s.absolute_expires_at, START_MS + 604_800_000);
    assert_eq!(s.metadata, "{}");
}

#[tokio::test]
async fn create_keeps_metadata_and_a_custom_timeout() {
    let (_host, mut sessions) = fixture().await;
    let metadata = json!({
        "role": "admin",
        "permissions": ["read", "write", "delete"],
        "preferences": {"theme": "dark", "language": "en"},
    });
    let issued = sessions
        .create(
            "user123",
            default_options().timeout(7200).metadata(&metadata),
        )
        .await
        .unwrap();
    assert_eq!(issued.session.idle_timeout, 7200);
    let stored: serde_json::Value = serde_json::from_str(&issued.session.metadata).unwrap();
    assert_eq!(stored, metadata);
    let fetched = sessions.get(&issued.session.id).await.unwrap();
    assert_eq!(fetched.metadata, issued.session.metadata);
}

#[tokio::test]
async fn timeouts_outside_the_range_are_refused_naming_the_range() {
    let (_host, mut sessions) = fixture().await;
    for timeout in [0, 299, 86_401, u32::MAX] {
        let err = session_error(
            sessions
                .create("alice", default_options().timeout(timeout))
                .await,
        );
        let SessionError::InvalidInput(detail) = err else {
            panic!("timeout {timeout}: {err:?}");
        };
        assert!(detail.contains("between 300 and 86400"), "{detail}");
    }
    assert_eq!(sessions.stats().await.unwrap().active_sessions, 0);
}

#[tokio::test]
async fn bad_user_ids_are_refused_and_nothing_is_stored() {
    let (_host, mut sessions) = fixture().await;
    let kept = create_alice(&mut sessions).await;
    let long = "u".repeat(10 * 1024);
    for user in ["", "   ", long.as_str(), "bad\u{0}id", "line\nbreak"] {
        let err = session_error(sessions.create(user, default_options()).await);
        assert!(
            matches!(err, SessionError::InvalidInput(_)),
            "{user:?}: {err:?}"
        );
        let err = session_error(sessions.list_user(user).await);
        assert!(matches!(err, SessionError::InvalidInput(_)), "{err:?}");
    }
    let stats = sessions.stats().await.unwrap();
    assert_eq!((stats.active_sessions, stats.active_users), (1, 1));
    sessions.validate(&kept.token).await.unwrap();
}

#[tokio::test]
async fn metadata_must_be_a_json_object_within_the_cap() {
    let (_host, mut sessions) = fixture_with(&[("max_metadata_bytes", "1024")]).await;
    let huge = format!(r#"{{"blob":"{}"}}"#, "x".repeat(2000));
    let cases = [
        ("[1,2,3]", "JSON object"),
        ("\"text\"", "JSON object"),
        ("42", "JSON object"),
        ("null", "JSON object"),
        ("{not json", "not valid JSON"),
        (huge.as_str(), "at most 1024 bytes"),
    ];
    for (metadata, expected) in cases {
        let options = CreateOptions {
            metadata: Some(metadata.to_owned()),
            ..default_options()
        };
        let err = session_error(sessions.create("alice", options).await);
        let SessionError::InvalidInput(detail) = err else {
            panic!("{metadata:?}: {err:?}");
        };
        assert!(detail.contains(expected), "{metadata:?}: {detail}");
    }
    assert_eq!(sessions.stats().await.unwrap().active_sessions, 0);
}

// --- validate ------------------------------------------------------------------------------

#[tokio::test]
async fn validate_accepts_the_issued_token() {
    let (_host, mut sessions) = fixture().await;
    let issued = create_alice(&mut sessions).await;
    let session = sessions.validate(&issued.token).await.unwrap();
    assert_eq!(session.id, issued.session.id);
    assert_eq!(session.user_id, "alice");
    assert!(session.is_active);
}

#[tokio::test]
async fn malformed_tokens_are_invalid() {
    let (_host, mut sessions) = fixture().await;
    let issued = create_alice(&mut sessions).await;
    let (id, secret) = issued.token.split_once('.').unwrap();
    let cases = [
        String::new(),
        "not-a-token".to_owned(),
        id.to_owned(),
        format!("{id}."),
        format!("{id}.{secret}="),
        format!("{id}.{}", &secret[..42]),
        format!("{}.{secret}", id.to_uppercase()),
        "t".repeat(10 * 1024),
        format!("{id}.{secret}\0"),
    ];
    for token in &cases {
        let err = session_error(sessions.validate(token).await);
        assert_eq!(err, SessionError::InvalidToken, "{token:?}");
    }
    sessions.validate(&issued.token).await.unwrap();
}

#[tokio::test]
async fn a_tampered_secret_is_invalid_and_leaves_the_session_intact() {
    let (_host, mut sessions) = fixture().await;
    let issued = create_alice(&mut sessions).await;
    let (id, secret) = issued.token.split_once('.').unwrap();
    let first = if secret.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{id}.{first}{}", &secret[1..]);
    for result in [
        sessions.validate(&tampered).await,
        sessions.touch(&tampered).await,
        sessions.extend(&tampered, 60).await,
        sessions.get(&tampered).await,
    ] {
        assert_eq!(session_error(result), SessionError::InvalidToken);
    }
    assert_eq!(
        session_error(sessions.rotate(&tampered).await),
        SessionError::InvalidToken
    );
    assert_eq!(
        session_error(sessions.invalidate(&tampered).await),
        SessionError::InvalidToken
    );
    sessions.validate(&issued.token).await.unwrap();
}

#[tokio::test]
async fn a_well_formed_token_for_an_unknown_session_is_not_found() {
    let (_host, mut sessions) = fixture().await;
    let issued = create_alice(&mut sessions).await;
    let other = sessions.create("bob", default_options()).await.unwrap();
    sessions.invalidate(&other.session.id).await.unwrap();
    assert_eq!(
        session_error(sessions.validate(&other.token).await),
        SessionError::NotFound
    );
    // A secret from one session does not open another.
    let (_, secret) = issued.token.split_once('.').unwrap();
    let mixed = format!("{}.{secret}", other.session.id);
    assert_eq!(
        session_error(sessions.validate(&mixed).await),
        SessionError::NotFound
    );
}

// --- expiry, sliding activity, absolute lifetime -----------------------------------------

#[tokio::test]
async fn expired_session_is_refused() {
    let (host, mut sessions) = fixture().await;
    let issued = sessions
        .create("alice", default_options().timeout(600))
        .await
        .unwrap();
    host.clock()
        .advance(600 * SECOND - Duration::from_millis(1));
    sessions.get(&issued.session.id).await.unwrap();
    host.clock().advance(Duration::from_millis(1));
    for result in [
        sessions.validate(&issued.token).await,
        sessions.get(&issued.session.id).await,
        sessions.get(&issued.token).await,
        sessions.touch(&issued.token).await,
        sessions.extend(&issued.token, 600).await,
    ] {
        assert_eq!(session_error(result), SessionError::Expired);
    }
    assert_eq!(
        session_error(sessions.rotate(&issued.token).await),
        SessionError::Expired
    );
    assert!(sessions.list_user("alice").await.unwrap().is_empty());
}

#[tokio::test]
async fn validate_slides_the_idle_timeout() {
    let (host, mut sessions) = fixture().await;
    let issued = sessions
        .create("alice", default_options().timeout(600))
        .await
        .unwrap();
    // Use it every 9 minutes for an hour: it never expires.
    for _ in 0..7 {
        host.clock().advance(9 * MINUTE);
        let session = sessions.validate(&issued.token).await.unwrap();
        assert_eq!(session.last_activity, host.clock().now_ms());
        assert_eq!(session.expires_at, host.clock().now_ms() + 600_000);
    }
    host.clock().advance(10 * MINUTE);
    assert_eq!(
        session_error(sessions.validate(&issued.token).await),
        SessionError::Expired
    );
}

#[tokio::test]
async fn activity_writes_are_throttled_but_touch_always_writes() {
    let (host, mut sessions) = fixture().await;
    let issued = create_alice(&mut sessions).await;
    host.clock().advance(5 * SECOND);
    let read = sessions.validate(&issued.token).await.unwrap();
    assert_eq!(read.last_activity, START_MS, "within the window: no write");
    let stored = sessions.get(&issued.session.id).await.unwrap();
    assert_eq!(stored.last_activity, START_MS);

    let touched = sessions.touch(&issued.token).await.unwrap();
    assert_eq!(touched.last_activity, START_MS + 5_000);
    assert_eq!(
        sessions
            .get(&issued.session.id)
            .await
            .unwrap()
            .last_activity,
        START_MS + 5_000
    );

    host.clock().advance(15 * SECOND);
    let written = sessions.validate(&issued.token).await.unwrap();
    assert_eq!(written.last_activity, START_MS + 20_000);
    assert_eq!(
        sessions
            .get(&issued.session.id)
            .await
            .unwrap()
            .last_activity,
        START_MS + 20_000
    );
}

#[tokio::test]
async fn with_auto_update_off_validate_does_not_slide() {
    let (host, mut sessions) = fixture_with(&[("auto_update", "false")]).await;
    let issued = sessions
        .create("alice", default_options().timeout(600))
        .await
        .unwrap();
    host.clock().advance(5 * MINUTE);
    let session = sessions.validate(&issued.token).await.unwrap();
    assert_eq!(session.last_activity, START_MS);
    assert_eq!(session.expires_at, START_MS + 600_000);
    host.clock().advance(5 * MINUTE);
    assert_eq!(
        session_error(sessions.validate(&issued.token).await),
        SessionError::Expired
    );
    // Explicit activity still counts.
    let fresh = sessions
        .create("bob", default_options().timeout(600))
        .await
        .unwrap();
    host.clock().advance(5 * MINUTE);
    sessions.touch(&fresh.token).await.unwrap();
    host.clock().advance(9 * MINUTE);
    sessions.validate(&fresh.token).await.unwrap();
}

#[tokio::test]
async fn nothing_extends_a_session_past_its_absolute_lifetime() {
    let (host, mut sessions) = fixture_with(&[("absolute_lifetime", "7200")]).await;
    let issued = create_alice(&mut sessions).await;
    let end = START_MS + 7_200_000;
    assert_eq!(issued.session.absolute_expires_at, end);
    for _ in 0..3 {
        host.clock().advance(30 * MINUTE);
        let session = sessions.touch(&issued.token).await.unwrap();
        assert!(session.expires_at <= end);
        let extended = sessions.extend(&issued.token, 86_400).await.unwrap();
        assert_eq!(extended.expires_at, end);
    }
    host.clock().advance(30 * MINUTE);
    assert_eq!(
        session_error(sessions.validate(&issued.token).await),
        SessionError::Expired
    );
}

// --- extend ---------------------------------------------------------------------------------

#[tokio::test]
async fn extend_adds_time_capped_at_max_timeout_from_now() {
    let (host, mut sessions) = fixture().await;
    let issued = create_alice(&mut sessions).await;
    let extended = sessions.extend(&issued.token, 1800).await.unwrap();
    assert_eq!(extended.expires_at, START_MS + 5_400_000);
    let capped = sessions.extend(&issued.token, 86_400).await.unwrap();
    assert_eq!(
        capped.expires_at,
        START_MS + 86_400_000,
        "max_timeout from now"
    );
    let again = sessions.extend(&issued.token, 86_400).await.unwrap();
    assert_eq!(again.expires_at, START_MS + 86_400_000);
    // The extension survives later activity.
    host.clock().advance(HOUR);
    let after = sessions.validate(&issued.token).await.unwrap();
    assert_eq!(after.expires_at, START_MS + 86_400_000);
}

#[tokio::test]
async fn extend_refuses_zero_and_more_than_max_timeout() {
    let (_host, mut sessions) = fixture().await;
    let issued = create_alice(&mut sessions).await;
    for seconds in [0, 86_401] {
        let err = session_error(sessions.extend(&issued.token, seconds).await);
        assert!(
            matches!(err, SessionError::InvalidInput(ref d) if d.contains("additional_seconds")),
            "{err:?}"
        );
    }
    let unchanged = sessions.get(&issued.session.id).await.unwrap();
    assert_eq!(unchanged.expires_at, issued.session.expires_at);
}

// --- rotate ---------------------------------------------------------------------------------

#[tokio::test]
async fn rotate_issues_a_new_token_and_kills_the_old_one() {
    let (host, mut sessions) = fixture().await;
    let issued = create_alice(&mut sessions).await;
    host.clock().advance(MINUTE);
    let rotated = sessions.rotate(&issued.token).await.unwrap();
    assert_ne!(rotated.token, issued.token);
    assert_eq!(rotated.session.id, issued.session.id, "public id is kept");
    assert_eq!(rotated.session.last_activity, START_MS + 60_000);
    assert_eq!(
        session_error(sessions.validate(&issued.token).await),
        SessionError::InvalidToken
    );
    assert_eq!(
        session_error(sessions.rotate(&issued.token).await),
        SessionError::InvalidToken
    );
    sessions.validate(&rotated.token).await.unwrap();
    assert_eq!(sessions.list_user("alice").await.unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_rotations_leave_exactly_one_valid_token() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut sessions) = fixture_on(file_config(&dir)).await;
    let issued = create_alice(&mut sessions).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let host = host.clone();
            let token = issued.token.clone();
            tokio::spawn(async move { host.sessions().await?.rotate(&token).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(issued) => winners.push(issued.token),
            Err(err) => assert_eq!(err.session(), Some(&SessionError::InvalidToken), "{err}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation wins");
    sessions.validate(&winners[0]).await.unwrap();
    assert_eq!(
        session_error(sessions.validate(&issued.token).await),
        SessionError::InvalidToken
    );
}

// --- get, invalidate --------------------------------------------------------------------------

#[tokio::test]
async fn get_finds_by_public_id_or_token() {
    let (_host, mut sessions) = fixture().await;
    let issued = create_alice(&mut sessions).await;
    assert_eq!(
        sessions.get(&issued.session.id).await.unwrap().user_id,
        "alice"
    );
    assert_eq!(sessions.get(&issued.token).await.unwrap().user_id, "alice");
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        session_error(sessions.get(unknown).await),
        SessionError::NotFound
    );
    assert_eq!(
        session_error(sessions.get("nonsense").await),
        SessionError::InvalidToken
    );
}

#[tokio::test]
async fn invalidate_by_token_or_id_deletes_once() {
    let (_host, mut sessions) = fixture().await;
    let a = create_alice(&mut sessions).await;
    let b = create_alice(&mut sessions).await;
    sessions.invalidate(&a.token).await.unwrap();
    sessions.invalidate(&b.session.id).await.unwrap();
    for (token, id) in [(&a.token, &a.session.id), (&b.token, &b.session.id)] {
        assert_eq!(
            session_error(sessions.validate(token).await),
            SessionError::NotFound
        );
        assert_eq!(
            session_error(sessions.invalidate(id).await),
            SessionError::NotFound
        );
    }
}

#[tokio::test]
async fn invalidate_user_keeps_only_the_excepted_session() {
    let (_host, mut sessions) = fixture().await;
    let mut issued = Vec::new();
    for _ in 0..4 {
        issued.push(create_alice(&mut sessions).await);
    }
    let bob = sessions.create("bob", default_options()).await.unwrap();
    let keep = &issued[2];
    let deleted = sessions
        .invalidate_user("alice", Some(&keep.session.id))
        .await
        .unwrap();
    assert_eq!(deleted, 3);
    let left = sessions.list_user("alice").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, keep.session.id);
    sessions.validate(&bob.token).await.unwrap();
    assert_eq!(sessions.invalidate_user("alice", None).await.unwrap(), 1);
    assert_eq!(sessions.invalidate_user("alice", None).await.unwrap(), 0);
    let err = session_error(sessions.invalidate_user("bob", Some("not-an-id")).await);
    assert!(matches!(err, SessionError::InvalidInput(_)), "{err:?}");
    sessions.validate(&bob.token).await.unwrap();
}

#[tokio::test]
async fn invalidate_all_ends_every_session_of_every_user() {
    let (host, mut sessions) = fixture().await;
    let mut tokens = Vec::new();
    for user in ["alice", "alice", "bob", "carol"] {
        tokens.push(
            sessions
                .create(user, default_options())
                .await
                .unwrap()
                .token,
        );
    }
    // An expired row is deleted too: nothing of the old store may come back.
    let short = default_options().timeout(600);
    tokens.push(sessions.create("dave", short).await.unwrap().token);
    host.clock().advance(601 * SECOND);
    let stats = sessions.stats().await.unwrap();
    assert_eq!(
        (stats.active_sessions, stats.expired_awaiting_cleanup),
        (4, 1)
    );
    assert_eq!(sessions.invalidate_all().await.unwrap(), 5);
    for token in &tokens {
        assert_eq!(
            session_error(sessions.validate(token).await),
            SessionError::NotFound
        );
    }
    let stats = sessions.stats().await.unwrap();
    assert_eq!(
        (stats.active_sessions, stats.expired_awaiting_cleanup),
        (0, 0)
    );
    assert_eq!(sessions.invalidate_all().await.unwrap(), 0);
    // The store keeps working afterwards.
    let fresh = create_alice(&mut sessions).await;
    sessions.validate(&fresh.token).await.unwrap();
}

// --- list-user ------------------------------------------------------------------------------

#[tokio::test]
async fn list_user_shows_active_sessions_newest_activity_first_without_tokens() {
    let (host, mut sessions) = fixture().await;
    let first = create_alice(&mut sessions).await;
    host.clock().advance(MINUTE);
    let second = create_alice(&mut sessions).await;
    host.clock().advance(MINUTE);
    sessions.touch(&first.token).await.unwrap();
    let short = sessions
        .create("alice", default_options().timeout(300))
        .await
        .unwrap();
    sessions.create("bob", default_options()).await.unwrap();
    host.clock().advance(6 * MINUTE);

    let list = sessions.list_user("alice").await.unwrap();
    let ids: Vec<_> = list.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [first.session.id.as_str(), second.session.id.as_str()]);
    let shown = format!("{list:?}");
    for token in [&first.token, &second.token, &short.token] {
        let secret = token.split_once('.').unwrap().1;
        assert!(!shown.contains(secret), "a secret leaked into list-user");
    }
    assert!(sessions.list_user("nobody").await.unwrap().is_empty());
}

// --- authorize ------------------------------------------------------------------------------

#[tokio::test]
async fn authorize_checks_roles_and_permissions_from_metadata() {
    let (_host, mut sessions) = fixture().await;
    let create = |metadata: serde_json::Value| default_options().metadata(&metadata);
    let admin = sessions
        .create("root", create(json!({"role": "admin"})))
        .await
        .unwrap();
    let dev = sessions
        .create(
            "dev",
            create(json!({"role": "developer", "permissions": ["read", "write"]})),
        )
        .await
        .unwrap();
    let plain = sessions.create("joe", default_options()).await.unwrap();

    let role = |r: &str| Requirement::Role(r.to_owned());
    let permission = |p: &str| Requirement::Permission(p.to_owned());

    for requirement in [role("admin"), role("developer"), permission("delete")] {
        sessions
            .authorize(&admin.token, &requirement)
            .await
            .unwrap();
    }
    sessions
        .authorize(&dev.token, &role("developer"))
        .await
        .unwrap();
    sessions
        .authorize(&dev.token, &permission("write"))
        .await
        .unwrap();
    for requirement in [role("admin"), permission("delete")] {
        let err = session_error(sessions.authorize(&dev.token, &requirement).await);
        assert!(matches!(err, SessionError::Forbidden(_)), "{err:?}");
    }
    let err = session_error(sessions.authorize(&plain.token, &permission("read")).await);
    assert_eq!(
        err,
        SessionError::Forbidden("permission `read` required".into())
    );
    assert_eq!(
        session_error(sessions.authorize("garbage", &role("admin")).await),
        SessionError::InvalidToken
    );
}

// --- per-user limits ------------------------------------------------------------------------

#[tokio::test]
async fn eleventh_session_evicts_the_least_recently_active() {
    let (host, mut sessions) = fixture().await;
    let mut issued = Vec::new();
    for _ in 0..10 {
        issued.push(create_alice(&mut sessions).await);
        host.clock().advance(SECOND);
    }
    // Session 0 is the oldest but was just used, so session 1 is least recently active.
    host.clock().advance(MINUTE);
    sessions.touch(&issued[0].token).await.unwrap();
    let newest = create_alice(&mut sessions).await;
    assert_eq!(sessions.list_user("alice").await.unwrap().len(), 10);
    assert_eq!(
        session_error(sessions.validate(&issued[1].token).await),
        SessionError::NotFound
    );
    sessions.validate(&issued[0].token).await.unwrap();
    sessions.validate(&newest.token).await.unwrap();
}

#[tokio::test]
async fn reject_policy_refuses_the_session_over_the_limit() {
    let (_host, mut sessions) =
        fixture_with(&[("max_per_user", "3"), ("limit_policy", "reject")]).await;
    let mut issued = Vec::new();
    for _ in 0..3 {
        issued.push(create_alice(&mut sessions).await);
    }
    assert_eq!(
        session_error(sessions.create("alice", default_options()).await),
        SessionError::LimitReached
    );
    for old in &issued {
        sessions.validate(&old.token).await.unwrap();
    }
    // Other users are unaffected, and freeing a slot admits a new session.
    sessions.create("bob", default_options()).await.unwrap();
    sessions.invalidate(&issued[0].token).await.unwrap();
    create_alice(&mut sessions).await;
}

#[tokio::test]
async fn expired_sessions_do_not_count_against_the_limit() {
    let (host, mut sessions) =
        fixture_with(&[("max_per_user", "2"), ("limit_policy", "reject")]).await;
    for _ in 0..2 {
        sessions
            .create("alice", default_options().timeout(300))
            .await
            .unwrap();
    }
    host.clock().advance(5 * MINUTE);
    create_alice(&mut sessions).await;
    create_alice(&mut sessions).await;
}

async fn concurrent_creates(host: &SessionHost, user: &str, count: usize) -> usize {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let host = host.clone();
            let user = user.to_owned();
            tokio::spawn(async move {
                let mut sessions = host.sessions().await?;
                sessions.create(&user, CreateOptions::default()).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(err) => assert_eq!(err.session(), Some(&SessionError::LimitReached), "{err}"),
        }
    }
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_creates_never_exceed_the_limit_when_evicting() {
    let dir = tempfile::tempdir().unwrap();
    let host = open(file_config(&dir).with("max_per_user", "5")).await;
    assert_eq!(concurrent_creates(&host, "alice", 20).await, 20);
    let mut sessions = host.sessions().await.unwrap();
    assert_eq!(sessions.list_user("alice").await.unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_creates_admit_exactly_the_limit_when_rejecting() {
    let dir = tempfile::tempdir().unwrap();
    let config = file_config(&dir)
        .with("max_per_user", "5")
        .with("limit_policy", "reject");
    let host = open(config).await;
    assert_eq!(concurrent_creates(&host, "alice", 20).await, 5);
    let mut sessions = host.sessions().await.unwrap();
    assert_eq!(sessions.list_user("alice").await.unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_on_an_in_memory_database_also_hold_the_limit() {
    let host = host_with(&[("max_per_user", "4")]).await;
    assert_eq!(concurrent_creates(&host, "alice", 20).await, 20);
    let mut sessions = host.sessions().await.unwrap();
    assert_eq!(sessions.list_user("alice").await.unwrap().len(), 4);
}

// --- stats and cleanup ----------------------------------------------------------------------

#[tokio::test]
async fn stats_count_active_sessions_users_and_expired_rows() {
    let (host, mut sessions) = fixture().await;
    for user in ["alice", "alice", "bob"] {
        sessions.create(user, default_options()).await.unwrap();
    }
    for _ in 0..2 {
        sessions
            .create("carol", default_options().timeout(300))
            .await
            .unwrap();
    }
    host.clock().advance(5 * MINUTE);
    let stats = sessions.stats().await.unwrap();
    assert_eq!(stats.active_sessions, 3);
    assert_eq!(stats.active_users, 2);
    assert_eq!(stats.expired_awaiting_cleanup, 2);
}

#[tokio::test]
async fn cleanup_deletes_expired_rows_in_bounded_runs() {
    let (host, mut sessions) = fixture().await;
    for i in 0..7 {
        sessions
            .create(&format!("user{i}"), default_options().timeout(300))
            .await
            .unwrap();
    }
    let live = sessions.create("alive", default_options()).await.unwrap();
    host.clock().advance(10 * MINUTE);
    assert_eq!(sessions.cleanup(3).await.unwrap(), 3);
    assert_eq!(sessions.stats().await.unwrap().expired_awaiting_cleanup, 4);
    assert_eq!(sessions.cleanup(100).await.unwrap(), 4);
    assert_eq!(sessions.cleanup(100).await.unwrap(), 0);
    let stats = sessions.stats().await.unwrap();
    assert_eq!(stats.expired_awaiting_cleanup, 0);
    assert_eq!(stats.last_cleanup_at, host.clock().now_ms());
    sessions.validate(&live.token).await.unwrap();
    for bad in [0, 2_000_000] {
        let err = session_error(sessions.cleanup(bad).await);
        assert!(matches!(err, SessionError::InvalidInput(_)), "{err:?}");
    }
}

#[tokio::test]
async fn cleanup_handles_more_rows_than_one_batch() {
    let (host, mut sessions) = fixture().await;
    for i in 0..1200 {
        sessions
            .create(&format!("u{i}"), default_options().timeout(300))
            .await
            .unwrap();
    }
    host.clock().advance(HOUR);
    assert_eq!(sessions.cleanup(1100).await.unwrap(), 1100);
    assert_eq!(sessions.cleanup(1_000_000).await.unwrap(), 100);
}

#[tokio::test]
async fn create_cleans_up_once_the_interval_has_passed() {
    let (host, mut sessions) = fixture_with(&[("cleanup_interval", "600")]).await;
    // The first create claims the cleanup slot (nothing has run yet).
    for i in 0..3 {
        sessions
            .create(&format!("u{i}"), default_options().timeout(300))
            .await
            .unwrap();
    }
    host.clock().advance(6 * MINUTE);
    sessions.create("trigger", default_options()).await.unwrap();
    assert_eq!(
        sessions.stats().await.unwrap().expired_awaiting_cleanup,
        3,
        "interval not yet passed"
    );
    host.clock().advance(5 * MINUTE);
    sessions.create("trigger", default_options()).await.unwrap();
    let stats = sessions.stats().await.unwrap();
    assert_eq!(stats.expired_awaiting_cleanup, 0);
    assert_eq!(stats.last_cleanup_at, host.clock().now_ms());
}

// --- storage ----------------------------------------------------------------------------------

#[tokio::test]
async fn sessions_survive_closing_and_reopening_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let issued = {
        let host = open(file_config(&dir)).await;
        let mut sessions = host.sessions().await.unwrap();
        create_alice(&mut sessions).await
    };
    let (_host, mut sessions) = fixture_on(file_config(&dir)).await;
    let session = sessions.validate(&issued.token).await.unwrap();
    assert_eq!(session.user_id, "alice");
    assert_eq!(sessions.stats().await.unwrap().active_sessions, 1);
}

#[tokio::test]
async fn only_the_hash_of_the_secret_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut sessions) = fixture_on(file_config(&dir)).await;
    let issued = create_alice(&mut sessions).await;
    drop(sessions);
    drop(host);

    let (id, secret) = issued.token.split_once('.').unwrap();
    let db = rusqlite::Connection::open(dir.path().join("sessions.db")).unwrap();
    let hash: Vec<u8> = db
        .query_row(
            "SELECT secret_hash FROM sessions WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hash.len(), 32, "SHA-256");
    let dump: String = db
        .query_row(
            "SELECT group_concat(id || hex(secret_hash) || user_id || metadata) FROM sessions",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!dump.contains(secret));
    drop(db);
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is on disk"
        );
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let host = open(file_config(&dir)).await;
        host.sessions()
            .await
            .unwrap()
            .create("alice", default_options())
            .await
            .unwrap();
    }
    let db = rusqlite::Connection::open(dir.path().join("sessions.db")).unwrap();
    let journal: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal", "the host runs file databases in WAL mode");
    let versions: Vec<i64> = db
        .prepare("SELECT version FROM zoe_schema")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [3]);
    let indexes: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for wanted in ["sessions_by_user", "sessions_by_expiry"] {
        assert!(indexes.iter().any(|i| i == wanted), "{indexes:?}");
    }
    assert!(
        indexes
            .iter()
            .any(|i| i.starts_with("sqlite_autoindex_sessions")),
        "primary key index on the token id: {indexes:?}"
    );
    let count: i64 = db
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 3);
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(file_config(&dir)).await);
    let path = dir.path().join("sessions.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute("UPDATE zoe_schema SET version = 99", [])
        .unwrap();
    drop(db);
    let err = SessionHost::open(common::runtime(), file_config(&dir))
        .await
        .unwrap_err();
    let SessionError::Storage(detail) = err.session().cloned().expect("a session error") else {
        panic!("{err}");
    };
    assert!(detail.contains("99"), "{detail}");
}

// --- configuration ----------------------------------------------------------------------------

#[tokio::test]
async fn a_bad_setting_is_refused_naming_it() {
    let cases = [
        ("max_per_user", "many"),
        ("limit_policy", "lru"),
        ("min_timeout", "90000"),
        ("require_https", "perhaps"),
    ];
    for (name, value) in cases {
        let config = zoe_session_host::HostConfig::in_memory().with(name, value);
        let err = SessionHost::open(common::runtime(), config)
            .await
            .unwrap_err();
        let Some(SessionError::Config(detail)) = err.session() else {
            panic!("{name}={value}: {err}");
        };
        assert!(detail.contains(name), "{detail}");
    }
}
