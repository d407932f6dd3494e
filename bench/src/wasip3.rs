//! Issue 30's figures (`--wasip3`): what Spin 4.1 users get against what Spin 4.0 users get.
//!
//! - The WASIp3 build (`zoe_session_p3.wasm`) under `serve`'s Spin 4.1 instance policy (an
//!   instance takes up to 128 requests, 16 at once) against the WASIp2 build with a fresh
//!   instance per request, as Spin 4.0 runs it; both with `--spin-costs` (Spin's SQLite: a new
//!   connection per `open`, rollback journal; and for the WASIp2 build a fresh instance), for
//!   `/health`, validate and create at 1 and 32 connections.
//! - The same two on one keep-alive connection with Nagle's algorithm on (`--no-tcp-nodelay`, as
//!   Spin's server leaves it): a response that left in more than one write would wait ~40 ms
//!   for the client's delayed ACK, so the cells count requests of 30 ms or more.
//! - The session middleware's cost: the example app (`examples/identity-app`) alone against the
//!   app behind the middleware (`serve --middleware`, composed as Spin composes
//!   `dependencies.middleware`), on a protected path (the middleware validates the session and
//!   slides its activity) and on an open one (the chain's own cost), beside the WASIp3 build's
//!   own validate on the same database.
//!
//! Each cell runs in interleaved rounds; figures are medians over the rounds.

use crate::client::{Cell, STALL, load, request};
use crate::fresh::{route_request, start};
use crate::http::{Server, tokens, wait_ready};
use crate::stats::{Table, ratio, us};
use std::path::Path;
use std::time::Duration;

/// Interleaved rounds of every cell.
const ROUNDS: usize = 3;

/// A server under test and the tokens its validates use.
struct Subject {
    server: Server,
    tokens: Vec<String>,
}

/// `route` (as [`route_request`] names it, or a plain path) at `connections`, for `duration`.
async fn measure(
    subject: &Subject,
    route: &'static str,
    connections: usize,
    duration: Duration,
    tag: String,
) -> anyhow::Result<Cell> {
    let tokens = subject.tokens.clone();
    let result = load(subject.server.addr, connections, duration, move |c, n| {
        // A token per connection: a session in use, whose activity is written at most once per
        // 15 s (auto_update). Tokens round-robin over hundreds of sessions would make most
        // validates activity writes, each a synced commit in Spin's rollback-journal SQLite.
        let token = tokens[c % tokens.len()].as_str();
        match route {
            "/health" | "validate" => route_request(route, token, 0),
            "create" => crate::http::create_request(&format!("{tag}-{c}-{n}")),
            path => request("GET", path, &[("x-session-id", token)], ""),
        }
    })
    .await?;
    Ok(Cell::of(&result))
}

