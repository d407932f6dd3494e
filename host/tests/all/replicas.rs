//! Scale-out for real: two `serve` processes over one PostgreSQL database (a real server
//! started by the test, see `testing/postgres`), driven over loopback HTTP. Whatever one
//! replica does, the other sees at once; limits, rotation and cleanup hold across them; a
//! replica killed mid-load loses nothing it acknowledged; a database outage is a 503 JSON
//! answer and both replicas recover by themselves. Both answer `spin:postgres` as Spin 4.0.x
//! does (`SESSION_SPIN_COMPAT=4.0`), where a query that matches no rows fails the request.

use crate::support::{ADMIN, Response, Serve, request};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zoe_session_host::config::SPIN_COMPAT_ENV;
use zoe_test_postgres::PgServer;

/// Two replicas on the database at `url`, as on Spin 4.0.x, with `extra` settings for both.
fn replicas(dir: &Path, url: &str, extra: &[(&str, &str)]) -> (Serve, Serve) {
    let mut env = vec![("SESSION_DATABASE_URL", url), (SPIN_COMPAT_ENV, "4.0")];
    env.extend_from_slice(extra);
    (
        Serve::start(&dir.join("a.db"), &env),
        Serve::start(&dir.join("b.db"), &env),
    )
}

fn fresh_database() -> String {
    zoe_test_postgres::shared()
        .fresh_database()
        .expect("a fresh database")
}

fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Response {
    request(addr, method, path, headers, body.as_ref())
        .unwrap_or_else(|err| panic!("{method} {path} on {addr}: {err}"))
}

fn create(addr: SocketAddr, user: &str) -> (String, String) {
    let reply = send(
        addr,
        "POST",
        "/sessions/create",
        &[ADMIN],
        Some(json!({"user_id": user})),
    );
    reply.expect(200);
    let body = reply.json();
    (
        body["session_id"].as_str().unwrap().to_owned(),
        body["id"].as_str().unwrap().to_owned(),
    )
}

fn validate(addr: SocketAddr, token: &str) -> u16 {
    send(
        addr,
        "GET",
        "/sessions/validate",
        &[("x-session-id", token)],
        None,
    )
    .status
}

#[test]
fn a_session_made_on_one_replica_lives_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(dir.path(), &fresh_database(), &[]);
    let (token, id) = create(a.addr, "alice");
    assert_eq!(validate(b.addr, &token), 200);

    let extended = send(
        b.addr,
        "POST",
        &format!("/sessions/{token}/extend"),
        &[],
        Some(json!({"additional_seconds": 600})),
    );
    extended.expect(200);
    let on_a = send(a.addr, "GET", &format!("/sessions/{id}"), &[ADMIN], None);
    assert_eq!(on_a.json()["expires_at"], extended.json()["expires_at"]);

    let rotated = send(
        b.addr,
        "POST",
        &format!("/sessions/{token}/rotate"),
        &[],
        None,
    );
    rotated.expect(200);
    let new = rotated.json()["session_id"].as_str().unwrap().to_owned();
    assert_eq!(validate(a.addr, &token), 401, "the old token died on both");
    assert_eq!(validate(a.addr, &new), 200);
}

#[test]
fn an_invalidation_on_one_replica_is_refused_at_once_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(dir.path(), &fresh_database(), &[]);
    // One session.
    let (one, _) = create(a.addr, "alice");
    let (kept, _) = create(a.addr, "bob");
    assert_eq!(
        validate(b.addr, &one),
        200,
        "positive control: valid before"
    );
    assert_eq!(
        send(a.addr, "DELETE", &format!("/sessions/{one}"), &[], None).status,
        200
    );
    assert_eq!(validate(b.addr, &one), 401);
    // A user's sessions.
    let user: Vec<String> = (0..3).map(|_| create(b.addr, "carol").0).collect();
    let gone = send(a.addr, "DELETE", "/sessions/user/carol", &[ADMIN], None);
    assert_eq!(gone.json()["invalidated"], 3);
    for token in &user {
        assert_eq!(validate(b.addr, token), 401);
    }
    assert_eq!(
        validate(b.addr, &kept),
        200,
        "another user's session is untouched"
    );
    // Everyone.
    let all = send(b.addr, "DELETE", "/sessions?all=true", &[ADMIN], None);
    all.expect(200);
    assert_eq!(validate(a.addr, &kept), 401);
}

