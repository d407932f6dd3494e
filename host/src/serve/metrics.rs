//! Prometheus metrics of `serve`, on a listener of their own (`--metrics-listen`): requests by
//! route template, method and status, a latency histogram per route, instances created and
//! reused, waits for a pooled SQLite connection, and the `stats` gauges.
//!
//! A separate address rather than `/metrics` behind the admin key: a scraper inside the
//! cluster then needs no admin key (which would let it create sessions for anyone), and the
//! component's API, the same on Spin, gains no route. Bind it to an address only the scraper
//! reaches.
//!
//! Route templates come from the component's OpenAPI document (one source of the routes),
//! written with `:name` for a parameter (`/sessions/:session_id`): the label stays bounded
//! whatever paths clients send (anything else is `other`), and holds no token.
//!
//! The listener cannot take what the API needs (issue 27: 300 idle sockets here once used up
//! the process's file descriptors, and the API port stopped answering). It holds at most
//! [`MAX_CONNECTIONS`] connections and closes any beyond them at once, without a word: an
//! answer would hold the descriptor until it was sent. A connection's head must arrive within
//! the API's header timeout, which also ends idle keep-alive connections; no body is read
//! (`GET /metrics` has none, and hyper closes a connection whose body was left unread), so no
//! body timeout is needed. Accept errors back off as the API's accept loop does.

use super::log::log_line;
use super::pool::InstancePool;
use crate::api::SessionHost;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The OpenAPI document the component serves at `/openapi.json`.
const OPENAPI: &str = include_str!("../../../core/src/http/openapi.json");

/// Connections the metrics listener serves at once: a scraper or two, with room to spare.
pub const MAX_CONNECTIONS: usize = 16;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or below each bound of [`BUCKETS`] (not yet cumulative).
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// What `serve` counts while it runs.
#[derive(Debug)]
pub struct Metrics {
    /// Route templates, split into segments (`None` for a parameter).
    routes: Vec<(String, Vec<Option<String>>)>,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters that live elsewhere, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub instances_created: u64,
    pub instances_reused: u64,
    pub sqlite_pool_waits: u64,
    /// `stats` of the store, or `None` when it could not be read.
    pub stats: Option<(u64, u64, u64)>,
}

impl Metrics {
    pub fn new() -> Self {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).unwrap_or_default();
        let routes = document["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .keys()
                    .map(|path| {
                        let segments: Vec<Option<String>> = path
                            .trim_start_matches('/')
                            .split('/')
                            .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                            .collect();
                        let label = segments
                            .iter()
                            .zip(path.trim_start_matches('/').split('/'))
                            .map(|(literal, raw)| match literal {
                                Some(s) => s.clone(),
                                None => format!(":{}", raw.trim_matches(['{', '}'])),
                            })
                            .collect::<Vec<_>>()
                            .join("/");
                        (format!("/{label}"), segments)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            routes,
            requests: Mutex::default(),
            durations: Mutex::default(),
        }
    }

    /// The template `path` matches (the one with the most literal segments), else `other`.
    pub fn route(&self, path: &str) -> &str {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.routes
            .iter()
            .filter(|(_, segments)| {
                segments.len() == parts.len()
                    && segments.iter().zip(&parts).all(|(s, p)| match s {
                        Some(literal) => literal == p,
                        None => !p.is_empty(),
                    })
            })
            .max_by_key(|(_, segments)| segments.iter().filter(|s| s.is_some()).count())
            .map_or("other", |(label, _)| label.as_str())
    }

    /// Counts one answered request (its head sent after `elapsed`).
    pub fn record(&self, path: &str, method: &str, status: u16, elapsed: Duration) {
        let route = self.route(path).to_owned();
        // Only the methods the API uses; anything else is one label, however clients spell it.
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
            _ => "other",
        };
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((route.clone(), method.to_owned(), status))
            .or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let mut durations = self
            .durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let histogram = durations.entry(route).or_default();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[bucket] += 1;
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, snapshot: Snapshot) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP zoe_http_requests_total Requests answered, by route template, method and status.\n\
             # TYPE zoe_http_requests_total counter\n",
        );
        for ((route, method, status), count) in self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "zoe_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP zoe_http_request_duration_seconds Time to the response head, by route template.\n\
             # TYPE zoe_http_request_duration_seconds histogram\n",
        );
        for (route, histogram) in self
            .durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "zoe_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "zoe_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 zoe_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 zoe_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count, histogram.sum, histogram.count
            );
        }
        let counters = [
            (
                "zoe_instances_created_total",
                "Component instances created for requests.",
                snapshot.instances_created,
            ),
            (
                "zoe_instances_reused_total",
                "Requests served by an instance kept from an earlier request.",
                snapshot.instances_reused,
            ),
            (
                "zoe_sqlite_pool_waits_total",
                "Times a statement waited for a pooled SQLite connection.",
                snapshot.sqlite_pool_waits,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let up = u8::from(snapshot.stats.is_some());
        let _ = writeln!(
            out,
            "# HELP zoe_store_up Whether the session store answered this scrape's stats.\n\
             # TYPE zoe_store_up gauge\nzoe_store_up {up}"
        );
        if let Some((active, users, expired)) = snapshot.stats {
            let gauges = [
                ("zoe_sessions_active", "Unexpired sessions.", active),
                (
                    "zoe_users_active",
                    "Users with an unexpired session.",
                    users,
                ),
                (
                    "zoe_sessions_expired_awaiting_cleanup",
                    "Expired sessions not yet deleted.",
                    expired,
                ),
            ];
            for (name, help, value) in gauges {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
                );
            }
        }
        out
    }
}

