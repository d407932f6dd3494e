//! HTTP figures: `zoe-session-host serve` (instances reused, `--requests-per-instance 100`, and
//! with `--no-instance-reuse`, one instance per request as Spin does and `serve` by default) against the
//! native hyper server of [`crate::native_server`], both as child processes on loopback, driven
//! in the same run by the same closed-loop generator, alternating server by server.

use crate::client::{Conn, Load, load, request};
use crate::stats::{Table, proc_kib, ratio, us};
use anyhow::Context as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin key both servers accept (loopback only, a throwaway database).
pub(crate) const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef";
/// Tokens created up front for the validate runs.
const TOKENS: usize = 256;

/// A server child process, killed on drop.
pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn rss_mib(&self) -> String {
        let pid = self.child.id().to_string();
        match (proc_kib(&pid, "VmRSS"), proc_kib(&pid, "VmHWM")) {
            (Some(rss), Some(hwm)) => format!("{} / {} MiB", rss / 1024, hwm / 1024),
            _ => "–".to_owned(),
        }
    }
}

pub(crate) fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The host binary: `ZOE_SESSION_HOST_BIN`, else next to this executable (same profile).
pub fn host_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("ZOE_SESSION_HOST_BIN") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("zoe-session-host");
    anyhow::ensure!(
        path.exists(),
        "{} not found: run `cargo build --release -p zoe-session-host` first",
        path.display()
    );
    Ok(path)
}