/// 40 concurrent creates for one user, spread over both replicas, under both policies.
#[test]
fn the_per_user_limit_holds_across_replicas() {
    const LIMIT: usize = 5;
    for policy in ["evict_oldest", "reject"] {
        let dir = tempfile::tempdir().unwrap();
        let limit = LIMIT.to_string();
        let (a, b) = replicas(
            dir.path(),
            &fresh_database(),
            &[
                ("SESSION_MAX_PER_USER", &limit),
                ("SESSION_LIMIT_POLICY", policy),
            ],
        );
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..40)
                .map(|i| {
                    let addr = if i % 2 == 0 { a.addr } else { b.addr };
                    scope.spawn(move || {
                        send(
                            addr,
                            "POST",
                            "/sessions/create",
                            &[ADMIN],
                            Some(json!({"user_id": "dave"})),
                        )
                        .status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let listed = send(
            a.addr,
            "GET",
            "/sessions/user/dave/sessions",
            &[ADMIN],
            None,
        );
        let count = listed.json()["count"].as_u64().unwrap() as usize;
        let created = statuses.iter().filter(|s| **s == 200).count();
        match policy {
            "evict_oldest" => {
                assert!(statuses.iter().all(|s| *s == 200), "{policy}: {statuses:?}");
                assert_eq!(count, LIMIT, "{policy}");
            }
            _ => {
                assert!(
                    statuses.iter().all(|s| *s == 200 || *s == 409),
                    "{statuses:?}"
                );
                assert_eq!(created, LIMIT, "{policy}: exactly the limit succeeds");
                assert_eq!(count, LIMIT, "{policy}");
            }
        }
    }
    // Positive control: with room for all of them, all 40 are counted.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(
        dir.path(),
        &fresh_database(),
        &[("SESSION_MAX_PER_USER", "100")],
    );
    std::thread::scope(|scope| {
        for i in 0..40 {
            let addr = if i % 2 == 0 { a.addr } else { b.addr };
            scope.spawn(move || create(addr, "erin"));
        }
    });
    let listed = send(
        b.addr,
        "GET",
        "/sessions/user/erin/sessions",
        &[ADMIN],
        None,
    );
    assert_eq!(listed.json()["count"], 40);
}

/// Both replicas clean up at once: every expired row is deleted exactly once, and validates
/// of live sessions keep answering meanwhile.
#[test]
fn concurrent_cleanups_on_both_replicas_delete_each_row_once() {
    const EXPIRED: usize = 1_200;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(
        dir.path(),
        &fresh_database(),
        &[
            ("SESSION_MIN_TIMEOUT", "1"),
            ("SESSION_CLEANUP_INTERVAL", "86400"),
        ],
    );
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let addr = if worker % 2 == 0 { a.addr } else { b.addr };
            scope.spawn(move || {
                for i in 0..EXPIRED / 4 {
                    let body = json!({"user_id": format!("short-{worker}-{i}"), "timeout": 1});
                    let reply = send(addr, "POST", "/sessions/create", &[ADMIN], Some(body));
                    reply.expect(200);
                }
            });
        }
    });
    let (live, _) = create(a.addr, "frank");
    // The short sessions expire after one second of wall-clock time.
    std::thread::sleep(Duration::from_millis(1_500));
    let stats = send(b.addr, "GET", "/sessions/stats", &[ADMIN], None).json();
    assert_eq!(
        stats["expired_awaiting_cleanup"], EXPIRED,
        "positive control: {stats}"
    );

    let deleted = AtomicUsize::new(0);
    let validates = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let cleaners: Vec<_> = (0..6)
            .map(|i| {
                let addr = if i % 2 == 0 { a.addr } else { b.addr };
                let deleted = &deleted;
                scope.spawn(move || {
                    // Small batches so that the cleanups really interleave.
                    for _ in 0..10 {
                        let reply = send(
                            addr,
                            "POST",
                            "/sessions/cleanup",
                            &[ADMIN],
                            Some(json!({"max_rows": 100})),
                        );
                        assert_eq!(
                            reply.status,
                            200,
                            "{}",
                            String::from_utf8_lossy(&reply.body)
                        );
                        let n = reply.json()["deleted"].as_u64().unwrap() as usize;
                        deleted.fetch_add(n, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                for addr in [a.addr, b.addr] {
                    assert_eq!(
                        validate(addr, &live),
                        200,
                        "a validate failed during cleanup"
                    );
                    validates.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        for cleaner in cleaners {
            cleaner.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
    });
    assert_eq!(
        deleted.load(Ordering::SeqCst),
        EXPIRED,
        "each row deleted exactly once"
    );
    assert!(validates.load(Ordering::SeqCst) > 0);
    let stats = send(a.addr, "GET", "/sessions/stats", &[ADMIN], None).json();
    assert_eq!(stats["expired_awaiting_cleanup"], 0);
    assert_eq!(stats["active_sessions"], 1);
}

/// What the client knows for certain.
#[derive(Debug, Default)]
struct Ledger {
    /// Acknowledged creates not deleted: (token, delete in flight).
    live: Mutex<Vec<(String, bool)>>,
    /// Acknowledged deletes.
    deleted: Mutex<Vec<String>>,
    acks: AtomicUsize,
}

/// SIGKILL one replica mid-load: every create and delete either replica acknowledged holds,
/// as the survivor sees it, and the survivor keeps serving.
#[test]
fn killing_one_replica_mid_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(dir.path(), &fresh_database(), &[]);
    let ledger = Arc::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let addr = if worker % 2 == 0 { a.addr } else { b.addr };
            let (ledger, stop) = (ledger.clone(), stop.clone());
            std::thread::spawn(move || load(addr, &ledger, &stop, worker))
        })
        .collect();
    // Bounded, like every wait here: a worker stops at its first failed request, so a load
    // that never gets going would otherwise be waited for forever.
    let deadline = Instant::now() + Duration::from_secs(60);
    while ledger.acks.load(Ordering::SeqCst) < 200 {
        assert!(
            Instant::now() < deadline && !workers.iter().all(|w| w.is_finished()),
            "the load never reached 200 acknowledged requests"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    a.kill();
    // The survivor keeps serving while the load goes on against it.
    let before = ledger.acks.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ledger.acks.load(Ordering::SeqCst) < before + 50 {
        assert!(
            Instant::now() < deadline,
            "the surviving replica stopped serving"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().unwrap();
    }
    let live = ledger.live.lock().unwrap();
    let deleted = ledger.deleted.lock().unwrap();
    assert!(
        live.len() > 50 && !deleted.is_empty(),
        "too little load: {} / {}",
        live.len(),
        deleted.len()
    );
    for (token, in_doubt) in live.iter() {
        if !in_doubt {
            assert_eq!(
                validate(b.addr, token),
                200,
                "an acknowledged create was lost"
            );
        }
    }
    for token in deleted.iter() {
        assert_eq!(
            validate(b.addr, token),
            401,
            "an acknowledged delete was undone"
        );
    }
}

/// Creates, and every third step deletes its oldest; stops at the first connection error.
fn load(addr: SocketAddr, ledger: &Ledger, stop: &AtomicBool, worker: usize) {
    for step in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if step % 3 == 2 {
            let token = {
                let mut live = ledger.live.lock().unwrap();
                let Some(entry) = live.iter_mut().find(|(_, in_doubt)| !in_doubt) else {
                    continue;
                };
                entry.1 = true;
                entry.0.clone()
            };
            let Ok(reply) = request(addr, "DELETE", &format!("/sessions/{token}"), &[], None)
            else {
                return;
            };
            reply.expect(200);
            ledger.live.lock().unwrap().retain(|(t, _)| *t != token);
            ledger.deleted.lock().unwrap().push(token);
        } else {
            let body = json!({"user_id": format!("load-{worker}-{step}")});
            let Ok(reply) = request(addr, "POST", "/sessions/create", &[ADMIN], Some(&body)) else {
                return;
            };
            reply.expect(200);
            let token = reply.json()["session_id"].as_str().unwrap().to_owned();
            ledger.live.lock().unwrap().push((token, false));
        }
        ledger.acks.fetch_add(1, Ordering::SeqCst);
    }
}

/// Postgres stops: requests that need it get a prompt 503 JSON answer (health stays up);
/// Postgres comes back: both replicas serve again, with no restart.
#[test]
fn a_database_outage_is_503_and_both_replicas_recover_by_themselves() {
    let server = PgServer::start().expect("a server of our own to stop");
    let url = server.fresh_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(dir.path(), &url, &[]);
    let (token, _) = create(a.addr, "grace");
    assert_eq!(validate(b.addr, &token), 200);

    server.stop().unwrap();
    for addr in [a.addr, b.addr] {
        let started = Instant::now();
        let refused = send(
            addr,
            "GET",
            "/sessions/validate",
            &[("x-session-id", &token)],
            None,
        );
        assert_eq!(
            refused.status,
            503,
            "{}",
            String::from_utf8_lossy(&refused.body)
        );
        let body = refused.json();
        assert_eq!(body["error"], "storage_unavailable", "{body}");
        assert!(body["detail"].is_string());
        assert!(
            !body.to_string().contains("127.0.0.1"),
            "no internals: {body}"
        );
        assert!(started.elapsed() < Duration::from_secs(20), "never a hang");
        let create = send(
            addr,
            "POST",
            "/sessions/create",
            &[ADMIN],
            Some(json!({"user_id": "grace"})),
        );
        create.expect(503);
        send(addr, "GET", "/health", &[], None).expect(200);
    }

    server.restart().unwrap();
    for addr in [a.addr, b.addr] {
        // The first request after the restart may still meet a pooled connection the server
        // closed; within a few attempts the replica must be serving again.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = validate(addr, &token);
            if status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{addr} did not recover: {status}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        create(addr, "grace");
    }
}
