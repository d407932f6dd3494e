//! A real PostgreSQL server for tests, started from the machine's own binaries.
//!
//! [`PgServer::start`] runs `initdb` into a temporary directory and `pg_ctl start` on a free
//! loopback port, trusting local connections (no password: the server listens on 127.0.0.1
//! only and lives as long as the test). The server refuses to run as root, so under root the
//! directory is handed to the `postgres` user and every command runs through `runuser`.
//! Dropping the server stops it and removes its directory. [`shared`] gives one server per
//! test process (stopped at exit) and [`PgServer::fresh_database`] a new database on it, so a
//! test binary pays the ~2 s start once.
//!
//! [`PgServer::start_tls`] starts a server that accepts TCP connections over TLS only, with a
//! certificate for `localhost` signed by a [`TestCa`] made for the test; [`shared_tls`] gives
//! one such server per test process.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// Why the server could not be started or used.
#[derive(Debug)]
pub struct PgError(pub String);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PgError {}

type Result<T> = std::result::Result<T, PgError>;

/// A running (or stopped, see [`PgServer::stop`]) PostgreSQL server owned by the test.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres_user: bool,
    tls: bool,
    databases: AtomicU32,
}

/// A certificate authority made for one test process, and a server certificate it signed
/// that names `localhost` only (not `127.0.0.1`).
#[derive(Debug)]
pub struct TestCa {
    dir: tempfile::TempDir,
    server_cert_pem: String,
    server_key_pem: String,
}

impl TestCa {
    /// Makes the authority and the server certificate.
    ///
    /// # Errors
    ///
    /// When a key or a certificate cannot be made, or the CA's file cannot be written.
    pub fn new() -> Result<Self> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let failed = |e: rcgen::Error| PgError(format!("cannot make a test certificate: {e}"));
        let ca_key = KeyPair::generate().map_err(failed)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "zoe-session test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
        let issuer = Issuer::new(ca, ca_key);
        let server_key = KeyPair::generate().map_err(failed)?;
        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).map_err(failed)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server_cert = server.signed_by(&server_key, &issuer).map_err(failed)?;
        let dir = tempfile::Builder::new()
            .prefix("zoe-ca-")
            .tempdir()
            .map_err(|e| PgError(format!("cannot create a temporary directory: {e}")))?;
        std::fs::write(dir.path().join("ca.crt"), ca_cert.pem())
            .map_err(|e| PgError(format!("cannot write the CA certificate: {e}")))?;
        Ok(Self {
            dir,
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
        })
    }

    /// The CA's certificate, a PEM file: the root a client must trust.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }
}

impl PgServer {
    /// Initialises a cluster in a new temporary directory and starts it on a free port.
    ///
    /// # Errors
    ///
    /// When the PostgreSQL binaries are missing (install Debian's `postgresql`), or
    /// `initdb`/`pg_ctl` fail; the message carries their output.
    pub fn start() -> Result<Self> {
        Self::start_with(None)
    }

    /// Like [`PgServer::start`], with `ssl = on` and the server certificate of `ca`; TCP
    /// connections without TLS are refused (`hostssl` only in `pg_hba.conf`).
    ///
    /// # Errors
    ///
    /// As [`PgServer::start`], and when the certificate cannot be written.
    pub fn start_tls(ca: &TestCa) -> Result<Self> {
        Self::start_with(Some(ca))
    }

    fn start_with(ca: Option<&TestCa>) -> Result<Self> {
        let bin = find_bin_dir()?;
        let as_postgres_user = is_root();
        let dir = tempfile::Builder::new()
            .prefix("zoe-pg-")
            .tempdir()
            .map_err(|e| PgError(format!("cannot create a temporary directory: {e}")))?;
        if as_postgres_user {
            // The postgres user must reach the directory and own its contents.
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()))?;
        }
        let server = Self {
            bin,
            dir,
            port: free_port()?,
            as_postgres_user,
            tls: ca.is_some(),
            databases: AtomicU32::new(0),
        };
        server.tool(
            "initdb",
            &[
                "-D",
                &server.data_dir(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        if let Some(ca) = ca {
            server.install_tls(ca)?;
        }
        server.restart()?;
        Ok(server)
    }

    /// Writes the server's key and certificate into the data directory (mode 0600, owned by
    /// the server's user, as PostgreSQL requires) and lets TCP clients in over TLS only.
    fn install_tls(&self, ca: &TestCa) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let data = PathBuf::from(self.data_dir());
        let files = [
            ("server.crt", ca.server_cert_pem.as_str()),
            ("server.key", ca.server_key_pem.as_str()),
            (
                "pg_hba.conf",
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
            ),
        ];
        for (name, text) in files {
            let path = data.join(name);
            let written = std::fs::write(&path, text).and_then(|()| {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            });
            written.map_err(|e| PgError(format!("cannot write {}: {e}", path.display())))?;
            if self.as_postgres_user {
                run(Command::new("chown").arg("postgres:postgres").arg(&path))?;
            }
        }
        Ok(())
    }

    /// A `postgres://` URL of the `postgres` database.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// A `postgres://` URL of database `name`.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a new, empty database and returns its URL.
    ///
    /// # Errors
    ///
    /// When `createdb` fails (the server is stopped, say).
    pub fn fresh_database(&self) -> Result<String> {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{}_{n}", std::process::id());
        let port = self.port.to_string();
        self.tool(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", &name],
        )?;
        Ok(self.database_url(&name))
    }

    /// Runs a SQL script through `psql` against database `name` and returns its output.
    ///
    /// # Errors
    ///
    /// When `psql` fails or the SQL has an error.
    pub fn psql(&self, name: &str, sql: &str) -> Result<String> {
        let port = self.port.to_string();
        let output = self.tool(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                name,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Stops the server (fast shutdown: open connections are closed). The data stay; see
    /// [`PgServer::restart`].
    ///
    /// # Errors
    ///
    /// When `pg_ctl stop` fails.
    pub fn stop(&self) -> Result<()> {
        self.tool(
            "pg_ctl",
            &["-D", &self.data_dir(), "-w", "-m", "fast", "stop"],
        )
        .map(drop)
    }

    /// Starts the server again on the same port with the same data.
    ///
    /// # Errors
    ///
    /// When `pg_ctl start` fails; the server log is in the message.
    pub fn restart(&self) -> Result<()> {
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        if self.tls {
            // Relative to the data directory.
            options.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        let log = self.dir.path().join("log");
        let result = self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-w",
                "-o",
                &options,
                "-l",
                &log.display().to_string(),
                "start",
            ],
        );
        result.map(drop).map_err(|err| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            PgError(format!("{err}\nserver log:\n{log}"))
        })
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn tool(&self, name: &str, args: &[&str]) -> Result<Output> {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(self.dir.path());
        run(&mut command)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.tool(
            "pg_ctl",
            &["-D", &self.data_dir(), "-m", "immediate", "stop"],
        );
    }
}

/// One server for the whole test process, started on first use and stopped at exit.
///
/// # Panics
///
/// When the server cannot start: a test that needs PostgreSQL cannot run without it, and the
/// message says what is missing.
pub fn shared() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    let server = SERVER.get_or_init(|| match PgServer::start() {
        Ok(server) => server,
        Err(err) => panic!("cannot start PostgreSQL for the tests: {err}"),
    });
    stop_at_exit(server);
    server
}

