//! The operator command line: small commands on the `SESSION_DB_PATH` database, each with
//! readable output or `--json`.

use crate::api::{CreateOptions, Issued, Session, SessionHost};
use crate::config::HostConfig;
use crate::error::HostError;
use crate::platform::Platform;
use crate::runtime::{Allocation, Metering, Runtime, RuntimeOptions};
use crate::serve::{HostCallSink, ReusePolicy, ServeOptions, Server};
use crate::sqlite::Location;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::Duration;
use zoe_session_config::{Backend, Database};

/// Session management for web and AI applications, run natively.
///
/// Configuration comes from the SESSION_* environment variables (docs/configuration.md); the
/// database is SESSION_DB_PATH (default data/sessions.db, or `:memory:`).
#[derive(Debug, Parser)]
#[command(name = "zoe-session-host", version)]
pub struct Cli {
    /// Database file (overrides SESSION_DB_PATH).
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<String>,

    /// A runtime config file in Spin's format, for its `[key_value_store.LABEL]` tables
    /// (e.g. Redis: `type = "redis"`, `url = "redis://…"`); overrides
    /// SESSION_RUNTIME_CONFIG_FILE. Without one, key-value store `default` is a SQLite file
    /// beside the database.
    #[arg(long, global = true, value_name = "PATH")]
    runtime_config_file: Option<std::path::PathBuf>,

    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a session and print it with its token.
    Create {
        /// The user the session belongs to.
        user_id: String,
        /// Idle timeout in seconds (default: SESSION_DEFAULT_TIMEOUT).
        #[arg(long)]
        timeout: Option<u32>,
        /// Metadata as a JSON object, e.g. '{"role":"admin"}'.
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Check a token; exits with status 1 when it is not valid.
    Validate {
        /// The token printed by `create`.
        token: String,
    },
    /// List a user's active sessions (never their tokens).
    List {
        /// The user whose sessions to list.
        user_id: String,
    },
    /// Delete a session, named by token or public id.
    Invalidate {
        /// Token or public id.
        #[arg(required_unless_present = "all")]
        session: Option<String>,
        /// End every session of every user instead (a mass logout).
        #[arg(long, conflicts_with = "session")]
        all: bool,
    },
    /// Print counters over the whole store.
    Stats,
    /// Serve the HTTP API (the same routes as under Spin).
    ///
    /// With no admin key configured (SESSION_ADMIN_KEY), one is generated at first start and
    /// kept in `admin.key` beside the database (mode 0600); its path is printed, the key is not.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// Serve another component (e.g. a composed app) instead of the embedded one.
        #[arg(long, value_name = "PATH")]
        component: Option<std::path::PathBuf>,
        /// Longest a request may run, e.g. `10s`.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        request_timeout: Duration,
        /// Run the component as this platform would (docs/deploy-akamai.md). `akamai`: Akamai
        /// Functions with deploy/akamai/spin.toml: no SQLite (every `open` is refused with
        /// `access-denied`, as Spin refuses an ungranted database), only the `default`
        /// key-value store, 128 MiB per instance, 30 s per request, a fresh instance per
        /// request (WASIp2 and WASIp3 alike). Configure the sessions' store to match
        /// (SESSION_KEY_VALUE_STORE=default).
        #[arg(long, value_enum, default_value_t = Platform::Spin,
              conflicts_with_all = ["request_timeout", "requests_per_instance", "no_instance_reuse", "spin_costs",
                                    "max_instance_reuse_count", "max_instance_concurrent_reuse_count"])]
        platform: Platform,
        /// Requests served at once (more wait their turn).
        #[arg(long, default_value_t = 64)]
        max_concurrent: u32,
        /// Longest a client may take to send a request head, and how long an idle
        /// connection is kept, e.g. `10s`.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        header_timeout: Duration,
        /// Longest a client may take to send a request body once its head is in (408 after
        /// that), e.g. `10s`.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        body_timeout: Duration,
        /// Connections open at once; more get 503.
        #[arg(long, default_value_t = 1024)]
        max_connections: usize,
        /// WASIp2 components: requests one instance serves before a fresh one replaces it.
        /// The default, 1, is Spin's fresh instance per request, so that figures under `serve`
        /// predict Spin's; more is an opt-in to reuse (faster; see BENCHMARKS.md).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..),
              value_name = "N", conflicts_with = "no_instance_reuse")]
        requests_per_instance: u32,
        /// A fresh instance for every request, as Spin does: now the default, kept so that
        /// scripts that name it still run (--requests-per-instance 1).
        #[arg(long)]
        no_instance_reuse: bool,
        /// WASIp3 components: requests one instance takes before it is dropped, as Spin 4.1's
        /// flag (WASIp2 components follow --requests-per-instance).
        #[arg(long, default_value_t = crate::serve::DEFAULT_MAX_INSTANCE_REUSE_COUNT,
              value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
        max_instance_reuse_count: u32,
        /// WASIp3 components: requests one instance runs at once, as Spin 4.1's flag.
        #[arg(long, default_value_t = crate::serve::DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT,
              value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
        max_instance_concurrent_reuse_count: u32,
        /// WASIp3 components: how long an idle instance is kept for another request, as Spin
        /// 4.1's flag and environment variable: seconds, or a duration such as `500ms`.
        #[arg(long, env = "SPIN_HTTP_IDLE_INSTANCE_TIMEOUT_SECS", default_value = "1s",
              value_parser = spin_duration)]
        idle_instance_timeout: Duration,
        /// A WASIp3 HTTP middleware component to put in front of the app, as Spin 4.1's
        /// `dependencies.middleware`; repeat it for a chain, outermost first. The app (the
        /// embedded component or --component) must be a WASIp3 one.
        #[arg(long, value_name = "PATH")]
        middleware: Vec<std::path::PathBuf>,
        /// SQLite `synchronous`: `normal` (a commit survives a process crash) or `full` (it
        /// survives a power loss too, one fsync per commit). Overrides SESSION_SYNCHRONOUS;
        /// default `normal`. See SECURITY.md, "Durability".
        #[arg(long, value_name = "normal|full")]
        synchronous: Option<crate::sqlite::Synchronous>,
        /// Benchmark mode: present the costs Spin has, a fresh instance per request and a new
        /// SQLite connection per `open` in rollback-journal mode (slower; BENCHMARKS.md).
        #[arg(long, conflicts_with = "requests_per_instance")]
        spin_costs: bool,
        /// Test mode: answer `spin:postgres` as Spin 4.0.x does where later Spin differs. A
        /// query that matches no rows, which Spin 4.0.x never answers (spinframework/spin#3671),
        /// fails the request with an error naming the issue. Overrides SESSION_SPIN_COMPAT;
        /// default `current`.
        #[arg(long, value_name = "4.0|current")]
        spin_compat: Option<crate::postgres::SpinCompat>,
        /// Log the host calls (variable reads, SQLite and PostgreSQL statements) and response
        /// body writes of every request, one JSON line each on stderr.
        #[arg(long)]
        count_host_calls: bool,
        /// Serve Prometheus metrics at http://ADDR/metrics, on a listener of their own (bind
        /// it where only your scraper reaches; docs/operations.md, "Metrics").
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
        /// Leave Nagle's algorithm on for client connections, as Spin's HTTP server does
        /// (TCP_NODELAY is set by default). A response that reaches the socket in more than
        /// one write then waits for the client's delayed ACK; for testing what Spin's users see.
        #[arg(long)]
        no_tcp_nodelay: bool,
    },
    /// Delete expired sessions.
    Cleanup {
        /// Most rows to delete in this run.
        #[arg(long, default_value_t = 100_000)]
        max_rows: u32,
    },
}

