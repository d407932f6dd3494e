//! Crash safety: `serve` on a database file is killed with SIGKILL in the middle of a
//! create/extend/delete load, restarted, and checked. Every create, extend and delete that
//! the client saw acknowledged (a complete 200 response) must have survived; requests that
//! were in flight at the kill may have gone either way, so they are never asserted on.
//!
//! The kill waits for a number of acknowledgements rather than a time, so what the test
//! asserts does not depend on the machine's speed.

use crate::support::{ADMIN, Serve, request};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Kill-and-restart rounds; the database carries over, so later rounds re-check earlier ones.
const ROUNDS: usize = 5;
/// Client threads sending load.
const WORKERS: usize = 4;
/// Acknowledged operations per round before the kill.
const ACKS_BEFORE_KILL: usize = 60;

/// What the client knows for certain about one session.
#[derive(Debug, Default, Clone)]
struct Known {
    token: String,
    /// A delete was acknowledged: the session must be gone for good.
    deleted: bool,
    /// A delete was sent but not acknowledged: the session may be present or not.
    delete_in_doubt: bool,
    /// The latest `expires_at` (RFC 3339, so string order is time order) an acknowledged
    /// create or extend reported: the stored expiry may only be later.
    expires_at: String,
}

#[derive(Debug, Default)]
struct Ledger {
    sessions: Mutex<HashMap<String, Known>>,
    acks: AtomicUsize,
}

#[test]
fn acknowledged_writes_survive_sigkill_mid_load() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let ledger = Arc::new(Ledger::default());
    let mut serve = Serve::start(&db, &[]);
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let target = ledger.acks.load(Ordering::SeqCst) + ACKS_BEFORE_KILL;
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                let (ledger, stop, addr) = (ledger.clone(), stop.clone(), serve.addr);
                std::thread::spawn(move || load(addr, &ledger, &stop, round, worker))
            })
            .collect();
        while ledger.acks.load(Ordering::SeqCst) < target {
            assert!(
                workers.iter().any(|w| !w.is_finished()),
                "every worker stopped before the kill: {}",
                serve.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // Mid-load: the workers are still sending when the process dies.
        serve.kill();
        stop.store(true, Ordering::SeqCst);
        for worker in workers {
            worker.join().expect("worker panicked");
        }
        assert_integrity(&db);
        serve = Serve::start(&db, &[]);
        check(&serve, &ledger, round);
    }
    let sessions = ledger.sessions.lock().unwrap();
    let deleted = sessions.values().filter(|k| k.deleted).count();
    assert!(
        sessions.len() >= ROUNDS * ACKS_BEFORE_KILL / 3 && deleted > 0,
        "the load did too little to test anything: {} sessions, {deleted} deleted",
        sessions.len()
    );
}

/// One worker's loop: create a session; every third step extend one, every fifth delete one.
/// Stops at the first connection error (the server was killed) or when told to.
fn load(addr: SocketAddr, ledger: &Ledger, stop: &AtomicBool, round: usize, worker: usize) {
    let mut mine: Vec<String> = Vec::new();
    for step in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let outcome = if step % 5 == 4 && !mine.is_empty() {
            let id = mine.remove(step % mine.len());
            delete(addr, ledger, &id)
        } else if step % 3 == 2 && !mine.is_empty() {
            let id = mine[step % mine.len()].clone();
            extend(addr, ledger, &id)
        } else {
            let user = format!("crash-r{round}-w{worker}-{step}");
            create(addr, ledger, &user).map(|id| mine.push(id))
        };
        if outcome.is_err() {
            return;
        }
    }
}

fn create(addr: SocketAddr, ledger: &Ledger, user: &str) -> Result<String, ()> {
    let body = json!({"user_id": user, "metadata": {"k": user}});
    let response =
        request(addr, "POST", "/sessions/create", &[ADMIN], Some(&body)).map_err(|_| ())?;
    response.expect(200);
    let value = response.json();
    let id = value["id"].as_str().expect("id").to_owned();
    let known = Known {
        token: value["session_id"].as_str().expect("token").to_owned(),
        expires_at: value["expires_at"].as_str().expect("expires_at").to_owned(),
        ..Known::default()
    };
    ledger.sessions.lock().unwrap().insert(id.clone(), known);
    ledger.acks.fetch_add(1, Ordering::SeqCst);
    Ok(id)
}

fn extend(addr: SocketAddr, ledger: &Ledger, id: &str) -> Result<(), ()> {
    let token = ledger.sessions.lock().unwrap()[id].token.clone();
    let body = json!({"additional_seconds": 600});
    let path = format!("/sessions/{token}/extend");
    let response = request(addr, "POST", &path, &[], Some(&body)).map_err(|_| ())?;
    response.expect(200);
    let expires_at = response.json()["expires_at"]
        .as_str()
        .expect("expires_at")
        .to_owned();
    let mut sessions = ledger.sessions.lock().unwrap();
    let known = sessions.get_mut(id).expect("known session");
    known.expires_at = known.expires_at.clone().max(expires_at);
    ledger.acks.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

fn delete(addr: SocketAddr, ledger: &Ledger, id: &str) -> Result<(), ()> {
    let token = {
        let mut sessions = ledger.sessions.lock().unwrap();
        let known = sessions.get_mut(id).expect("known session");
        known.delete_in_doubt = true;
        known.token.clone()
    };
    let response =
        request(addr, "DELETE", &format!("/sessions/{token}"), &[], None).map_err(|_| ())?;
    response.expect(200);
    let mut sessions = ledger.sessions.lock().unwrap();
    let known = sessions.get_mut(id).expect("known session");
    known.deleted = true;
    known.delete_in_doubt = false;
    ledger.acks.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// `PRAGMA integrity_check` on the file as the crash left it (WAL and all).
fn assert_integrity(db: &Path) {
    let conn = rusqlite::Connection::open(db).expect("open after the crash");
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check runs");
    assert_eq!(result, "ok");
}

/// Every acknowledged create is there with at least its acknowledged expiry; every
/// acknowledged delete is gone.
fn check(serve: &Serve, ledger: &Ledger, round: usize) {
    let sessions = ledger.sessions.lock().unwrap().clone();
    for (id, known) in &sessions {
        let response = request(
            serve.addr,
            "GET",
            &format!("/sessions/{}", known.token),
            &[],
            None,
        )
        .expect("the restarted server answers");
        if known.deleted {
            assert_eq!(
                response.status, 404,
                "round {round}: acknowledged delete of {id} was undone"
            );
        } else if !known.delete_in_doubt {
            assert_eq!(
                response.status,
                200,
                "round {round}: acknowledged create of {id} was lost: {:?}",
                response.json()
            );
            let stored = response.json()["expires_at"].as_str().unwrap().to_owned();
            assert!(
                stored >= known.expires_at,
                "round {round}: acknowledged extend of {id} was lost ({stored} < {})",
                known.expires_at
            );
        }
    }
}
