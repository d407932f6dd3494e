//! The WASIp3 build on a reused instance, served as Spin 4.1 serves it (one instance for up to
//! 128 requests, 16 at once): what lives across requests (the connection, the settings) and
//! what never does (anything of one request: its identity, cookie, CSRF decision, audit
//! fields). Requests interleave at the guest's awaits (its settings, its request body, the
//! host taking its response body), so these tests send 16 requests in one burst: each holds
//! back the end of its body until all have sent the rest, and `serve` (which reads a body
//! before handing the request over) then hands the 16 to the instances at once. Like Spin's,
//! `serve`'s handler (wasmtime-wasi-http's `ProxyHandler`) starts another instance whenever
//! none is free to take a request at that moment, so a burst is spread over a few instances,
//! each running several of its requests at once.

use crate::support::fresh_database;
use crate::support::http::{ADMIN_KEY, Api, admin, start_configured};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use zoe_test_support::Build;

/// Requests one instance runs at once under Spin's policy (and `serve`'s default).
const AT_ONCE: usize = 16;

/// Bursts sent at most until one lands on shared instances.
const BURSTS: usize = 8;

async fn start(variables: &[(&str, &str)]) -> Api {
    start_configured(
        Build::Wasip3.serve_runtime(),
        Some(ADMIN_KEY),
        variables,
        |_| {},
    )
    .await
}

/// The server's log so far.
fn log_text(api: &Api) -> String {
    String::from_utf8_lossy(&api.log.contents()).into_owned()
}

/// The instances the server has made so far.
fn instances(api: &Api) -> u64 {
    api.server.as_ref().expect("running").instances_created()
}

/// How request `i` proves who it is, and what it should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    /// `X-Session-ID`: no CSRF check applies.
    Header,
    /// The session cookie from a same-origin page: passes the CSRF check.
    CookieSameOrigin,
    /// The session cookie from another site: refused (403 `csrf`) before anything changes.
    CookieCrossSite,
}

impl Credential {
    fn of(i: usize) -> Self {
        match i % 3 {
            0 => Self::Header,
            1 => Self::CookieSameOrigin,
            _ => Self::CookieCrossSite,
        }
    }
}

