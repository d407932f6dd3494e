//! Abuse: floods of invalid tokens, oversized headers and bodies, idle and slow clients, too
//! many connections, and a guest that overruns its epoch deadline. Each test runs `serve`'s
//! [`Server`] in-process with limits small enough to hit quickly, and asserts what the client
//! sees: the right status or a closed connection — never a hang, never a 5xx for bad input.
//!
//! Nothing here asserts a duration: "cut off" means the server closed the connection before
//! the client's own 30 s safety timeout. The latency cost of a flood is measured, not asserted,
//! by the ignored test `invalid_token_flood_latency_ratio` (run by `scripts/security-suite.sh`).

mod support;

use serde_json::json;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::in_process::Harness;
use support::{ADMIN, Response, get, request};
use zoe_session_host::{Allocation, Runtime, ServeOptions};

/// Whether the server closes `stream` (EOF or reset) before the client's safety timeout.
/// Anything the server sends first (e.g. a 408) is read and ignored.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn is_refusal(response: &Response) -> bool {
    matches!(response.status, 401 | 404)
}

#[test]
fn valid_requests_keep_succeeding_during_an_invalid_token_flood() {
    let harness = Harness::start(ServeOptions::default());
    let token = harness.create_token("flooded");
    let (id, secret) = token.split_once('.').unwrap();
    let wrong_secret = format!("{id}.{}", "A".repeat(secret.len()));
    let unknown = format!("00000000-0000-4000-8000-000000000000.{secret}");
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = [wrong_secret, unknown, "garbage".to_owned()]
        .into_iter()
        .map(|bad| {
            let (addr, stop) = (harness.addr, stop.clone());
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::SeqCst) && sent < 2_000 {
                    let by_header = get(addr, "/sessions/validate", &[("x-session-id", &bad)])
                        .expect("flood request answered");
                    assert!(is_refusal(&by_header), "{:?}", by_header.json());
                    let by_path = get(addr, &format!("/sessions/{bad}"), &[])
                        .expect("flood request answered");
                    assert!(is_refusal(&by_path), "{:?}", by_path.json());
                    sent += 2;
                }
                sent
            })
        })
        .collect();
    for _ in 0..100 {
        let response = get(
            harness.addr,
            "/sessions/validate",
            &[("x-session-id", &token)],
        )
        .expect("valid request answered");
        assert_eq!(response.status, 200, "{:?}", response.json());
    }
    stop.store(true, Ordering::SeqCst);
    let flooded: usize = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    assert!(flooded > 0, "the flood never ran");
    // The flood did not damage the session either.
    assert_valid(harness.addr, &token);
}

/// Median latency of valid validations alone and under a flood of invalid tokens, printed as
/// a ratio. A measurement, so it never fails on timing: `cargo test -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; run by scripts/security-suite.sh"]
fn invalid_token_flood_latency_ratio() {
    let harness = Harness::start(ServeOptions::default());
    let token = harness.create_token("measured");
    let measure = |count: usize| {
        let mut times: Vec<Duration> = (0..count)
            .map(|_| {
                let started = Instant::now();
                assert_valid(harness.addr, &token);
                started.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    };
    let quiet = measure(200);
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..4)
        .map(|i| {
            let (addr, stop) = (harness.addr, stop.clone());
            let bad = format!("00000000-0000-4000-8000-00000000000{i}.{}", "B".repeat(43));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let _ = get(addr, "/sessions/validate", &[("x-session-id", &bad)]);
                }
            })
        })
        .collect();
    let flooded = measure(200);
    stop.store(true, Ordering::SeqCst);
    for flooder in flooders {
        flooder.join().unwrap();
    }
    println!(
        "valid validate median: {quiet:?} alone, {flooded:?} under a 4-client invalid-token \
         flood; ratio {:.2}",
        flooded.as_secs_f64() / quiet.as_secs_f64()
    );
}

#[test]
fn idle_connections_are_cut_off() {
    let harness = Harness::start(ServeOptions {
        header_read_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    });
    let mut stream = TcpStream::connect(harness.addr).unwrap();
    assert!(
        closed_by_server(&mut stream),
        "an idle connection stays open"
    );
}

#[test]
fn clients_that_send_headers_slowly_are_cut_off() {
    let harness = Harness::start(ServeOptions {
        header_read_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    });
    let mut stream = TcpStream::connect(harness.addr).unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 256];
    // Dribble one header byte every 50 ms: the header never completes. Give up after 30 s.
    for _ in 0..600 {
        if stream.write_all(b"x").is_err() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(_) => return,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
    panic!("a client dribbling its headers kept the connection for 30 s");
}