/// The metrics listener: `GET /metrics` answers the exposition; anything else is 404.
pub(super) struct Exporter {
    pub(super) metrics: Arc<Metrics>,
    pub(super) instances: Arc<InstancePool>,
    pub(super) host: SessionHost,
    /// The API's [`super::ServeOptions::header_read_timeout`].
    pub(super) header_read_timeout: Duration,
    /// The API's [`super::ServeOptions::max_header_bytes`].
    pub(super) max_header_bytes: usize,
}

impl Exporter {
    pub(super) async fn serve(self, listener: TcpListener) {
        let exporter = Arc::new(self);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    log_line("WARN", "metrics accept failed", &err.to_string());
                    // E.g. out of file descriptors: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let exporter = exporter.clone();
            tokio::spawn(async move {
                let (header_read_timeout, max_header_bytes) =
                    (exporter.header_read_timeout, exporter.max_header_bytes);
                let service = service_fn(move |req| {
                    let exporter = exporter.clone();
                    async move { Ok::<_, std::convert::Infallible>(exporter.answer(req).await) }
                });
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    .max_header_size(max_header_bytes)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                drop(slot);
            });
        }
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.uri().path() != "/metrics" || req.method() != http::Method::GET {
            let mut response = Response::new(Full::new(Bytes::from_static(
                b"{\"error\":\"not_found\",\"detail\":\"metrics are at GET /metrics\"}",
            )));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        }
        let stats = match self.host.sessions().await {
            Ok(mut sessions) => sessions.stats().await.ok(),
            Err(_) => None,
        };
        let snapshot = Snapshot {
            instances_created: self.instances.created.load(Ordering::Relaxed),
            instances_reused: self.instances.reused.load(Ordering::Relaxed),
            sqlite_pool_waits: self.host.database().pool_waits(),
            stats: stats.map(|s| {
                (
                    s.active_sessions,
                    s.active_users,
                    s.expired_awaiting_cleanup,
                )
            }),
        };
        let mut response = Response::new(Full::new(Bytes::from(self.metrics.render(snapshot))));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_templates_and_the_rest_to_other() {
        let metrics = Metrics::new();
        assert_eq!(metrics.route("/sessions/validate"), "/sessions/validate");
        assert_eq!(metrics.route("/sessions/stats"), "/sessions/stats");
        assert_eq!(
            metrics.route("/sessions/8963b042-2db1-4171-9d82-cb012ceae438"),
            "/sessions/:session_id"
        );
        assert_eq!(
            metrics.route("/sessions/abc.secret/rotate"),
            "/sessions/:session_id/rotate"
        );
        assert_eq!(metrics.route("/health"), "/health");
        assert_eq!(metrics.route("/no/such/route/at/all"), "other");
        assert_eq!(metrics.route("/sessions/"), "other");
    }

    #[test]
    fn the_histogram_is_cumulative_and_counts_every_request() {
        let metrics = Metrics::new();
        metrics.record("/health", "GET", 200, Duration::from_micros(300));
        metrics.record("/health", "GET", 200, Duration::from_millis(30));
        metrics.record("/health", "BREW", 200, Duration::from_secs(9));
        let text = metrics.render(Snapshot::default());
        assert!(
            text.contains(
                r#"zoe_http_requests_total{route="/health",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"method="other""#), "{text}");
        assert!(text.contains(
            r#"zoe_http_request_duration_seconds_bucket{route="/health",le="0.0005"} 1"#
        ));
        assert!(
            text.contains(
                r#"zoe_http_request_duration_seconds_bucket{route="/health",le="0.05"} 2"#
            )
        );
        assert!(
            text.contains(
                r#"zoe_http_request_duration_seconds_bucket{route="/health",le="+Inf"} 3"#
            )
        );
        assert!(text.contains("zoe_store_up 0"));
    }
}
