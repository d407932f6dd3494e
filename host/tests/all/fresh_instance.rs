//! What a fresh instance costs its host (issue 18): `serve` in Spin's cost mode (a fresh
//! instance per request, a new SQLite connection per `open` in rollback-journal mode) with
//! its host calls counted per request. Under Spin each variable read and each statement is
//! paid on every request, so these counts are pinned here; BENCHMARKS.md has the timings.
//! So is the shape of each response when the guest hands its head over (issue 28): under Spin,
//! which leaves Nagle's algorithm on, a body still being written then costs a delayed ACK.

use crate::support::in_process::Harness;
use crate::support::{ADMIN, ADMIN_KEY, Response, get, read_response, request};
use std::io::Write as _;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zoe_session_host::{
    Allocation, HostCallSink, Metering, RequestCosts, Runtime, RuntimeOptions, ServeOptions,
};
use zoe_test_support::serve_runtime;

/// A server in Spin's cost mode with request logging on (spin.toml's default), and the costs
/// of every request it has answered.
fn counted() -> (Harness, Arc<Mutex<Vec<RequestCosts>>>) {
    counted_on(serve_runtime(), ServeOptions::default())
}

/// As [`counted`], on `runtime`, with `options` otherwise.
fn counted_on(
    runtime: &Runtime,
    options: ServeOptions,
) -> (Harness, Arc<Mutex<Vec<RequestCosts>>>) {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let reports = reports.clone();
        HostCallSink::new(move |costs| reports.lock().unwrap().push(costs))
    };
    let options = ServeOptions {
        requests_per_instance: 1,
        count_host_calls: Some(sink),
        ..options
    };
    let harness = Harness::start_configured(runtime, options, |config| {
        config.connection_per_open = true;
        config.variables.set("log_requests", "true");
    });
    (harness, reports)
}

