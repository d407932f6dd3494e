//! `zoe-session-bench`: how much latency zoe-session adds, measured against a native rusqlite
//! baseline doing the same SQL in the same run. Prints Markdown tables (see BENCHMARKS.md).
//!
//! ```text
//! cargo build --release -p zoe-session-host     # the `serve` binary the HTTP half starts
//! cargo run --release -p zoe-session-bench      # all sections, a few minutes on 2 cores
//! cargo run --release -p zoe-session-bench -- --quick --sizes 10000,100000
//! ```
//!
//! Options: `--quick` (fewer iterations, 1 s HTTP cells), `--sizes N,N,…` (scale table sizes,
//! default 10000,100000,1000000), `--http-seconds S` (default 3), `--skip-inproc`,
//! `--skip-http`, `--skip-scale`, `--skip-scale-out` (the PostgreSQL section, which needs the
//! PostgreSQL server binaries, as the tests do), `--contention` (only the contention tables of
//! issue 16: `/health` beside a create flood, the WAL under load, synchronous NORMAL vs FULL; with
//! `--wal-seconds S`, default 60), `--fresh` (only the fresh-instance section of issue 18: host
//! calls per request and `serve --spin-costs` throughput beside a trivial component; with
//! `--baseline-component PATH`, an older build of the component beside the current one),
//! `--skip-fresh`, `--keepalive` (only issue 28's cells: one keep-alive connection to `serve
//! --spin-costs --no-tcp-nodelay`, zoe-session beside the trivial component, and 32 connections
//! with and without `TCP_NODELAY`; `--baseline-component` applies here too), `--skip-keepalive`,
//! `--stores` (only issue 31's section: validate and create on SQLite, PostgreSQL, the local
//! key-value store and Redis, their host calls, and the floors of the key-value cells),
//! `--wasip3` (only issue 30's section: the WASIp3 build reused against the WASIp2 build fresh,
//! one keep-alive connection without `TCP_NODELAY`, the session middleware's cost). `--stores`
//! and `--wasip3` may be given together; neither runs unless asked for.
//! Never run by `cargo test`: this is a binary, not a test.

mod client;
mod contention;
mod fresh;
mod http;
mod inproc;
mod keepalive;
mod native;
mod native_server;
mod scale;
mod scaleout;
mod stats;
mod stores;
mod wasip3;

use std::time::Instant;
use zoe_session_host::{Allocation, Runtime};

#[derive(Debug)]
struct Options {
    quick: bool,
    sizes: Vec<u64>,
    http_seconds: f64,
    inproc: bool,
    http: bool,
    scale: bool,
    scale_out: bool,
    contention: bool,
    wal_seconds: f64,
    fresh: bool,
    keepalive: bool,
    stores: bool,
    wasip3: bool,
    baseline_component: Option<std::path::PathBuf>,
}

impl Options {
    /// Leaves out every section a plain run makes: a flag that names one section runs just it
    /// (and any other such flag given with it).
    fn leave_out_default_sections(&mut self) {
        self.inproc = false;
        self.http = false;
        self.scale = false;
        self.scale_out = false;
        self.fresh = false;
        self.keepalive = false;
    }
}