/// Whether the host binary has the `serve` command.
pub fn host_can_serve(bin: &Path) -> bool {
    Command::new(bin)
        .args(["serve", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) async fn wait_ready(server: &mut Server) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = request("GET", "/health", &[], "");
    loop {
        if let Some(status) = server.child.try_wait()? {
            anyhow::bail!("{} exited before it was ready: {status}", server.name);
        }
        if let Ok(mut conn) = Conn::connect(server.addr).await
            && let Ok((200, _)) = conn.send(&health).await
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} never became ready",
            server.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn create_request(user: &str) -> Vec<u8> {
    request(
        "POST",
        "/sessions/create",
        &[("authorization", format!("Bearer {ADMIN_KEY}").as_str())],
        &format!(r#"{{"user_id": "{user}", "timeout": 3600}}"#),
    )
}

pub(crate) async fn tokens(server: &Server) -> anyhow::Result<Vec<String>> {
    let mut conn = Conn::connect(server.addr).await?;
    let mut tokens = Vec::with_capacity(TOKENS);
    for i in 0..TOKENS {
        let (status, body) = conn.send(&create_request(&format!("seed-{i}"))).await?;
        let body: serde_json::Value = serde_json::from_slice(&body)
            .with_context(|| format!("{}: create answered {status} with non-JSON", server.name))?;
        let token = body["session_id"]
            .as_str()
            .with_context(|| format!("{}: create answered {status}: {body}", server.name))?;
        tokens.push(token.to_owned());
    }
    Ok(tokens)
}

/// Runs the HTTP comparison and prints its table.
pub async fn run(dir: &Path, host_bin: &Path, seconds: f64) -> anyhow::Result<()> {
    // Both databases get the schema from the component's migrations before either server runs.
    let runtime = zoe_session_host::Runtime::new(zoe_session_host::Allocation::OnDemand)?;
    let native_db = dir.join("http-native.db");
    drop(crate::inproc::host(&runtime, &native_db, zoe_session_host::Clock::system()).await?);
    drop(runtime);

    // Reuse is an opt-in since `serve` gives a WASIp2 component a fresh instance per request,
    // as Spin does; the flag is named so that an older binary (ZOE_SESSION_HOST_BIN) runs the
    // same cell.
    let mut component = start_serve(
        host_bin,
        dir,
        "component (serve --requests-per-instance 100)",
        &["--requests-per-instance", "100"],
    )?;
    let mut fresh = start_serve(
        host_bin,
        dir,
        "fresh instances (serve --no-instance-reuse)",
        &["--no-instance-reuse"],
    )?;
    let native_addr = free_addr()?;
    let mut native = Server {
        name: "native hyper",
        child: Command::new(std::env::current_exe()?)
            .args([
                "native-serve",
                &native_addr.to_string(),
                &native_db.display().to_string(),
                ADMIN_KEY,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the native server")?,
        addr: native_addr,
    };
    wait_ready(&mut component).await?;
    wait_ready(&mut fresh).await?;
    wait_ready(&mut native).await?;
    let comp_tokens = tokens(&component).await?;
    let fresh_tokens = tokens(&fresh).await?;
    let native_tokens = tokens(&native).await?;

    let duration = Duration::from_secs_f64(seconds);
    let mut table = Table::new(
        &format!(
            "HTTP on loopback: `serve --requests-per-instance 100` (instances reused), `serve --no-instance-reuse` and native hyper + rusqlite, {seconds} s per cell"
        ),
        &[
            "endpoint",
            "conc.",
            "serve req/s",
            "p50 µs",
            "p99 µs",
            "no-reuse req/s",
            "p50 µs",
            "native req/s",
            "p50 µs",
            "p99 µs",
            "ratio serve/native",
            "ratio no-reuse/native",
        ],
    );
    let mut component_rss = String::new();
    for endpoint in ["/health", "validate", "create"] {
        for concurrency in [1, 32] {
            let mut results: Vec<Load> = Vec::new();
            for (server, tokens) in [
                (&component, &comp_tokens),
                (&fresh, &fresh_tokens),
                (&native, &native_tokens),
            ] {
                let tokens = tokens.clone();
                let tag = format!("{}{}", &server.name[..1], concurrency);
                let make = move |c: usize, n: usize| match endpoint {
                    "/health" => request("GET", "/health", &[], ""),
                    "validate" => request(
                        "GET",
                        "/sessions/validate",
                        &[("x-session-id", tokens[(c * 31 + n) % tokens.len()].as_str())],
                        "",
                    ),
                    _ => create_request(&format!("{tag}-{c}-{n}")),
                };
                let result = load(server.addr, concurrency, duration, make).await?;
                anyhow::ensure!(
                    result.errors == 0,
                    "{}: {} of {} {endpoint} requests failed",
                    server.name,
                    result.errors,
                    result.latencies.len()
                );
                results.push(result);
            }
            if endpoint == "validate" && concurrency == 32 {
                component_rss = component.rss_mib();
            }
            let (c, f, n) = (&results[0], &results[1], &results[2]);
            table.row(vec![
                endpoint.to_owned(),
                concurrency.to_string(),
                format!("{:.0}", c.per_second()),
                us(c.latencies.quantile_us(0.5)),
                us(c.latencies.quantile_us(0.99)),
                format!("{:.0}", f.per_second()),
                us(f.latencies.quantile_us(0.5)),
                format!("{:.0}", n.per_second()),
                us(n.latencies.quantile_us(0.5)),
                us(n.latencies.quantile_us(0.99)),
                ratio(c.per_second(), n.per_second()),
                ratio(f.per_second(), n.per_second()),
            ]);
        }
    }
    table.print();
    println!(
        "\nserve --requests-per-instance 100 process memory after validate at concurrency 32 (VmRSS / VmHWM): {component_rss}; \
         serve --no-instance-reuse now: {}; native server now: {}",
        fresh.rss_mib(),
        native.rss_mib()
    );
    Ok(())
}

/// Starts `zoe-session-host serve` with `extra` arguments on its own database.
fn start_serve(
    host_bin: &Path,
    dir: &Path,
    name: &'static str,
    extra: &[&str],
) -> anyhow::Result<Server> {
    let db = dir.join(format!("http-serve{}.db", extra.len()));
    spawn_serve(
        host_bin,
        name,
        extra,
        &[("SESSION_DB_PATH", db.display().to_string())],
    )
}

/// Starts `zoe-session-host serve` on a free loopback port with the bench's admin key, request
/// logging off, `args` after `serve` and the environment `env` (its database settings).
pub(crate) fn spawn_serve(
    host_bin: &Path,
    name: &'static str,
    args: &[&str],
    env: &[(&str, String)],
) -> anyhow::Result<Server> {
    let (mut command, addr) = serve_command(host_bin, args, env)?;
    command
        .env("SESSION_LOG_REQUESTS", "false")
        .stderr(Stdio::inherit());
    launch(command, addr, name)
}

/// Like [`spawn_serve`], with the component's default logging and stderr into `log`.
pub(crate) fn spawn_serve_logged(
    host_bin: &Path,
    name: &'static str,
    args: &[&str],
    env: &[(&str, String)],
    log: &Path,
) -> anyhow::Result<Server> {
    let (mut command, addr) = serve_command(host_bin, args, env)?;
    command.stderr(std::fs::File::create(log).with_context(|| log.display().to_string())?);
    launch(command, addr, name)
}

/// `serve` on a free loopback port with the bench's admin key, `args` and `env`.
fn serve_command(
    host_bin: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> anyhow::Result<(Command, SocketAddr)> {
    let addr = free_addr()?;
    let mut command = Command::new(host_bin);
    command
        .args(["serve", "--listen", &addr.to_string()])
        .args(args)
        .env("SESSION_ADMIN_KEY", ADMIN_KEY)
        .stdout(Stdio::null());
    for (variable, value) in env {
        command.env(variable, value);
    }
    Ok((command, addr))
}

fn launch(mut command: Command, addr: SocketAddr, name: &'static str) -> anyhow::Result<Server> {
    let child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(Server { name, child, addr })
}