#[test]
fn oversized_headers_are_refused_with_431() {
    let harness = Harness::start(ServeOptions::default());
    let huge = "a".repeat(ServeOptions::default().max_header_bytes + 1);
    let response = get(harness.addr, "/health", &[("x-padding", &huge)]);
    match response {
        Ok(response) => assert_eq!(response.status, 431),
        // The server may close while the client is still writing; that also refuses it.
        Err(err) => assert_ne!(err.kind(), ErrorKind::TimedOut, "{err}"),
    }
    let ok = get(harness.addr, "/health", &[]).unwrap();
    assert_eq!(ok.status, 200);
}

#[test]
fn oversized_bodies_are_refused_with_413() {
    let harness = Harness::start(ServeOptions::default());
    // Declared too large: refused without the body being sent at all.
    let mut stream = start_create(harness.addr, "content-length: 10000000\r\n\r\n");
    let mut raw = vec![0u8; 4096];
    let n = stream.read(&mut raw).unwrap();
    let response = support::parse_response(&raw[..n]).expect("a response head");
    assert_eq!(response.status, 413);
    // Chunked, so no declared length: refused once the cap is passed.
    let big = json!({"user_id": "u", "metadata": {"pad": "x".repeat(100_000)}});
    let response = request(
        harness.addr,
        "POST",
        "/sessions/create",
        &[ADMIN],
        Some(&big),
    );
    match response {
        Ok(response) => assert_eq!(response.status, 413),
        Err(err) => assert_ne!(err.kind(), ErrorKind::TimedOut, "{err}"),
    }
}

#[test]
fn a_client_that_never_sends_its_body_gets_an_answer() {
    let harness = Harness::start(ServeOptions {
        request_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    });
    let mut stream = start_create(harness.addr, "content-length: 100\r\n\r\n{\"user");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(err) => {
                assert_ne!(err.kind(), ErrorKind::WouldBlock, "no answer in 30 s");
                assert_ne!(err.kind(), ErrorKind::TimedOut, "no answer in 30 s");
                break;
            }
        }
        if raw.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    if !raw.is_empty() {
        let response = support::parse_response(&raw).expect("a response head");
        assert!(
            matches!(response.status, 408 | 503),
            "status {}",
            response.status
        );
    }
}

#[test]
fn connections_beyond_the_limit_are_refused_and_slots_come_back() {
    let harness = Harness::start(ServeOptions {
        max_connections: 2,
        ..ServeOptions::default()
    });
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(harness.addr).unwrap())
        .collect();
    // Both slots are taken once the server has accepted both idle connections.
    let mut refused = None;
    for _ in 0..200 {
        let response = get(harness.addr, "/health", &[]);
        if let Ok(response) = response
            && response.status == 503
        {
            refused = Some(response);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let refused = refused.expect("a third connection is refused while two are open");
    assert_eq!(refused.json()["error"], "too_many_connections");
    drop(idle);
    let mut served = false;
    for _ in 0..200 {
        if get(harness.addr, "/health", &[]).is_ok_and(|r| r.status == 200) {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(served, "closing connections frees their slots");
}

#[test]
fn an_epoch_deadline_stops_a_guest_that_overruns_it() {
    let runtime = Runtime::new(Allocation::Pooling { max_instances: 8 }).unwrap();
    let harness = Harness::with_one_tick_deadline(&runtime);
    let stopped = harness.health_until_overrun(&runtime, || {});
    let stopped = stopped.expect("a request overran the spinning epoch within 100 tries");
    assert!(
        matches!(stopped.status, 500 | 503),
        "status {}",
        stopped.status
    );
    assert!(stopped.json()["error"].is_string());
    // The server itself is fine: with the epoch back at its normal pace requests succeed
    // (retried, because a request can still straddle one of the 50 ms ticks).
    let healthy = (0..20).any(|_| get(harness.addr, "/health", &[]).is_ok_and(|r| r.status == 200));
    assert!(healthy, "the server answers again after the overrun");
}

/// Opens a connection and writes an admin `POST /sessions/create` head whose remaining headers
/// and body so far are `rest`; answers are read with a 30 s timeout.
fn start_create(addr: SocketAddr, rest: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /sessions/create HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\n\
         content-type: application/json\r\n{rest}",
        ADMIN.1
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Validates `token` over HTTP and requires a 200.
fn assert_valid(addr: SocketAddr, token: &str) {
    let response = get(addr, "/sessions/validate", &[("x-session-id", token)]).unwrap();
    assert_eq!(response.status, 200, "{:?}", response.json());
}