fn options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        quick: false,
        sizes: vec![10_000, 100_000, 1_000_000],
        http_seconds: 3.0,
        inproc: true,
        http: true,
        scale: true,
        scale_out: true,
        contention: false,
        wal_seconds: 60.0,
        fresh: true,
        keepalive: true,
        stores: false,
        wasip3: false,
        baseline_component: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                options.quick = true;
                options.http_seconds = 1.0;
            }
            "--sizes" => {
                let text = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--sizes needs a list"))?;
                options.sizes = text
                    .split(',')
                    .map(|s| s.trim().replace('_', "").parse())
                    .collect::<Result<_, _>>()?;
                options.sizes.sort_unstable();
            }
            "--http-seconds" => {
                let text = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--http-seconds needs a number"))?;
                options.http_seconds = text.parse()?;
            }
            "--skip-inproc" => options.inproc = false,
            "--skip-http" => options.http = false,
            "--skip-scale" => options.scale = false,
            "--skip-scale-out" => options.scale_out = false,
            "--skip-fresh" => options.fresh = false,
            "--fresh" => {
                options.leave_out_default_sections();
                options.fresh = true;
            }
            "--skip-keepalive" => options.keepalive = false,
            "--keepalive" => {
                options.leave_out_default_sections();
                options.keepalive = true;
            }
            "--baseline-component" => {
                let path = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--baseline-component needs a path"))?;
                options.baseline_component = Some(path.into());
            }
            "--stores" | "--wasip3" => {
                options.leave_out_default_sections();
                if arg == "--stores" {
                    options.stores = true;
                } else {
                    options.wasip3 = true;
                }
            }
            "--contention" => {
                options.leave_out_default_sections();
                options.contention = true;
            }
            "--wal-seconds" => {
                let text = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--wal-seconds needs a number"))?;
                options.wal_seconds = text.parse()?;
            }
            other => anyhow::bail!(
                "unknown argument {other:?} (see the doc comment of bench/src/main.rs)"
            ),
        }
    }
    Ok(options)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("native-serve") {
        let [_, addr, db, key] = args.as_slice() else {
            anyhow::bail!("usage: zoe-session-bench native-serve ADDR DB ADMIN_KEY");
        };
        return native_server::serve(addr, db, key);
    }
    let options = options(&args)?;
    let started = Instant::now();
    println!(
        "zoe-session-bench: {} CPUs ({}), load average {} at start",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        loadavg()
    );
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let runtime = Runtime::new(Allocation::OnDemand)?;
        if options.inproc {
            inproc::run(&runtime, dir.path(), if options.quick { 4 } else { 1 }).await?;
        }
        if options.http {
            let bin = http::host_binary()?;
            if http::host_can_serve(&bin) {
                http::run(dir.path(), &bin, options.http_seconds).await?;
            } else {
                println!(
                    "\n### HTTP\n\nNot measured: {} has no `serve` command in this build.",
                    bin.display()
                );
            }
        }
        if options.fresh {
            let bin = http::host_binary()?;
            fresh::run(
                dir.path(),
                &bin,
                options.http_seconds,
                options.baseline_component.as_deref(),
            )
            .await?;
        }
        if options.keepalive {
            let bin = http::host_binary()?;
            keepalive::run(
                dir.path(),
                &bin,
                options.http_seconds,
                options.baseline_component.as_deref(),
            )
            .await?;
        }
        if options.stores {
            let bin = http::host_binary()?;
            stores::run(dir.path(), &bin, options.http_seconds).await?;
        }
        if options.wasip3 {
            let bin = http::host_binary()?;
            wasip3::run(dir.path(), &bin, options.http_seconds).await?;
        }
        if options.scale_out {
            let bin = http::host_binary()?;
            scaleout::run(&runtime, dir.path(), &bin, options.http_seconds).await?;
        }
        if options.scale {
            scale::run(&runtime, dir.path(), &options.sizes).await?;
        }
        if options.contention {
            let bin = http::host_binary()?;
            println!("\nserve binary: {}", bin.display());
            contention::run(dir.path(), &bin, options.http_seconds, options.wal_seconds).await?;
        }
        anyhow::Ok(())
    })?;
    println!(
        "\nfinished in {:.0} s, load average {} at the end",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::options;

    fn parse(args: &[&str]) -> anyhow::Result<super::Options> {
        options(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn stores_and_wasip3_run_alone_and_together() {
        let all = parse(&[]).unwrap();
        assert!(all.http && all.fresh && !all.stores && !all.wasip3);
        let stores = parse(&["--stores", "--http-seconds", "2"]).unwrap();
        assert!(stores.stores && !stores.wasip3 && !stores.http && !stores.fresh);
        assert!((stores.http_seconds - 2.0).abs() < f64::EPSILON);
        let both = parse(&["--wasip3", "--stores"]).unwrap();
        assert!(both.stores && both.wasip3 && !both.inproc && !both.keepalive);
        assert!(parse(&["--store"]).is_err());
    }
}
