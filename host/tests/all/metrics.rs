//! `serve --metrics-listen`: the exposition parses with a real Prometheus text parser
//! (`prometheus-parse`), and its counters and gauges move as requests are made.

use crate::support::{ADMIN, Serve, get, request};
use prometheus_parse::{Scrape, Value};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use zoe_session_host::SessionHost;
use zoe_session_host::serve::{ServeOptions, Server};
use zoe_test_support::{ADMIN_KEY, file_config, serve_runtime};

async fn server(dir: &tempfile::TempDir) -> Server {
    let mut config = file_config(dir);
    config.variables.set("admin_key", ADMIN_KEY);
    let host = SessionHost::open(serve_runtime(), config)
        .await
        .expect("host");
    let options = ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        cleanup_interval: None,
        max_concurrent: 8,
        ..ServeOptions::default()
    };
    Server::start(host, options).await.expect("server")
}

/// Scrapes and parses; also checks the content type Prometheus expects.
async fn scrape(server: &Server) -> Scrape {
    let addr = server.metrics_addr().expect("metrics are served");
    let response = tokio::task::spawn_blocking(move || get(addr, "/metrics", &[]).unwrap())
        .await
        .unwrap();
    response.expect(200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(response.body.clone()).unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid exposition")
}

fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == metric
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_some_and(|have| have == *v))
        })
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => f64::NAN,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposition_parses_and_its_counters_move_with_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir).await;
    let addr = server.local_addr();
    let before = scrape(&server).await;
    assert_eq!(value(&before, "zoe_store_up", &[]), Some(1.0));
    assert_eq!(value(&before, "zoe_sessions_active", &[]), Some(0.0));
    let validate = [
        ("route", "/sessions/validate"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(value(&before, "zoe_http_requests_total", &validate), None);

    let token = tokio::task::spawn_blocking(move || {
        let created = request(
            addr,
            "POST",
            "/sessions/create",
            &[ADMIN],
            Some(&serde_json::json!({"user_id": "alice"})),
        )
        .unwrap();
        created.expect(200);
        let token = created.json()["session_id"].as_str().unwrap().to_owned();
        for _ in 0..3 {
            get(addr, "/sessions/validate", &[("x-session-id", &token)])
                .unwrap()
                .expect(200);
        }
        get(addr, "/no/such/route", &[]).unwrap().expect(404);
        // A token in the path is a route parameter: it never becomes a label.
        get(addr, &format!("/sessions/{token}"), &[]).unwrap();
        token
    })
    .await
    .unwrap();

    let after = scrape(&server).await;
    assert_eq!(
        value(&after, "zoe_http_requests_total", &validate),
        Some(3.0)
    );
    assert_eq!(
        value(
            &after,
            "zoe_http_requests_total",
            &[
                ("route", "/sessions/create"),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "zoe_http_requests_total",
            &[("route", "other"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "zoe_http_request_duration_seconds",
            &[("route", "/sessions/validate")]
        ),
        Some(3.0),
        "the histogram counted every validate"
    );
    assert_eq!(value(&after, "zoe_sessions_active", &[]), Some(1.0));
    assert_eq!(value(&after, "zoe_users_active", &[]), Some(1.0));
    let created = value(&after, "zoe_instances_created_total", &[]).unwrap();
    let reused = value(&after, "zoe_instances_reused_total", &[]).unwrap();
    assert!(
        created >= 1.0 && created + reused >= 6.0,
        "{created} + {reused}"
    );
    assert!(value(&after, "zoe_sqlite_pool_waits_total", &[]).is_some());
    for sample in &after.samples {
        for label in sample.labels.values() {
            assert!(
                !label.contains(token.split_once('.').unwrap().1),
                "{sample:?}"
            );
        }
    }
    // Only /metrics is served there.
    let metrics = server.metrics_addr().unwrap();
    let other = tokio::task::spawn_blocking(move || get(metrics, "/other", &[]).unwrap())
        .await
        .unwrap();
    other.expect(404);
    server.shutdown().await;
}

/// Issue 27: with `ulimit -n 256`, 300 idle sockets on the metrics port took every file
/// descriptor and `/health` on the API port went unanswered (EMFILE). The metrics listener
/// now holds at most a few connections, and cuts idle ones off.
#[test]
fn idle_metrics_connections_leave_the_api_its_file_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start_with(
        &dir.path().join("sessions.db"),
        &[],
        &["--metrics-listen", "127.0.0.1:0"],
        Some(256),
    );
    let metrics = serve.metrics_addr.expect("metrics are served");
    get(metrics, "/metrics", &[]).unwrap().expect(200);
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(metrics).expect("connect"))
        .collect();
    // Time for the server to accept all 300, as it did before the cap: it then ran out of
    // descriptors (this is the positive control: on that code, the check below fails).
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        get(serve.addr, "/health", &[])
            .expect("/health answers while idle metrics sockets are open")
            .expect(200);
    }
    drop(idle);
    // Slots come back as the idle clients go.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match get(metrics, "/metrics", &[]) {
            Ok(scraped) if scraped.status == 200 => break,
            other => assert!(
                Instant::now() < deadline,
                "/metrics did not answer again: {other:?}\n{}",
                serve.log_text()
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