/// One HTTP/1.1 exchange on its own connection whose body is sent in two parts: the head and
/// the first part, then, once every request has reached that point (`barrier`) and a little
/// later, the rest, so that the requests reach the instances together. Answers status, headers (lowercase names) and body.
async fn trickled(
    addr: SocketAddr,
    head: String,
    body: Vec<u8>,
    barrier: Arc<Barrier>,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(first).await.expect("first part");
    stream.flush().await.expect("flush");
    barrier.wait().await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    stream.write_all(rest).await.expect("rest");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_requests_at_once_on_reused_instances_keep_their_own_identity_cookie_csrf_and_audit()
 {
    let api = start(&[]).await;
    // (token, public id, expiry as created)
    let mut users = Vec::new();
    for i in 0..AT_ONCE {
        let created = api.create(&format!(r#"{{"user_id":"user{i:02}"}}"#)).await;
        let field = |name: &str| created[name].as_str().expect(name).to_owned();
        users.push((field("session_id"), field("id"), field("expires_at")));
    }
    assert_eq!(instances(&api), 1, "the creates ran on one reused instance");
    // Where a burst lands is the handler's choice (a busy instance takes no more, and another
    // is started), so bursts are sent until one instance has run several of them at once; the
    // isolation is checked on every burst.
    let mut shared = false;
    for _ in 0..BURSTS {
        let before = instances(&api);
        let log_before = log_text(&api).len();

        let barrier = Arc::new(Barrier::new(AT_ONCE));
        let tasks: Vec<_> = users
            .iter()
            .enumerate()
            .map(|(i, (token, id, _))| {
                let credential = match Credential::of(i) {
                    Credential::Header => format!("X-Session-ID: {token}\r\n"),
                    Credential::CookieSameOrigin => {
                        format!("Cookie: zoe_session={token}\r\nSec-Fetch-Site: same-origin\r\n")
                    }
                    Credential::CookieCrossSite => {
                        format!("Cookie: zoe_session={token}\r\nSec-Fetch-Site: cross-site\r\n")
                    }
                };
                // Each asks for its own extension, so an answer shows whose request it ran.
                let body = format!(r#"{{"additional_seconds":{}}}"#, 600 + i);
                let head = format!(
                    "POST /sessions/{id}/extend HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n{credential}\r\n",
                    body.len(),
                    addr = api.addr,
                );
                tokio::spawn(trickled(api.addr, head, body.into_bytes(), barrier.clone()))
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("request task"));
        }

        // At most AT_ONCE - 1 instances (the one that was there and the new ones) for AT_ONCE
        // requests: one of them ran two or more at once.
        shared |= instances(&api) - before + 1 < AT_ONCE as u64;
        let log = log_text(&api)[log_before..].to_owned();
        let lines: Vec<Value> = log
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        let mut request_ids = std::collections::HashSet::new();
        for (i, (status, headers, body)) in answers.iter().enumerate() {
            let (_, id, _) = &users[i];
            let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            let request_id = header("x-request-id").expect("a request id");
            assert!(
                request_ids.insert(request_id.to_owned()),
                "request {i} got another request's id {request_id}"
            );
            assert!(
                header("set-cookie").is_none(),
                "request {i} was handed a cookie: {headers:?}"
            );
            let own_events: Vec<&Value> = lines
                .iter()
                .filter(|l| l["audit"] == true && l["request_id"] == request_id)
                .collect();
            match Credential::of(i) {
                Credential::CookieCrossSite => {
                    assert_eq!(
                        (*status, json["error"].as_str()),
                        (403, Some("csrf")),
                        "request {i}: {body}"
                    );
                    assert!(
                        own_events.iter().all(|e| e["event"] != "session.extended"),
                        "request {i} was refused yet extended: {own_events:?}"
                    );
                }
                Credential::Header | Credential::CookieSameOrigin => {
                    assert_eq!(
                        *status,
                        200,
                        "request {i} ({:?}): {body}",
                        Credential::of(i)
                    );
                    assert_eq!(
                        json["id"],
                        id.as_str(),
                        "request {i} ran on another session"
                    );
                    assert_eq!(json["user_id"], format!("user{i:02}"), "request {i}");
                    let [event] = own_events.as_slice() else {
                        panic!("request {i}: one audit event expected, got {own_events:?}")
                    };
                    assert_eq!(event["event"], "session.extended", "request {i}");
                    assert_eq!(
                        event["session_id"],
                        id.as_str(),
                        "request {i}'s audit line names another session: {event}"
                    );
                }
            }
            // The request line of this request is its own: its path names its own session.
            let request_line = lines
                .iter()
                .find(|l| l["message"] == "request" && l["request_id"] == request_id)
                .unwrap_or_else(|| panic!("request {i} has no request line in {log}"));
            assert_eq!(request_line["status"], *status, "request {i}");
            assert!(
                request_line["path"]
                    .as_str()
                    .is_some_and(|p| p.contains(id.as_str())),
                "request {i}'s line names another path: {request_line}"
            );
        }
        // Positive control: the extensions landed, each on its own session with its own amount
        // (so no two agree), and the sessions the refused requests named are as they were.
        let mut extended = std::collections::HashSet::new();
        for (i, (_, id, created_expiry)) in users.iter().enumerate() {
            let now = api.get(&format!("/sessions/{id}"), admin()).await;
            let expiry = now.expect(200)["expires_at"]
                .as_str()
                .expect("expires_at")
                .to_owned();
            let answered: Value = serde_json::from_str(&answers[i].2).unwrap_or(Value::Null);
            if Credential::of(i) == Credential::CookieCrossSite {
                assert_eq!(
                    &expiry, created_expiry,
                    "user{i:02} was changed by a refused request"
                );
            } else {
                assert_eq!(answered["expires_at"], expiry.as_str(), "user{i:02}");
                assert!(
                    extended.insert(expiry.clone()),
                    "two extensions agree: {expiry}"
                );
                assert_ne!(&expiry, created_expiry, "user{i:02} was not extended");
            }
        }
        if shared {
            break;
        }
    }
    assert!(
        shared,
        "no instance ran two requests of a burst in {BURSTS} bursts"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_that_fail_leave_the_reused_instance_clean() {
    let api = start(&[("limit_policy", "reject"), ("max_per_user", "1")]).await;
    let (alice, alice_id) = api.login("alice").await;
    // Refusals of every layer, one after the other on the one instance: bad input, the
    // per-user limit (a write transaction that rolls back), CSRF, a bad token.
    api.send(
        "POST",
        "/sessions/create",
        admin(),
        Some(r#"{"user_id":"bob","metadata":[1]}"#),
    )
    .await
    .expect_error(422, "invalid_input");
    api.send(
        "POST",
        "/sessions/create",
        admin(),
        Some(r#"{"user_id":"alice"}"#),
    )
    .await
    .expect(409);
    let cookie = format!("zoe_session={alice}");
    api.send(
        "POST",
        &format!("/sessions/{alice_id}/activity"),
        &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
        None,
    )
    .await
    .expect_error(403, "csrf");
    api.get("/sessions/validate", &[("x-session-id", "not-a-token")])
        .await
        .expect(401);
    // Nothing of those requests is left: a request without credentials is nobody, ...
    api.get("/sessions/validate", &[])
        .await
        .expect_error(401, "unauthorized");
    // ... the store is not stuck in the refused create's transaction, ...
    let bob = api.create(r#"{"user_id":"bob"}"#).await;
    assert_eq!(bob["user_id"], "bob");
    // ... and alice is still alice.
    let session = api
        .get("/sessions/validate", &[("x-session-id", &alice)])
        .await;
    assert_eq!(session.expect(200)["user_id"], "alice");
    assert_eq!(instances(&api), 1, "one instance served every request");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_postgres_connection_is_replaced_on_the_same_instance() {
    let url = fresh_database();
    let database = url.rsplit('/').next().expect("a database name").to_owned();
    let api = start(&[("database_url", &url)]).await;
    let (token, _) = api.login("alice").await;
    let header = [("x-session-id", token.as_str())];
    let validate = || api.get("/sessions/validate", &header);
    validate().await.expect(200);
    // Every connection to the database is cut, the instance's among them.
    let cut = zoe_test_postgres::shared()
        .psql(
            &database,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .expect("psql");
    assert_ne!(cut, "0", "the instance held a connection to cut");
    // The request that meets the dead connection may fail (503, never a trap or a 500); the
    // next one runs on a fresh connection of the same instance.
    let first = validate().await;
    assert!(
        first.status == 200 || first.status == 503,
        "{}",
        first.report("expected 200 or 503")
    );
    assert_eq!(validate().await.expect(200)["user_id"], "alice");
    assert_eq!(
        instances(&api),
        1,
        "the instance was kept, its connection replaced"
    );
    api.stop().await;
}
