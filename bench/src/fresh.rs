//! The fixed cost of a fresh instance (issue 18): `serve --spin-costs` presents what Spin
//! charges every request (a fresh instance, a new SQLite connection per `open` in
//! rollback-journal mode), and `--count-host-calls` logs the host calls each request made.
//!
//! Two tables, from one run: host calls per request per route (zoe-session now, and a
//! baseline build if `--baseline-component PATH` names one, e.g. the previous release), and
//! requests per second at one connection for the same routes beside a trivial spin-sdk
//! component (`bench/trivial`, built by bench/build.rs) under the same host mode — the ratios
//! validate / `/health` and `/health` / trivial are the targets.
//!
//! Servers run with the component's default settings (request logging on, as spin.toml
//! ships), their stderr going to a file in the bench's directory.

use crate::client::{Conn, Load, load, request};
use crate::http::{Server, create_request, spawn_serve_logged, wait_ready};
use crate::stats::{Table, median, ratio, us};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Requests per route whose host calls are counted (the table shows the median).
const COUNTED: usize = 21;

/// The routes measured, and how to ask for each.
const ROUTES: &[&str] = &["/health", "validate", "/openapi.json", "404", "create"];

fn route_request(route: &str, token: &str, n: usize) -> Vec<u8> {
    match route {
        "validate" => request("GET", "/sessions/validate", &[("x-session-id", token)], ""),
        "404" => request("GET", "/no/such/route", &[], ""),
        "create" => create_request(&format!("fresh-{n}")),
        path => request("GET", path, &[], ""),
    }
}

/// One request's host calls, from a `"message":"host calls"` line.
#[derive(Debug, Clone, Copy, Default)]
struct Calls {
    variable_reads: f64,
    sqlite_statements: f64,
    sqlite_opens: f64,
    body_writes: f64,
    body_bytes: f64,
    stderr_writes: f64,
    request_body_reads: f64,
    guest_fuel: f64,
}

/// The host-call lines `log` gained after byte `from`.
fn calls_since(log: &Path, from: usize) -> anyhow::Result<Vec<Calls>> {
    let text = std::fs::read_to_string(log).with_context(|| log.display().to_string())?;
    let field = |line: &serde_json::Value, name: &str| line[name].as_f64().unwrap_or(f64::NAN);
    Ok(text
        .get(from..)
        .unwrap_or("")
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["message"] == "host calls")
        .map(|line| Calls {
            variable_reads: field(&line, "variable_reads"),
            sqlite_statements: field(&line, "sqlite_statements"),
            sqlite_opens: field(&line, "sqlite_opens"),
            body_writes: field(&line, "body_writes"),
            body_bytes: field(&line, "body_bytes"),
            // Absent from builds before stderr writes were counted.
            stderr_writes: field(&line, "stderr_writes"),
            request_body_reads: field(&line, "request_body_reads"),
            // Null when the runtime does not meter fuel (builds before it could).
            guest_fuel: field(&line, "guest_fuel"),
        })
        .collect())
}

fn log_len(log: &Path) -> usize {
    std::fs::metadata(log).map_or(0, |m| usize::try_from(m.len()).unwrap_or(usize::MAX))
}

/// A validate token, made through the server's own API.
async fn token(server: &Server) -> anyhow::Result<String> {
    let mut conn = Conn::connect(server.addr).await?;
    let (status, body) = conn.send(&create_request("fresh-token")).await?;
    let body: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("{}: create answered {status}", server.name))?;
    Ok(body["session_id"]
        .as_str()
        .with_context(|| format!("{}: create answered {status}: {body}", server.name))?
        .to_owned())
}