/// Runs `cells` (subject, route, connections) in `ROUNDS` interleaved rounds; their medians.
async fn rounds(
    subjects: &[Subject],
    cells: &[(usize, &'static str, usize)],
    duration: Duration,
    label: &str,
) -> anyhow::Result<Vec<Cell>> {
    let mut rounds = vec![Vec::new(); cells.len()];
    for round in 0..ROUNDS {
        for (i, &(s, route, connections)) in cells.iter().enumerate() {
            let tag = format!("{label}-r{round}-s{s}-c{connections}");
            rounds[i].push(measure(&subjects[s], route, connections, duration, tag).await?);
        }
    }
    Ok(rounds.iter().map(|r| Cell::median(r)).collect())
}

async fn ready(mut server: Server, tokens_from: Option<&Subject>) -> anyhow::Result<Subject> {
    wait_ready(&mut server).await?;
    let tokens = match tokens_from {
        Some(subject) => subject.tokens.clone(),
        None => tokens(&server).await?,
    };
    Ok(Subject { server, tokens })
}

/// Runs the section.
pub async fn run(dir: &Path, host_bin: &Path, seconds: f64) -> anyhow::Result<()> {
    let p3 = zoe_session_host::runtime::WASIP3_COMPONENT_PATH;
    let duration = Duration::from_secs_f64(seconds);
    let launch = |name: &'static str, tag: &str, db: &str, extra: &[&str]| {
        start(host_bin, dir, name, (tag, db), extra).map(|(server, _)| server)
    };

    // 1. The WASIp3 build reused against the WASIp2 build fresh, over TCP_NODELAY.
    let subjects = vec![
        ready(
            launch(
                "WASIp3, reused",
                "p3-reused",
                "p3-reused",
                &["--component", p3],
            )?,
            None,
        )
        .await?,
        ready(launch("WASIp2, fresh", "p2-fresh", "p2-fresh", &[])?, None).await?,
    ];
    let routes = ["/health", "validate", "create"];
    let mut cells = Vec::new();
    for route in routes {
        for connections in [1, 32] {
            for s in 0..subjects.len() {
                cells.push((s, route, connections));
            }
        }
    }
    let figures = rounds(&subjects, &cells, duration, "builds").await?;
    let mut table = Table::new(
        &format!(
            "`serve --spin-costs`: the WASIp3 build with Spin 4.1's instance policy (128 requests, 16 at once) against the WASIp2 build with a fresh instance per request (Spin 4.0), {ROUNDS} interleaved rounds of {seconds} s per cell: req/s (p50 / p99 µs), medians"
        ),
        &["route", "c", "WASIp3, reused", "WASIp2, fresh", "p3 / p2"],
    );
    for (i, chunk) in cells.chunks(subjects.len()).enumerate() {
        let (p3_cell, p2_cell) = (figures[i * 2], figures[i * 2 + 1]);
        table.row(vec![
            chunk[0].1.to_owned(),
            chunk[0].2.to_string(),
            p3_cell.text(),
            p2_cell.text(),
            ratio(p3_cell.per_second, p2_cell.per_second),
        ]);
    }
    table.print();
    let rss = subjects
        .iter()
        .map(|s| format!("{}: {}", s.server.name, rss_mib(&s.server)))
        .collect::<Vec<_>>()
        .join("; ");
    println!("\nserve process memory after the runs (VmRSS / VmHWM): {rss}");
    drop(subjects);

    // 2. One keep-alive connection with Nagle's algorithm on.
    let nagle = ["--no-tcp-nodelay"];
    let subjects = vec![
        ready(
            launch(
                "WASIp3, reused",
                "p3-nagle",
                "p3-nagle",
                &["--no-tcp-nodelay", "--component", p3],
            )?,
            None,
        )
        .await?,
        ready(
            launch("WASIp2, fresh", "p2-nagle", "p2-nagle", &nagle)?,
            None,
        )
        .await?,
    ];
    let mut cells = Vec::new();
    for route in routes {
        for s in 0..subjects.len() {
            cells.push((s, route, 1));
        }
    }
    let figures = rounds(&subjects, &cells, duration, "nagle").await?;
    let mut table = Table::new(
        &format!(
            "One keep-alive connection, `serve --spin-costs --no-tcp-nodelay` (Nagle on, as under Spin), {ROUNDS} interleaved rounds of {seconds} s per cell: req/s, p99 µs, requests of {} ms or more; medians",
            STALL.as_millis()
        ),
        &["cell", "req/s", "p99 µs", "≥ 30 ms"],
    );
    for (i, &(s, route, _)) in cells.iter().enumerate() {
        let cell = figures[i];
        table.row(vec![
            format!("{} {route}", subjects[s].server.name),
            format!("{:.0}", cell.per_second),
            us(cell.p99_us),
            format!("{:.0} of {:.0}", cell.stalls, cell.requests),
        ]);
    }
    table.print();
    drop(subjects);

    // 3. The middleware chain, on one database whose sessions the WASIp3 build creates.
    let app = env!("IDENTITY_APP_WASM");
    let middleware = env!("MIDDLEWARE_WASM");
    let api = ready(
        launch("zoe-session WASIp3", "mw-api", "mw", &["--component", p3])?,
        None,
    )
    .await?;
    let alone = ready(
        launch("app alone", "mw-alone", "mw", &["--component", app])?,
        Some(&api),
    )
    .await?;
    let chain = ready(
        launch(
            "middleware + app",
            "mw-chain",
            "mw",
            &["--component", app, "--middleware", middleware],
        )?,
        Some(&api),
    )
    .await?;
    let subjects = [api, alone, chain];
    // (subject, route): the API's validate; the app alone on the protected path; the chain on
    // the protected path (a validate) and on an open one (nothing to check).
    let kinds: [(usize, &'static str); 4] = [
        (0, "validate"),
        (1, "/api/chat"),
        (2, "/api/chat"),
        (2, "/open"),
    ];
    let mut cells = Vec::new();
    for connections in [1, 32] {
        for (s, route) in kinds {
            cells.push((s, route, connections));
        }
    }
    let figures = rounds(&subjects, &cells, duration, "mw").await?;
    let mut table = Table::new(
        &format!(
            "The session middleware in front of the example WASIp3 app, `serve --spin-costs` with Spin 4.1's instance policy, {ROUNDS} interleaved rounds of {seconds} s per cell: req/s (p50 / p99 µs), medians"
        ),
        &[
            "c",
            "API validate (WASIp3)",
            "app alone",
            "middleware + app, protected",
            "middleware + app, open path",
            "protected / alone",
            "open / alone",
        ],
    );
    for (i, chunk) in figures.chunks(kinds.len()).enumerate() {
        table.row(vec![
            cells[i * kinds.len()].2.to_string(),
            chunk[0].text(),
            chunk[1].text(),
            chunk[2].text(),
            chunk[3].text(),
            ratio(chunk[2].per_second, chunk[1].per_second),
            ratio(chunk[3].per_second, chunk[1].per_second),
        ]);
    }
    table.print();
    Ok(())
}

fn rss_mib(server: &Server) -> String {
    let pid = server.child.id().to_string();
    match (
        crate::stats::proc_kib(&pid, "VmRSS"),
        crate::stats::proc_kib(&pid, "VmHWM"),
    ) {
        (Some(rss), Some(hwm)) => format!("{} / {} MiB", rss / 1024, hwm / 1024),
        _ => "–".to_owned(),
    }
}