/// Runs the command line and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> Result<ExitCode, HostError> {
    let mut config = HostConfig::from_env()?;
    if let Some(db) = &cli.db {
        config.database = Location::parse(db);
    }
    if let Some(path) = &cli.runtime_config_file {
        config.read_runtime_config(path)?;
    }
    // Every setting is checked before anything starts, so that a bad one is named by its
    // environment variable as well (the component names only its Spin variable).
    config
        .settings()
        .check_all()
        .map_err(crate::config::ConfigError::from)?;
    if let Command::Serve {
        listen,
        component,
        request_timeout,
        platform,
        max_concurrent,
        header_timeout,
        body_timeout,
        max_connections,
        requests_per_instance,
        no_instance_reuse,
        max_instance_reuse_count,
        max_instance_concurrent_reuse_count,
        idle_instance_timeout,
        middleware,
        synchronous,
        spin_costs,
        spin_compat,
        count_host_calls,
        metrics_listen,
        no_tcp_nodelay,
    } = cli.command
    {
        if let Some(synchronous) = synchronous {
            config.synchronous = synchronous;
        }
        if let Some(spin_compat) = spin_compat {
            config.spin_compat = spin_compat;
        }
        config.connection_per_open = spin_costs;
        config.platform = platform;
        let limits = ServeOptions {
            listen,
            request_timeout: platform.request_timeout().unwrap_or(request_timeout),
            max_concurrent: max_concurrent as usize,
            header_read_timeout: header_timeout,
            body_read_timeout: body_timeout,
            max_connections,
            requests_per_instance: if no_instance_reuse || spin_costs {
                1
            } else {
                platform
                    .requests_per_instance()
                    .unwrap_or(requests_per_instance)
            },
            // A platform that reuses no instance gives a WASIp3 one one request too.
            p3_reuse: match platform.requests_per_instance() {
                Some(requests) => ReusePolicy {
                    max_requests: requests,
                    max_concurrent: 1,
                    idle_timeout: idle_instance_timeout,
                },
                None => ReusePolicy {
                    max_requests: max_instance_reuse_count,
                    max_concurrent: max_instance_concurrent_reuse_count,
                    idle_timeout: idle_instance_timeout,
                },
            },
            count_host_calls: count_host_calls.then(HostCallSink::log),
            metrics_listen,
            tcp_nodelay: !no_tcp_nodelay,
            ..ServeOptions::default()
        };
        return serve(config, component, &middleware, limits).await;
    }
    let runtime = Runtime::new(Allocation::OnDemand)?;
    let host = SessionHost::open(&runtime, config).await?;
    let mut sessions = host.sessions().await?;
    let json = cli.json;

    match cli.command {
        Command::Create {
            user_id,
            timeout,
            metadata,
        } => {
            let options = CreateOptions {
                timeout_seconds: timeout,
                metadata,
                ..CreateOptions::default()
            };
            let issued = sessions.create(&user_id, options).await?;
            print(json, issued_json(&issued), || {
                format!(
                    "Created a session for {}.\n  token (session_id): {}\n{}",
                    issued.session.user_id,
                    issued.token,
                    session_text(&issued.session)
                )
            });
        }
        Command::Validate { token } => match sessions.validate(&token).await {
            Ok(session) => print(json, session_json(&session), || {
                format!("Valid.\n{}", session_text(&session))
            }),
            Err(HostError::Session(err)) => {
                let reason = crate::api::describe(&err);
                print(json, json!({"valid": false, "error": reason}), || {
                    format!("Not valid: {reason}.")
                });
                return Ok(ExitCode::FAILURE);
            }
            Err(err) => return Err(err),
        },
        Command::List { user_id } => {
            let list = sessions.list_user(&user_id).await?;
            let values: Vec<Value> = list.iter().map(session_json).collect();
            print(json, Value::Array(values), || {
                let mut text = format!("{} active session(s) for {user_id}.", list.len());
                for session in &list {
                    text.push('\n');
                    text.push_str(&session_text(session));
                }
                text
            });
        }
        // clap makes `session` and `--all` exclusive, and one of them required.
        Command::Invalidate { session, .. } => match session {
            Some(session) => {
                sessions.invalidate(&session).await?;
                print(json, json!({"invalidated": true}), || {
                    "Session invalidated.".to_owned()
                });
            }
            None => {
                let count = sessions.invalidate_all().await?;
                print(json, json!({"invalidated": count}), || {
                    format!("{count} session(s) invalidated: every user is logged out.")
                });
            }
        },
        Command::Stats => {
            let stats = sessions.stats().await?;
            let value = json!({
                "active_sessions": stats.active_sessions,
                "active_users": stats.active_users,
                "expired_awaiting_cleanup": stats.expired_awaiting_cleanup,
                "last_cleanup_at": timestamp_or_null(stats.last_cleanup_at),
            });
            print(json, value, || {
                format!(
                    "active sessions:           {}\nactive users:              {}\n\
                     expired, awaiting cleanup: {}\nlast cleanup:              {}",
                    stats.active_sessions,
                    stats.active_users,
                    stats.expired_awaiting_cleanup,
                    if stats.last_cleanup_at == 0 {
                        "never".to_owned()
                    } else {
                        timestamp(stats.last_cleanup_at)
                    }
                )
            });
        }
        Command::Serve { .. } => unreachable!("handled above"),
        Command::Cleanup { max_rows } => {
            let deleted = sessions.cleanup(max_rows).await?;
            print(json, json!({"deleted": deleted}), || {
                format!("Deleted {deleted} expired session(s).")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    mut config: HostConfig,
    component: Option<std::path::PathBuf>,
    middleware: &[std::path::PathBuf],
    limits: ServeOptions,
) -> Result<ExitCode, HostError> {
    if config
        .variables
        .get("admin_key")
        .is_none_or(|k| k.trim().is_empty())
    {
        let db_path = match &config.database {
            Location::File(path) => Some(path.as_path()),
            Location::Memory => None,
        };
        let path = crate::admin_key::path_for(db_path);
        let (key, created) =
            crate::admin_key::load_or_create(&path).map_err(|source| HostError::AdminKeyFile {
                path: path.clone(),
                source,
            })?;
        config.variables.set("admin_key", key);
        let verb = if created { "generated" } else { "using" };
        eprintln!(
            "admin key {verb}: {} (send it as `Authorization: Bearer <key>`)",
            path.display()
        );
    }
    let settings = config.settings();
    // Counting host calls also meters the guest's work in fuel, a figure load cannot move.
    let options = RuntimeOptions {
        allocation: limits.allocation(),
        metering: if limits.count_host_calls.is_some() {
            Metering::Fuel
        } else {
            Metering::Off
        },
        max_memory_bytes: config.platform.max_memory_bytes(),
    };
    let runtime = load(component.as_deref(), middleware, options)?;
    let platform = config.platform;
    let host = SessionHost::open(&runtime, config).await.inspect_err(|_| {
        // The component's own error says `access denied`; say why, and what to set.
        if !platform.grants_sqlite()
            && matches!(settings.backend(), Ok(Backend::Sql(Database::Sqlite)))
        {
            eprintln!(
                "the sessions are configured on SQLite, which this platform does not grant: \
                 set SESSION_KEY_VALUE_STORE=default (deploy/akamai/spin.toml) or \
                 SESSION_DATABASE_URL (deploy/akamai/spin-postgres.toml)"
            );
        }
    })?;
    // The component has checked its settings by now; this reads the one the timer needs.
    let cleanup_interval = *settings
        .cleanup_interval()
        .map_err(crate::config::ConfigError::from)?;
    let options = ServeOptions {
        cleanup_interval: Some(Duration::from_secs(cleanup_interval.into())),
        ..limits
    };
    let server = Server::start(host, options).await?;
    if let Some(addr) = server.metrics_addr() {
        println!("metrics on http://{addr}/metrics");
    }
    println!("zoe-session listening on {}", server.url());
    wait_for_shutdown_signal().await;
    eprintln!("shutting down");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// A duration as Spin's HTTP trigger reads one: a bare number is seconds (`2`), otherwise a
/// number with a unit (`1s`, `500ms`, `10us`).
fn spin_duration(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(text.trim())
            .map_err(|err| format!("expected seconds or a duration such as 500ms: {err}")),
    }
}

/// The component to serve: `component` (else the embedded one) behind the `middleware` chain,
/// outermost first.
fn load(
    component: Option<&std::path::Path>,
    middleware: &[std::path::PathBuf],
    options: RuntimeOptions,
) -> Result<Runtime, HostError> {
    if middleware.is_empty() {
        return Ok(match component {
            Some(path) => Runtime::from_file(path, options)?,
            None => Runtime::new(options)?,
        });
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))
    };
    let app = match component {
        Some(path) => (path.display().to_string(), read(path)?),
        None => (
            "the embedded zoe-session".to_owned(),
            crate::runtime::EMBEDDED_COMPONENT.to_vec(),
        ),
    };
    let chain = middleware
        .iter()
        .map(|path| Ok((path.display().to_string(), read(path)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let links: Vec<_> = chain
        .iter()
        .map(|(name, bytes)| crate::middleware::Link { name, bytes })
        .collect();
    let app = crate::middleware::Link {
        name: &app.0,
        bytes: &app.1,
    };
    let composed = crate::middleware::compose(&links, app)?;
    Ok(Runtime::from_bytes(&composed, options)?)
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print(json: bool, value: Value, text: impl FnOnce() -> String) {
    if json {
        println!("{value:#}");
    } else {
        println!("{}", text());
    }
}

/// A session in the HTTP API's JSON shape (`zoe_session_wire`), so scripts treat both alike.
pub fn session_json(session: &Session) -> Value {
    zoe_session_wire::session(&fields(session))
}

fn issued_json(issued: &Issued) -> Value {
    zoe_session_wire::issued(&fields(&issued.session), &issued.token)
}

fn fields(s: &Session) -> zoe_session_wire::SessionFields<'_> {
    zoe_session_wire::SessionFields {
        id: &s.id,
        user_id: &s.user_id,
        created_at: s.created_at,
        last_activity: s.last_activity,
        expires_at: s.expires_at,
        absolute_expires_at: s.absolute_expires_at,
        idle_timeout: s.idle_timeout,
        metadata: &s.metadata,
        is_active: s.is_active,
        client_addr: s.client_addr.as_deref(),
        user_agent: s.user_agent.as_deref(),
    }
}

fn session_text(session: &Session) -> String {
    let mut text = format!(
        "  id: {}\n  user: {}\n  created: {}\n  last activity: {}\n  expires: {}\n  \
         absolute expiry: {}\n  idle timeout: {} s\n  metadata: {}",
        session.id,
        session.user_id,
        timestamp(session.created_at),
        timestamp(session.last_activity),
        timestamp(session.expires_at),
        timestamp(session.absolute_expires_at),
        session.idle_timeout,
        session.metadata
    );
    if session.client_addr.is_some() || session.user_agent.is_some() {
        text.push_str(&format!(
            "\n  device: {} ({})",
            session.client_addr.as_deref().unwrap_or("unknown address"),
            session.user_agent.as_deref().unwrap_or("unknown agent")
        ));
    }
    text
}

/// RFC 3339 UTC with milliseconds.
pub use zoe_session_wire::rfc3339 as timestamp;

fn timestamp_or_null(unix_ms: u64) -> Value {
    if unix_ms == 0 {
        Value::Null
    } else {
        Value::String(timestamp(unix_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::SpinCompat;
    use crate::sqlite::Synchronous;

    #[test]
    fn idle_instance_timeout_reads_as_spin_reads_it() {
        assert_eq!(spin_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(spin_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(spin_duration("1s"), Ok(Duration::from_secs(1)));
        assert!(spin_duration("soon").unwrap_err().contains("500ms"));
    }

    fn serve_synchronous(args: &[&str]) -> Result<Option<Synchronous>, clap::Error> {
        let cli = Cli::try_parse_from(["zoe-session-host", "serve"].iter().chain(args))?;
        match cli.command {
            Command::Serve { synchronous, .. } => Ok(synchronous),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn serve_takes_spin_compat_and_refuses_a_bad_value() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(["zoe-session-host", "serve"].iter().chain(args))?;
            match cli.command {
                Command::Serve { spin_compat, .. } => Ok(spin_compat),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(
            parse(&["--spin-compat", "4.0"]).unwrap(),
            Some(SpinCompat::V4_0)
        );
        assert_eq!(
            parse(&["--spin-compat", "current"]).unwrap(),
            Some(SpinCompat::Current)
        );
        let err: clap::Error = parse(&["--spin-compat", "4.1"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("spin compatibility must be `4.0` or `current`"),
            "{err}"
        );
    }

    #[test]
    fn a_wasip2_instance_serves_one_request_unless_reuse_is_asked_for() {
        let parse = |args: &[&str]| -> Result<(u32, bool), clap::Error> {
            let cli = Cli::try_parse_from(["zoe-session-host", "serve"].iter().chain(args))?;
            match cli.command {
                Command::Serve {
                    requests_per_instance,
                    no_instance_reuse,
                    ..
                } => Ok((requests_per_instance, no_instance_reuse)),
                other => panic!("{other:?}"),
            }
        };
        // Spin's fresh instance per request by default (issue 30), as the library's default.
        assert_eq!(parse(&[]).unwrap(), (1, false));
        assert_eq!(ServeOptions::default().requests_per_instance, 1);
        assert_eq!(
            parse(&["--requests-per-instance", "100"]).unwrap(),
            (100, false)
        );
        assert_eq!(parse(&["--no-instance-reuse"]).unwrap(), (1, true));
        let both = ["--no-instance-reuse", "--requests-per-instance", "100"];
        parse(&both).unwrap_err();
        parse(&["--requests-per-instance", "0"]).unwrap_err();
    }

    #[test]
    fn serve_takes_synchronous_and_refuses_a_bad_value() {
        assert_eq!(serve_synchronous(&[]).unwrap(), None);
        assert_eq!(
            serve_synchronous(&["--synchronous", "full"]).unwrap(),
            Some(Synchronous::Full)
        );
        assert_eq!(
            serve_synchronous(&["--synchronous", "normal"]).unwrap(),
            Some(Synchronous::Normal)
        );
        let err = serve_synchronous(&["--synchronous", "off"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("synchronous must be `normal` or `full`"),
            "{err}"
        );
    }
}