/// The median host calls of each route on `server`, whose stderr goes to `log`.
async fn count(server: &Server, log: &Path) -> anyhow::Result<Vec<Calls>> {
    let token = token(server).await?;
    let mut conn = Conn::connect(server.addr).await?;
    let mut per_route = Vec::new();
    for (r, route) in ROUTES.iter().enumerate() {
        let from = log_len(log);
        for n in 0..COUNTED {
            conn.send(&route_request(route, &token, r * 1000 + n))
                .await?;
        }
        // Each line is written when its response body is dropped, just after it is sent.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let lines = calls_since(log, from)?;
        anyhow::ensure!(
            lines.len() >= COUNTED,
            "{}: {} host-call lines for {COUNTED} {route} requests",
            server.name,
            lines.len()
        );
        let pick = |f: fn(&Calls) -> f64| median(lines.iter().map(f).collect());
        per_route.push(Calls {
            variable_reads: pick(|c| c.variable_reads),
            sqlite_statements: pick(|c| c.sqlite_statements),
            sqlite_opens: pick(|c| c.sqlite_opens),
            body_writes: pick(|c| c.body_writes),
            body_bytes: pick(|c| c.body_bytes),
            stderr_writes: pick(|c| c.stderr_writes),
            request_body_reads: pick(|c| c.request_body_reads),
            guest_fuel: pick(|c| c.guest_fuel),
        });
    }
    Ok(per_route)
}

/// `serve --spin-costs` with `extra` arguments on the database `dir/fresh-<db>.db`, its
/// stderr in `dir/fresh-<tag>.log`.
fn start(
    host_bin: &Path,
    dir: &Path,
    name: &'static str,
    (tag, db): (&str, &str),
    extra: &[&str],
) -> anyhow::Result<(Server, PathBuf)> {
    let log = dir.join(format!("fresh-{tag}.log"));
    let mut args = vec!["--spin-costs"];
    args.extend_from_slice(extra);
    let db = dir.join(format!("fresh-{db}.db")).display().to_string();
    let server = spawn_serve_logged(host_bin, name, &args, &[("SESSION_DB_PATH", db)], &log)?;
    Ok((server, log))
}

fn calls_cell(calls: &Calls) -> String {
    [
        calls.variable_reads,
        calls.sqlite_statements,
        calls.sqlite_opens,
        calls.body_writes,
        calls.stderr_writes,
        calls.request_body_reads,
        calls.guest_fuel,
    ]
    .map(|n| {
        if n.is_nan() {
            "?".to_owned()
        } else {
            format!("{n:.0}")
        }
    })
    .join(" / ")
}