/// One TLS-only server ([`PgServer::start_tls`]) for the whole test process, with the
/// [`TestCa`] whose certificate it presents; started on first use and stopped at exit.
///
/// # Panics
///
/// As [`shared`].
pub fn shared_tls() -> (&'static PgServer, &'static TestCa) {
    static SERVER: OnceLock<(PgServer, TestCa)> = OnceLock::new();
    let (server, ca) = SERVER.get_or_init(|| {
        let started = TestCa::new().and_then(|ca| Ok((PgServer::start_tls(&ca)?, ca)));
        match started {
            Ok(started) => started,
            Err(err) => panic!("cannot start PostgreSQL with TLS for the tests: {err}"),
        }
    });
    stop_at_exit(server);
    (server, ca)
}

/// Stops `server` and removes its directory when the process exits (statics are never
/// dropped); once per server.
fn stop_at_exit(server: &'static PgServer) {
    static SERVERS: Mutex<Vec<&'static PgServer>> = Mutex::new(Vec::new());
    let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    if servers.iter().any(|known| std::ptr::eq(*known, server)) {
        return;
    }
    if servers.is_empty() {
        extern "C" fn stop_all() {
            let servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
            for server in servers.iter() {
                let _ = server.tool(
                    "pg_ctl",
                    &["-D", &server.data_dir(), "-m", "immediate", "stop"],
                );
                let _ = std::fs::remove_dir_all(server.dir.path());
            }
        }
        // SAFETY: `stop_all` is a plain function with no unwinding; libc runs it once when
        // the process exits (the test harness exits through `std::process::exit`).
        unsafe {
            libc::atexit(stop_all);
        }
    }
    servers.push(server);
}

fn find_bin_dir() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            // A PATH entry may hold only links to some of the tools (this machine's
            // /usr/local/bin links initdb and pg_ctl): use the directory they live in.
            if let Ok(initdb) = dir.join("initdb").canonicalize()
                && let Some(bin) = initdb.parent()
                && ["pg_ctl", "createdb", "psql"]
                    .iter()
                    .all(|t| bin.join(t).is_file())
            {
                return Ok(bin.to_path_buf());
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().ok_or_else(|| {
        PgError(
            "no PostgreSQL server binaries (initdb, pg_ctl) found on PATH or in \
             /usr/lib/postgresql/*/bin: install Debian's `postgresql` package, or set PG_BIN"
                .to_owned(),
        )
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| PgError(format!("cannot find a free port: {e}")))
}

fn run(command: &mut Command) -> Result<Output> {
    let output = command
        .output()
        .map_err(|e| PgError(format!("cannot run {command:?}: {e}")))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(PgError(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_creates_a_database_runs_sql_and_restarts() {
        let server = PgServer::start().expect("server starts");
        let url = server.fresh_database().unwrap();
        let name = url.rsplit('/').next().unwrap();
        server
            .psql(
                name,
                "CREATE TABLE t (x int); INSERT INTO t VALUES (41), (1);",
            )
            .unwrap();
        assert_eq!(server.psql(name, "SELECT sum(x) FROM t").unwrap(), "42");
        server.stop().unwrap();
        assert!(
            server.psql(name, "SELECT 1").is_err(),
            "a stopped server answers"
        );
        server.restart().unwrap();
        assert_eq!(server.psql(name, "SELECT sum(x) FROM t").unwrap(), "42");
    }

    #[test]
    fn a_tls_server_speaks_tls_to_psql() {
        let ca = TestCa::new().unwrap();
        let server = PgServer::start_tls(&ca).expect("server starts");
        let ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
        assert_eq!(server.psql("postgres", ssl).unwrap(), "t");
        let plain = PgServer::start().unwrap();
        assert_eq!(plain.psql("postgres", ssl).unwrap(), "f");
    }
}
