//! The fixed cost of a fresh instance (issue 18): `serve --spin-costs` presents what Spin
//! charges every request (a fresh instance, a new SQLite connection per `open` in
//! rollback-journal mode), and `--count-host-calls` logs the host calls each request made.
//!
//! Two tables, from one run: host calls per request per route (zoe-session now, and a
//! baseline build if `--baseline-component PATH` names one, e.g. the previous release), and
//! requests per second and the server's CPU per request at one connection for the same routes
//! beside a trivial spin-sdk component (`bench/trivial`, built by bench/build.rs) under the same
//! host mode, in interleaved rounds — the ratios validate / `/health` and `/health` / trivial
//! are the targets.
//!
//! Servers run with the component's default settings (request logging on, as spin.toml
//! ships), their stderr going to a file in the bench's directory.

use crate::client::{Conn, Load, load, request};
use crate::http::{Server, create_request, spawn_serve_logged, wait_ready};
use crate::stats::{Table, median, process_cpu, ratio, us};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Requests per route whose host calls are counted (the table shows the median).
const COUNTED: usize = 21;

/// Interleaved rounds of the throughput cells.
const RATE_ROUNDS: usize = 3;

/// One throughput cell: requests per second, the median latency, and the server's CPU per
/// request (NaN where `/proc` cannot say).
#[derive(Debug, Clone, Copy)]
struct Rate {
    per_second: f64,
    p50_us: f64,
    cpu_us: f64,
}

impl Rate {
    fn of(load: &Load, cpu: Option<Duration>) -> Self {
        let answered = load.latencies.len().max(1) as f64;
        Self {
            per_second: load.per_second(),
            p50_us: load.latencies.quantile_us(0.5),
            cpu_us: cpu.map_or(f64::NAN, |cpu| cpu.as_secs_f64() * 1e6 / answered),
        }
    }

    /// Each figure's median over the rounds.
    fn median(rounds: &[Self]) -> Self {
        let of = |figure: fn(&Self) -> f64| median(rounds.iter().map(figure).collect());
        Self {
            per_second: of(|r| r.per_second),
            p50_us: of(|r| r.p50_us),
            cpu_us: of(|r| r.cpu_us),
        }
    }

    fn cell(&self) -> String {
        format!(
            "{:.0} ({}), {} µs",
            self.per_second,
            us(self.p50_us),
            us(self.cpu_us)
        )
    }
}

/// The routes measured, and how to ask for each.
const ROUTES: &[&str] = &["/health", "validate", "/openapi.json", "404", "create"];

pub(crate) fn route_request(route: &str, token: &str, n: usize) -> Vec<u8> {
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
pub(crate) async fn token(server: &Server) -> anyhow::Result<String> {
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
pub(crate) fn start(
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
        let (addr, pid) = (server.addr, server.child.id());
        async move {
            let cpu_before = process_cpu(pid);
            let result: Load = load(addr, 1, duration, move |c, n| {
                route_request(route, &token, c * 1_000_000 + n)
            })
            .await?;
            let cpu = process_cpu(pid)
                .zip(cpu_before)
                .map(|(after, before)| after - before);
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
            anyhow::Ok(Rate::of(&result, cpu))
        }
    };
    let now_token = token(&now).await?;
    let before_token = match &before {
        Some(server) => Some(token(server).await?),
        None => None,
    };
    // Rounds of interleaved cells, so that a slow spell of this shared machine falls on every
    // server alike; each figure is the median over the rounds.
    let rated: Vec<&str> = ROUTES.iter().copied().filter(|r| *r != "create").collect();
    let mut trivial_rates: [Vec<Rate>; 2] = Default::default();
    let mut now_rates = vec![Vec::new(); rated.len()];
    let mut before_rates = vec![Vec::new(); rated.len()];
    for _ in 0..RATE_ROUNDS {
        trivial_rates[0].push(run(&floor, "/health", String::new()).await?);
        // The floor of a validate: one open and one point lookup of the same session.
        trivial_rates[1].push(run(&floor, "validate", now_token.clone()).await?);
        for (r, route) in rated.iter().copied().enumerate() {
            if let (Some(server), Some(token)) = (&before, &before_token) {
                before_rates[r].push(run(server, route, token.clone()).await?);
            }
            now_rates[r].push(run(&now, route, now_token.clone()).await?);
        }
    }
    let [trivial_health, trivial_validate] = trivial_rates.map(|rates| Rate::median(&rates));
    let now_rates: Vec<Rate> = now_rates.iter().map(|r| Rate::median(r)).collect();
    let before_rates: Vec<Rate> = match &before {
        Some(_) => before_rates.iter().map(|r| Rate::median(r)).collect(),
        None => Vec::new(),
    };
    let mut rates = Table::new(
        &format!(
            "A fresh instance per request (`serve --spin-costs`), one connection, {RATE_ROUNDS} interleaved rounds of {seconds} s per cell: req/s (p50 µs), server CPU µs per request; medians over the rounds"
        ),
        &["route", "trivial component", "before", "now"],
    );
    for (r, route) in rated.iter().copied().enumerate() {
        rates.row(vec![
            route.to_owned(),
            match route {
                "/health" => trivial_health.cell(),
                "validate" => trivial_validate.cell(),
                _ => "–".to_owned(),
            },
            before_rates.get(r).map_or("–".to_owned(), Rate::cell),
            now_rates[r].cell(),
        ]);
    }
    rates.print();
    let position = |route: &str| rated.iter().position(|r| *r == route).expect("rated");
    let (health, validate) = (position("/health"), position("validate"));
    // Each ratio twice: of throughput, and of CPU per request (the inverse, so that both read
    // "at least 0.8x"); the CPU figure moves less with the machine's load.
    let both = |a: &Rate, b: &Rate| {
        format!(
            "{} (CPU {})",
            ratio(a.per_second, b.per_second),
            ratio(b.cpu_us, a.cpu_us)
        )
    };
    println!(
        "\nTargets (issue 18): validate / /health ≥ 0.8x: now {}; /health / trivial ≥ 0.8x: now {}",
        both(&now_rates[validate], &now_rates[health]),
        both(&now_rates[health], &trivial_health)
    );
    println!(
        "The floor of the first: the trivial component's validate (one open, one SELECT) / its \
         /health: {}; zoe-session's validate / the trivial validate: {}",
        both(&trivial_validate, &trivial_health),
        both(&now_rates[validate], &trivial_validate)
    );
    if !before_rates.is_empty() {
        println!(
            "Before: validate / /health {}; /health / trivial {}",
            both(&before_rates[validate], &before_rates[health]),
            both(&before_rates[health], &trivial_health)
        );
    }
    Ok(())
}