/// Runs the fresh-instance section; `baseline` is an older build of the component to compare.
pub async fn run(
    dir: &Path,
    host_bin: &Path,
    seconds: f64,
    baseline: Option<&Path>,
) -> anyhow::Result<()> {
    let trivial = env!("TRIVIAL_WASM");
    let baseline = baseline.map(|path| path.display().to_string());

    // Host calls, counted on servers of their own (the count's log line is work too).
    let (mut now, now_log) = start(
        host_bin,
        dir,
        "zoe-session",
        ("count-now", "count-now"),
        &["--count-host-calls"],
    )?;
    wait_ready(&mut now).await?;
    let counted_now = count(&now, &now_log).await?;
    drop(now);
    let counted_before = match &baseline {
        Some(path) => {
            let (mut before, log) = start(
                host_bin,
                dir,
                "baseline",
                ("count-before", "count-before"),
                &["--count-host-calls", "--component", path],
            )?;
            wait_ready(&mut before).await?;
            Some(count(&before, &log).await?)
        }
        None => None,
    };
    let mut table = Table::new(
        "Host calls per request with a fresh instance (`serve --spin-costs`): variable reads / SQLite statements / SQLite opens / body writes / stderr writes / request body reads / guest fuel (Wasmtime fuel, about one unit per Wasm operator), median of 21",
        &["route", "before", "now", "body bytes now"],
    );
    for (r, route) in ROUTES.iter().enumerate() {
        table.row(vec![
            (*route).to_owned(),
            counted_before
                .as_ref()
                .map_or("–".to_owned(), |c| calls_cell(&c[r])),
            calls_cell(&counted_now[r]),
            format!("{:.0}", counted_now[r].body_bytes),
        ]);
    }
    table.print();

    // Throughput at one connection, every server in the same host mode.
    let (mut now, _) = start(host_bin, dir, "zoe-session", ("rate-now", "rate-now"), &[])?;
    // On zoe-session's database, so that the trivial validate looks up a real session.
    let (mut floor, _) = start(
        host_bin,
        dir,
        "trivial component",
        ("rate-trivial", "rate-now"),
        &["--component", trivial],
    )?;
    let mut before = match &baseline {
        Some(path) => Some(
            start(
                host_bin,
                dir,
                "baseline",
                ("rate-before", "rate-before"),
                &["--component", path],
            )?
            .0,
        ),
        None => None,
    };
    wait_ready(&mut now).await?;
    wait_ready(&mut floor).await?;
    if let Some(before) = before.as_mut() {
        wait_ready(before).await?;
    }
    let duration = Duration::from_secs_f64(seconds);
    let run = |server: &Server, route: &'static str, token: String| {
        let addr = server.addr;
        async move {
            let result: Load = load(addr, 1, duration, move |c, n| {
                route_request(route, &token, c * 1_000_000 + n)
            })
            .await?;
            // Every answer of the 404 route is a 404; of the others, a 2xx.
            let expected = if route == "404" {
                result.latencies.len() as u64
            } else {
                0
            };
            anyhow::ensure!(
                result.errors == expected,
                "{route}: {} of {} answers were not what the route gives",
                result.errors,
                result.latencies.len()
            );
            anyhow::Ok(result)
        }
    };
    let now_token = token(&now).await?;
    let before_token = match &before {
        Some(server) => Some(token(server).await?),
        None => None,
    };
    let mut rates = Table::new(
        &format!(
            "A fresh instance per request (`serve --spin-costs`), one connection, {seconds} s per cell: req/s (p50 µs)"
        ),
        &["route", "trivial component", "before", "now"],
    );
    let mut now_rate = std::collections::HashMap::new();
    let mut before_rate = std::collections::HashMap::new();
    let trivial_rate = run(&floor, "/health", String::new()).await?;
    // The floor of a validate: one open and one point lookup of the same session.
    let trivial_validate = run(&floor, "validate", now_token.clone()).await?;
    for route in ROUTES.iter().copied().filter(|r| *r != "create") {
        let current = run(&now, route, now_token.clone()).await?;
        let earlier = match (&before, &before_token) {
            (Some(server), Some(token)) => Some(run(server, route, token.clone()).await?),
            _ => None,
        };
        let cell = |load: &Load| {
            format!(
                "{:.0} ({})",
                load.per_second(),
                us(load.latencies.quantile_us(0.5))
            )
        };
        rates.row(vec![
            route.to_owned(),
            match route {
                "/health" => cell(&trivial_rate),
                "validate" => cell(&trivial_validate),
                _ => "–".to_owned(),
            },
            earlier.as_ref().map_or("–".to_owned(), cell),
            cell(&current),
        ]);
        now_rate.insert(route, current.per_second());
        if let Some(earlier) = earlier {
            before_rate.insert(route, earlier.per_second());
        }
    }
    rates.print();
    let ratios = |rates: &std::collections::HashMap<&str, f64>| {
        (
            ratio(rates["validate"], rates["/health"]),
            ratio(rates["/health"], trivial_rate.per_second()),
        )
    };
    let (validate_now, health_now) = ratios(&now_rate);
    println!(
        "\nTargets (issue 18): validate / /health ≥ 0.8x: now {validate_now}; \
         /health / trivial ≥ 0.8x: now {health_now}"
    );
    println!(
        "The floor of the first: the trivial component's validate (one open, one SELECT) / its \
         /health: {}; zoe-session's validate / the trivial validate: {}",
        ratio(trivial_validate.per_second(), trivial_rate.per_second()),
        ratio(now_rate["validate"], trivial_validate.per_second())
    );
    if !before_rate.is_empty() {
        let (validate_before, health_before) = ratios(&before_rate);
        println!("Before: validate / /health {validate_before}; /health / trivial {health_before}");
    }
    Ok(())
}
