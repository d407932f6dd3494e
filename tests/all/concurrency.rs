//! Races on one session and on one store, through separate component instances sharing a
//! database file: nothing deleted comes back, a rotation leaves one valid token, the per-user
//! limit holds, and lock contention never surfaces as a storage error.

use crate::support as common;

use common::{file_config, open};
use std::collections::HashSet;
use zoe_session_host::{CreateOptions, HostError, SessionError, SessionHost};

/// Runs `op` on a fresh instance of the component in its own task.
fn spawn<T, F>(
    host: &SessionHost,
    op: impl FnOnce(zoe_session_host::Sessions) -> F + Send + 'static,
) -> tokio::task::JoinHandle<Result<T, HostError>>
where
    T: Send + 'static,
    F: Future<Output = Result<T, HostError>> + Send,
{
    let host = host.clone();
    tokio::spawn(async move { op(host.sessions().await?).await })
}

/// A race may refuse an operation with one of these; anything else (storage errors
/// included) is a failure.
fn assert_expected_refusal(err: &HostError) {
    assert!(
        matches!(
            err.session(),
            Some(SessionError::NotFound | SessionError::InvalidToken)
        ),
        "unexpected failure in a race: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_session_never_comes_back_whatever_races_with_the_delete() {
    let dir = tempfile::tempdir().unwrap();
    let host = open(file_config(&dir)).await;
    for round in 0..10 {
        let mut sessions = host.sessions().await.unwrap();
        let issued = sessions
            .create("alice", CreateOptions::default())
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..12 {
            let token = issued.token.clone();
            let id = issued.session.id.clone();
            tasks.push(spawn(&host, move |mut s| async move {
                match i % 6 {
                    0 => s.validate(&token).await.map(|_| None),
                    1 => s.touch(&token).await.map(|_| None),
                    2 => s.extend(&token, 600).await.map(|_| None),
                    3 => s.rotate(&token).await.map(|issued| Some(issued.token)),
                    4 if i == 4 => s.invalidate(&id).await.map(|()| None),
                    _ => s.get(&token).await.map(|_| None),
                }
            }));
        }
        let mut tokens = vec![issued.token.clone()];
        for task in tasks {
            match task.await.unwrap() {
                Ok(Some(token)) => tokens.push(token),
                Ok(None) => {}
                Err(err) => assert_expected_refusal(&err),
            }
        }
        assert_eq!(
            common::session_error(sessions.get(&issued.session.id).await),
            SessionError::NotFound,
            "round {round}: the deleted session is back"
        );
        for token in &tokens {
            assert!(
                sessions.validate(token).await.is_err(),
                "round {round}: a token of a deleted session still validates"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_rotations_and_validations_leave_exactly_one_valid_token() {
    let dir = tempfile::tempdir().unwrap();
    let host = open(file_config(&dir)).await;
    for round in 0..10 {
        let mut sessions = host.sessions().await.unwrap();
        let issued = sessions
            .create("bob", CreateOptions::default())
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..10 {
            let token = issued.token.clone();
            tasks.push(spawn(&host, move |mut s| async move {
                if i % 2 == 0 {
                    s.rotate(&token).await.map(|issued| Some(issued.token))
                } else {
                    s.validate(&token).await.map(|_| None)
                }
            }));
        }
        let mut candidates = vec![issued.token.clone()];
        for task in tasks {
            match task.await.unwrap() {
                Ok(Some(token)) => candidates.push(token),
                Ok(None) => {}
                Err(err) => assert_expected_refusal(&err),
            }
        }
        let mut valid = Vec::new();
        for token in &candidates {
            if sessions.validate(token).await.is_ok() {
                valid.push(token);
            }
        }
        assert_eq!(valid.len(), 1, "round {round}: valid tokens {valid:?}");
        assert_ne!(valid[0], &issued.token, "round {round}: a rotation won");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn many_writers_never_see_a_storage_error_and_limits_hold_per_user() {
    let dir = tempfile::tempdir().unwrap();
    let host = open(file_config(&dir).with("max_per_user", "3")).await;
    let tasks: Vec<_> = (0..120)
        .map(|i| {
            spawn(&host, move |mut s| async move {
                let user = format!("user{}", i % 10);
                let issued = s.create(&user, CreateOptions::default()).await?;
                s.validate(&issued.token).await.or_else(|err| {
                    // A later create for the same user may already have evicted this one.
                    match err.session() {
                        Some(SessionError::NotFound) => Ok(issued.session.clone()),
                        _ => Err(err),
                    }
                })?;
                Ok(issued.session.id)
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(
            task.await
                .unwrap()
                .expect("no write fails under contention"),
        );
    }
    assert_eq!(ids.len(), 120, "every create got its own id");
    let mut sessions = host.sessions().await.unwrap();
    for user in 0..10 {
        let left = sessions.list_user(&format!("user{user}")).await.unwrap();
        assert_eq!(left.len(), 3, "user{user}");
    }
    assert_eq!(sessions.stats().await.unwrap().active_sessions, 30);
}