/// Sends `send` and returns the costs reported for it (reported when its body is dropped,
/// which may be just after the client has the answer).
fn costs_of(
    reports: &Mutex<Vec<RequestCosts>>,
    send: impl FnOnce() -> Response,
) -> (Response, RequestCosts) {
    let before = reports.lock().unwrap().len();
    let response = send();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(costs) = reports.lock().unwrap().get(before) {
            return (response, *costs);
        }
        assert!(Instant::now() < deadline, "no costs reported in 10 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_fresh_validate_reads_two_variables_and_runs_one_statement() {
    let (harness, reports) = counted();
    let token = harness.create_token("alice");
    let (response, costs) = costs_of(&reports, || {
        get(
            harness.addr,
            "/sessions/validate",
            &[("x-session-id", &token)],
        )
        .unwrap()
    });
    assert_eq!(response.status, 200);
    assert_eq!(costs.status, 200);
    // `request_settings` (log_requests, log_level, require_https, session_header and
    // key_value_store in one variable) and database_url, the two that choose the backend (both
    // read, so that both set is refused); no activity write is due, so neither auto_update
    // nor a second statement.
    assert_eq!(costs.calls.variable_reads, 2, "{costs:?}");
    assert_eq!(costs.calls.sqlite_opens, 1, "{costs:?}");
    assert_eq!(
        costs.calls.sqlite_statements, 1,
        "no PRAGMA, no schema check: {costs:?}"
    );
    assert_eq!(costs.body_writes, 1, "{costs:?}");
    assert_eq!(
        costs.calls.stderr_writes, 1,
        "the request's log line, in one write"
    );
    assert_eq!(
        costs.calls.request_body_reads, 0,
        "a GET's body stream is never opened: {costs:?}"
    );
}

#[test]
fn a_create_reads_its_body_and_a_get_does_not() {
    // The positive control of `request_body_reads`: the counter sees a body being read.
    let (harness, reports) = counted();
    let (response, create) = costs_of(&reports, || {
        request(
            harness.addr,
            "POST",
            "/sessions/create",
            &[ADMIN],
            Some(&serde_json::json!({"user_id": "alice"})),
        )
        .unwrap()
    });
    assert_eq!(response.status, 200, "{}", response.json());
    assert!(create.calls.request_body_reads >= 1, "{create:?}");
    let (response, health) = costs_of(&reports, || get(harness.addr, "/health", &[]).unwrap());
    assert_eq!(response.status, 200);
    assert_eq!(health.calls.request_body_reads, 0, "{health:?}");
}

#[test]
fn health_and_the_openapi_document_touch_no_database_and_write_their_body_once() {
    let (harness, reports) = counted();
    let (response, health) = costs_of(&reports, || get(harness.addr, "/health", &[]).unwrap());
    assert_eq!(response.status, 200);
    // `request_settings` alone.
    assert_eq!(health.calls.variable_reads, 1, "{health:?}");
    assert_eq!(
        health.calls.sqlite_opens + health.calls.sqlite_statements,
        0
    );
    assert_eq!(health.calls.stderr_writes, 1, "{health:?}");
    let (response, openapi) = costs_of(&reports, || {
        get(harness.addr, "/openapi.json", &[]).unwrap()
    });
    assert_eq!(response.status, 200);
    assert_eq!(openapi.body_bytes, response.body.len());
    assert!(openapi.body_bytes > 16 * 1024, "{openapi:?}");
    assert_eq!(
        openapi.body_writes, 1,
        "a large body in one write: {openapi:?}"
    );
}

#[test]
fn an_admin_request_reads_every_setting() {
    // The positive control of the counts above: a route that checks the whole configuration
    // is seen reading all of it.
    let (harness, reports) = counted();
    let (response, costs) = costs_of(&reports, || {
        request(harness.addr, "GET", "/sessions/stats", &[ADMIN], None).unwrap()
    });
    assert_eq!(response.status, 200);
    // The twenty-eight settings of the table (`SETTINGS` in config/src/lib.rs): the five
    // of the request bundle in one read, the twenty-three others one by one.
    let bundled = zoe_session_config::REQUEST_SETTINGS.settings.len();
    let expected = u32::try_from(zoe_session_config::SETTINGS.len() - bundled + 1).unwrap();
    assert_eq!(expected, 24);
    assert_eq!(costs.calls.variable_reads, expected, "{costs:?}");
    assert!(costs.calls.sqlite_statements >= 1);
}

#[test]
fn spin_cost_mode_keeps_the_database_in_rollback_journal_mode() {
    let (harness, _) = counted();
    harness.create_token("alice");
    let path = harness.database_path();
    let mode: String = rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    assert!(!std::path::Path::new(&wal).exists(), "no write-ahead log");
}

#[test]
fn a_metered_runtime_reports_the_fuel_each_request_burns_and_it_holds_steady() {
    let metered = Runtime::new(RuntimeOptions {
        allocation: Allocation::Pooling { max_instances: 8 },
        metering: Metering::Fuel,
        max_memory_bytes: None,
    })
    .expect("component compiles");
    let (harness, reports) = counted_on(&metered, ServeOptions::default());
    let token = harness.create_token("alice");
    let fuel = |path: &str, headers: &[(&str, &str)]| {
        let (response, costs) = costs_of(&reports, || get(harness.addr, path, headers).unwrap());
        assert_eq!(response.status, 200, "{path}");
        costs.guest_fuel.expect("a metered runtime reports fuel")
    };
    let health = [fuel("/health", &[]), fuel("/health", &[])];
    // The same request on a fresh instance burns the same fuel, within a hair (the random
    // request id and hash seeds may take another branch or two).
    let spread = health[0].abs_diff(health[1]);
    assert!(health[0] > 10_000 && spread * 100 < health[0], "{health:?}");
    // The figure follows the guest's work: a validate does more than `/health`.
    let validate = fuel("/sessions/validate", &[("x-session-id", &token)]);
    assert!(
        validate > health[0],
        "validate {validate}, /health {health:?}"
    );
    // Control: a runtime that does not meter reports none.
    let (plain, plain_reports) = counted();
    let (_, costs) = costs_of(&plain_reports, || get(plain.addr, "/health", &[]).unwrap());
    assert_eq!(costs.guest_fuel, None);
}

#[test]
fn every_answer_is_whole_with_its_length_when_its_head_is_handed_over() {
    // One keep-alive connection to a server that leaves Nagle's algorithm on, as Spin's does.
    // Under Spin the head goes to hyper the moment the guest sets it; a body still unwritten
    // or unfinished then reaches the socket in later writes, each waiting ~40 ms for the
    // client's delayed ACK. So every answer must be written and finished before its head is
    // set, and carry its length. No time is measured: the host records the body's state at
    // that moment. (Positive control: the component built as spin-sdk's `IntoResponse` path
    // does it, setting the head first, fails here on every request;
    // docs/benchmarks-history.md, 2026-12-06.)
    let (harness, reports) = counted_on(
        serve_runtime(),
        ServeOptions {
            tcp_nodelay: false,
            ..ServeOptions::default()
        },
    );
    let token = harness.create_token("alice");
    let mut conn = TcpStream::connect(harness.addr).unwrap();
    let create = r#"{"user_id":"bob"}"#;
    let mut requests: Vec<(String, String)> = Vec::new();
    for _ in 0..20 {
        requests.push(("GET /health".into(), String::new()));
        requests.push((
            "GET /sessions/validate".into(),
            format!("x-session-id: {token}\r\n"),
        ));
    }
    requests.extend([
        ("GET /openapi.json".into(), String::new()),
        ("GET /no/such/route".into(), String::new()),
        ("GET /sessions/validate".into(), String::new()),
        (
            "POST /sessions/create".into(),
            format!(
                "authorization: Bearer {ADMIN_KEY}\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\n",
                create.len()
            ),
        ),
        // Last: a HEAD answer has neither length nor chunks, so only the close ends it here.
        ("HEAD /health".into(), "connection: close\r\n".into()),
    ]);
    for (line, headers) in &requests {
        let body = if line.starts_with("POST") { create } else { "" };
        let (response, costs) = costs_of(&reports, || {
            // In one write: the client has Nagle's algorithm on too.
            let sent = format!("{line} HTTP/1.1\r\nhost: zoe\r\n{headers}\r\n{body}");
            conn.write_all(sent.as_bytes()).unwrap();
            read_response(&mut conn).unwrap()
        });
        let whole = costs.body_at_head;
        assert!(
            whole.finished && whole.frames == costs.body_writes && costs.body_writes <= 1,
            "{line}: the body was not written and finished when its head was set: {costs:?}"
        );
        assert_eq!(response.header("transfer-encoding"), None, "{line}");
        if line.starts_with("HEAD") {
            assert!(response.body.is_empty(), "{line}");
            continue;
        }
        assert_eq!(
            response.header("content-length"),
            Some(response.body.len().to_string().as_str()),
            "{line}: {}",
            response.report("no length")
        );
        assert_eq!(costs.body_bytes, response.body.len(), "{line}");
    }
    let statuses: Vec<u16> = reports.lock().unwrap().iter().map(|c| c.status).collect();
    // The requests reached every kind of answer, all on the one connection.
    for status in [200, 401, 404] {
        assert!(statuses.contains(&status), "{status}: {statuses:?}");
    }
}
