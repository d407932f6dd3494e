//! One keep-alive connection to a server that leaves Nagle's algorithm on, as Spin's does
//! (issue 28): `serve --spin-costs --no-tcp-nodelay`, zoe-session beside the trivial
//! component (`bench/trivial`). Under Spin, a response that reached the socket in more than one
//! write waited for the client's delayed ACK (~40 ms) before its second write left, and
//! zoe-session's `/health` fell from thousands of requests per second to tens. The cells report
//! req/s, p99 and how many requests took 30 ms or more; at 32 connections the same routes with
//! and without `TCP_NODELAY`, where nothing should change. With `--baseline-component PATH`,
//! an older build of the component runs beside the current one.

use crate::client::{Cell, STALL, load};
use crate::fresh::{route_request, start, token};
use crate::http::{Server, wait_ready};
use crate::stats::{Table, ratio, us};
use std::path::Path;
use std::time::Duration;

/// Interleaved rounds of every cell.
const ROUNDS: usize = 3;

/// A table row of `cell`: its rate, p99, stalls, and its rate against `floor`'s.
fn row(cell: &Cell, name: String, floor: Option<&Cell>) -> Vec<String> {
    vec![
        name,
        format!("{:.0}", cell.per_second),
        us(cell.p99_us),
        format!("{:.0} of {:.0}", cell.stalls, cell.requests),
        floor.map_or("–".to_owned(), |floor| {
            ratio(cell.per_second, floor.per_second)
        }),
    ]
}

/// A server under test and the token its validates use.
struct Subject {
    server: Server,
    token: String,
}

/// Runs the section; `baseline` is an older build of the component to compare.
pub async fn run(
    dir: &Path,
    host_bin: &Path,
    seconds: f64,
    baseline: Option<&Path>,
) -> anyhow::Result<()> {
    let trivial = env!("TRIVIAL_WASM");
    let baseline = baseline.map(|path| path.display().to_string());
    let nagle = ["--no-tcp-nodelay"];
    let launch = |name: &'static str, tag: &str, db: &str, extra: &[&str]| {
        start(host_bin, dir, name, (tag, db), extra).map(|(server, _)| server)
    };
    // The trivial component on zoe-session's database, so that its validate finds the session.
    let mut servers = vec![
        launch("zoe-session", "nagle-now", "nagle-now", &nagle)?,
        launch(
            "trivial component",
            "nagle-trivial",
            "nagle-now",
            &["--no-tcp-nodelay", "--component", trivial],
        )?,
        launch("zoe-session, TCP_NODELAY", "nodelay-now", "nagle-now", &[])?,
    ];
    if let Some(path) = &baseline {
        servers.push(launch(
            "baseline",
            "nagle-before",
            "nagle-before",
            &["--no-tcp-nodelay", "--component", path],
        )?);
        servers.push(launch(
            "baseline, TCP_NODELAY",
            "nodelay-before",
            "nagle-before",
            &["--component", path],
        )?);
    }
    for server in &mut servers {
        wait_ready(server).await?;
    }
    let mut subjects = Vec::new();
    for server in servers {
        // The trivial component cannot create one: it validates zoe-session's.
        let token = match server.name {
            "trivial component" => subjects
                .first()
                .map(|s: &Subject| s.token.clone())
                .unwrap_or_default(),
            _ => token(&server).await?,
        };
        subjects.push(Subject { server, token });
    }
    let duration = Duration::from_secs_f64(seconds);
    // (subject, route, connections)
    let mut cells: Vec<(usize, &'static str, usize)> = Vec::new();
    for (s, subject) in subjects.iter().enumerate() {
        let at_32 = !matches!(subject.server.name, "trivial component");
        for route in ["/health", "validate"] {
            if !subject.server.name.ends_with("TCP_NODELAY") {
                cells.push((s, route, 1));
            }
            if at_32 {
                cells.push((s, route, 32));
            }
        }
    }
    let mut rounds = vec![Vec::new(); cells.len()];
    for _ in 0..ROUNDS {
        for (i, &(s, route, connections)) in cells.iter().enumerate() {
            let subject = &subjects[s];
            let token = subject.token.clone();
            let result = load(subject.server.addr, connections, duration, move |c, n| {
                route_request(route, &token, c * 1_000_000 + n)
            })
            .await?;
            anyhow::ensure!(
                result.errors == 0,
                "{} {route}: {} of {} answers were not 2xx",
                subject.server.name,
                result.errors,
                result.latencies.len()
            );
            rounds[i].push(Cell::of(&result));
        }
    }
    let figures: Vec<Cell> = rounds.iter().map(|r| Cell::median(r)).collect();
    let find = |name: &str, route: &str, connections: usize| {
        cells
            .iter()
            .position(|&(s, r, c)| {
                subjects[s].server.name == name && r == route && c == connections
            })
            .map(|i| figures[i])
    };
    let mut table = Table::new(
        &format!(
            "One keep-alive connection, `serve --spin-costs --no-tcp-nodelay` (Nagle on, as under Spin), {ROUNDS} interleaved rounds of {seconds} s per cell: req/s, p99 µs, requests of {} ms or more; medians over the rounds",
            STALL.as_millis()
        ),
        &["cell", "req/s", "p99 µs", "≥ 30 ms", "/ trivial"],
    );
    for route in ["/health", "validate"] {
        let floor = find("trivial component", route, 1);
        for name in ["trivial component", "baseline", "zoe-session"] {
            if let Some(cell) = find(name, route, 1) {
                table.row(row(&cell, format!("{name} {route}"), floor.as_ref()));
            }
        }
    }
    table.print();
    let mut table = Table::new(
        &format!(
            "32 connections, `serve --spin-costs`, with and without `TCP_NODELAY`, {ROUNDS} interleaved rounds of {seconds} s per cell: req/s, p99 µs, requests of {} ms or more",
            STALL.as_millis()
        ),
        &["cell", "req/s", "p99 µs", "≥ 30 ms", "/ same, TCP_NODELAY"],
    );
    for route in ["/health", "validate"] {
        for name in ["baseline", "zoe-session"] {
            let with = find(&format!("{name}, TCP_NODELAY"), route, 32);
            if let Some(cell) = find(name, route, 32) {
                table.row(row(
                    &cell,
                    format!("{name} {route}, Nagle on"),
                    with.as_ref(),
                ));
            }
            if let Some(cell) = with {
                table.row(row(&cell, format!("{name} {route}, TCP_NODELAY"), None));
            }
        }
    }
    table.print();
    Ok(())
}
