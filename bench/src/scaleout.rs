//! Scale-out figures: `serve` on PostgreSQL against `serve` on SQLite, and one replica
//! against two on the same PostgreSQL database, in one run with the same closed-loop client.
//! The PostgreSQL server is a throwaway one on loopback (`testing/postgres`), with
//! `fsync=off` as in the tests; SQLite runs in WAL with `synchronous=NORMAL`, `serve`'s default.

use crate::client::{Load, load, request};
use crate::http::{Server, create_request, spawn_serve, tokens, wait_ready};
use crate::stats::{Table, ratio, us};
use anyhow::Context as _;
use std::path::Path;
use std::time::Duration;

/// Runs `endpoint` at `concurrency` spread evenly over `servers`, all at once.
async fn run_on(
    servers: &[&Server],
    tokens: &[String],
    endpoint: &'static str,
    concurrency: usize,
    duration: Duration,
    tag: &str,
) -> anyhow::Result<Load> {
    let per_server = (concurrency / servers.len()).max(1);
    let mut runs = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let tokens = tokens.to_vec();
        let tag = format!("{tag}-{i}");
        let make = move |c: usize, n: usize| match endpoint {
            "validate" => request(
                "GET",
                "/sessions/validate",
                &[("x-session-id", tokens[(c * 31 + n) % tokens.len()].as_str())],
                "",
            ),
            _ => create_request(&format!("{tag}-{c}-{n}")),
        };
        runs.push(tokio::spawn(load(server.addr, per_server, duration, make)));
    }
    let mut total: Option<Load> = None;
    for run in runs {
        let result = run.await??;
        anyhow::ensure!(
            result.errors == 0,
            "{endpoint}: {} of {} requests failed",
            result.errors,
            result.latencies.len()
        );
        total = Some(match total {
            None => result,
            Some(mut sum) => {
                sum.latencies.extend(result.latencies);
                sum.elapsed = sum.elapsed.max(result.elapsed);
                sum
            }
        });
    }
    total.context("no server")
}

/// Prints the scale-out table.
pub async fn run(dir: &Path, host_bin: &Path, seconds: f64) -> anyhow::Result<()> {
    let postgres = zoe_test_postgres::PgServer::start()
        .map_err(|err| anyhow::anyhow!("PostgreSQL for the scale-out figures: {err}"))?;
    let url = postgres
        .fresh_database()
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let db = |name: &str| ("SESSION_DB_PATH", dir.join(name).display().to_string());
    let mut sqlite = spawn_serve(
        host_bin,
        "serve on SQLite",
        &[],
        &[db("scale-out-sqlite.db")],
    )?;
    let on_postgres = |name| {
        spawn_serve(
            host_bin,
            name,
            &[],
            &[
                ("SESSION_DATABASE_URL", url.clone()),
                db("scale-out-unused.db"),
            ],
        )
    };
    let mut first = on_postgres("serve on PostgreSQL, replica 1")?;
    let mut second = on_postgres("serve on PostgreSQL, replica 2")?;
    for server in [&mut sqlite, &mut first, &mut second] {
        wait_ready(server).await?;
    }
    let sqlite_tokens = tokens(&sqlite).await?;
    let postgres_tokens = tokens(&first).await?;

    let duration = Duration::from_secs_f64(seconds);
    let mut table = Table::new(
        &format!(
            "Scale-out on loopback: `serve` on SQLite vs on PostgreSQL, one replica vs two on one database, {seconds} s per cell"
        ),
        &[
            "endpoint",
            "conc. (total)",
            "SQLite req/s",
            "p50 µs",
            "PostgreSQL, 1 replica req/s",
            "p50 µs",
            "p99 µs",
            "2 replicas req/s",
            "p50 µs",
            "ratio PG/SQLite",
            "ratio 2/1 replicas",
        ],
    );
    for endpoint in ["validate", "create"] {
        for concurrency in [1, 2, 32] {
            let tag = format!("so{concurrency}");
            let lite = run_on(
                &[&sqlite],
                &sqlite_tokens,
                endpoint,
                concurrency,
                duration,
                &format!("{tag}l"),
            )
            .await?;
            let one = run_on(
                &[&first],
                &postgres_tokens,
                endpoint,
                concurrency,
                duration,
                &format!("{tag}a"),
            )
            .await?;
            let (two_rate, two_p50) = if concurrency >= 2 {
                let two = run_on(
                    &[&first, &second],
                    &postgres_tokens,
                    endpoint,
                    concurrency,
                    duration,
                    &format!("{tag}b"),
                )
                .await?;
                (Some(two.per_second()), us(two.latencies.quantile_us(0.5)))
            } else {
                (None, "–".to_owned())
            };
            table.row(vec![
                endpoint.to_owned(),
                concurrency.to_string(),
                format!("{:.0}", lite.per_second()),
                us(lite.latencies.quantile_us(0.5)),
                format!("{:.0}", one.per_second()),
                us(one.latencies.quantile_us(0.5)),
                us(one.latencies.quantile_us(0.99)),
                two_rate.map_or("–".to_owned(), |r| format!("{r:.0}")),
                two_p50,
                ratio(one.per_second(), lite.per_second()),
                two_rate.map_or("–".to_owned(), |r| ratio(r, one.per_second())),
            ]);
        }
    }
    table.print();
    Ok(())
}
