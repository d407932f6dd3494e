//! A real Redis server for tests, started from the machine's own `redis-server` (Debian's
//! `redis-server` package; `.ci/run` installs it).
//!
//! [`RedisServer::start`] runs `redis-server` on a free loopback port with persistence off
//! (`--save "" --appendonly no`) and its working directory in a temporary directory, and
//! waits until it answers `PING`. Dropping the server kills it. [`shared`] gives one server per
//! test process (killed at exit) and [`RedisServer::fresh_url`] a URL on a database of its own
//! (the server has [`DATABASES`] of them), so that tests sharing the server see none of each
//! other's keys, as tests on the shared PostgreSQL server each get a database.
//!
//! A test of faults starts a server of its own, and [`RedisServer::stop`]s, [`pause`]s or
//! [`restart`]s it on the same port.
//!
//! [`pause`]: RedisServer::pause
//! [`restart`]: RedisServer::restart

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Databases each server has (`--databases`); [`RedisServer::fresh_url`] hands them out.
pub const DATABASES: u32 = 4096;

/// How long a start waits for the first `PONG`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server could not be started or used.
#[derive(Debug)]
pub struct RedisError(pub String);

impl std::fmt::Display for RedisError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedisError {}

type Result<T> = std::result::Result<T, RedisError>;

/// A Redis server owned by the test.
#[derive(Debug)]
pub struct RedisServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Mutex<Option<Child>>,
    databases: AtomicU32,
}

impl RedisServer {
    /// Starts a server on a free loopback port.
    ///
    /// # Errors
    ///
    /// When `redis-server` is missing (the message names the Debian package), or the server
    /// does not answer within 10 s.
    pub fn start() -> Result<Self> {
        let bin = find_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("zoe-redis-")
            .tempdir()
            .map_err(|e| RedisError(format!("cannot make a directory for Redis: {e}")))?;
        let port = free_port()?;
        let server = Self {
            bin,
            dir,
            port,
            child: Mutex::new(None),
            databases: AtomicU32::new(0),
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&self) -> Result<()> {
        let mut child = Command::new(&self.bin)
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--databases"])
            .arg(DATABASES.to_string())
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| RedisError(format!("cannot run {}: {e}", self.bin.display())))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self
                .command(&["PING"])
                .is_ok_and(|answer| answer == "+PONG")
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(RedisError(format!(
                    "redis-server on port {} exited at start: {status}",
                    self.port
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RedisError(format!(
                    "redis-server on port {} did not answer PING within {START_TIMEOUT:?}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT` (database 0).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A URL on a database no other caller of this server got (1, 2, …).
    ///
    /// # Panics
    ///
    /// When all [`DATABASES`] have been handed out.
    pub fn fresh_url(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed) + 1;
        assert!(
            n < DATABASES,
            "every Redis database of the test server is in use"
        );
        format!("redis://127.0.0.1:{}/{n}", self.port)
    }

    /// Kills the server (SIGKILL, as a crash); its data, in memory only, is gone.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty, after [`RedisServer::stop`].
    ///
    /// # Errors
    ///
    /// As [`RedisServer::start`] (another process may have taken the port meanwhile).
    pub fn restart(&self) -> Result<()> {
        self.stop();
        self.spawn()
    }

    /// Stops the process (SIGSTOP): connections stay open and nothing answers, which is
    /// what a Redis too slow to answer looks like to its clients.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a [`RedisServer::pause`]d server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(child) = child.as_ref()
            && let Ok(pid) = libc::pid_t::try_from(child.id())
        {
            // SAFETY: `kill` has no memory effects; the pid is our own child, not yet reaped.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    /// Sends one command (its words, no spaces inside a word) on a new connection and returns
    /// the first line of the answer (`+PONG`, `:3`, `$5`, …).
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or does not answer within a second.
    pub fn command(&self, words: &[&str]) -> Result<String> {
        let failed = |e: std::io::Error| RedisError(format!("redis port {}: {e}", self.port));
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(failed)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .map_err(failed)?;
        let mut request = format!("*{}\r\n", words.len());
        for word in words {
            request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        stream.write_all(request.as_bytes()).map_err(failed)?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .map_err(failed)?;
        Ok(line.trim_end().to_owned())
    }

    /// How many keys database `db` holds (`DBSIZE`).
    ///
    /// # Errors
    ///
    /// As [`RedisServer::command`], or an answer that is not a number.
    pub fn keys_in(&self, db: u32) -> Result<u64> {
        let failed = |e: std::io::Error| RedisError(format!("redis port {}: {e}", self.port));
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(failed)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .map_err(failed)?;
        let db = db.to_string();
        let request = format!(
            "*2\r\n$6\r\nSELECT\r\n${}\r\n{db}\r\n*1\r\n$6\r\nDBSIZE\r\n",
            db.len()
        );
        stream.write_all(request.as_bytes()).map_err(failed)?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).map_err(failed)?;
        line.clear();
        reader.read_line(&mut line).map_err(failed)?;
        line.trim_end()
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| RedisError(format!("DBSIZE answered {line:?}")))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a paused server too.
        self.stop();
    }
}

/// One server for the whole test process, started on first use and killed at exit.
///
/// # Panics
///
/// When the server cannot start: a test that needs Redis cannot run without it, and the
/// message says what is missing.
pub fn shared() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    static AT_EXIT: OnceLock<()> = OnceLock::new();
    let server = SERVER.get_or_init(|| match RedisServer::start() {
        Ok(server) => server,
        Err(err) => panic!("cannot start Redis for the tests: {err}"),
    });
    AT_EXIT.get_or_init(|| {
        extern "C" fn stop_shared() {
            if let Some(server) = SERVER.get() {
                server.stop();
            }
        }
        // SAFETY: `stop_shared` is a plain function with no unwinding; libc runs it once
        // when the process exits (the test harness exits through `std::process::exit`).
        unsafe {
            libc::atexit(stop_shared);
        }
    });
    server
}

fn find_bin() -> Result<PathBuf> {
    if let Ok(bin) = std::env::var("REDIS_SERVER") {
        return Ok(PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("redis-server"))
        .find(|bin| bin.is_file())
        .ok_or_else(|| {
            RedisError(
                "redis-server not found on PATH (install Debian's `redis-server` package, or \
                 set REDIS_SERVER to the binary)"
                    .to_owned(),
            )
        })
}

fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| RedisError(format!("cannot find a free port: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_starts_answers_stops_and_restarts_on_its_port() {
        let server = RedisServer::start().expect("redis-server starts");
        assert_eq!(server.command(&["SET", "k", "v"]).unwrap(), "+OK");
        assert_eq!(server.keys_in(0).unwrap(), 1);
        assert_eq!(server.keys_in(1).unwrap(), 0);
        server.stop();
        assert!(
            server.command(&["PING"]).is_err(),
            "a stopped server answers"
        );
        server.restart().expect("it starts again");
        assert_eq!(server.command(&["PING"]).unwrap(), "+PONG");
        // In memory only: the restart lost the key.
        assert_eq!(server.keys_in(0).unwrap(), 0);
    }

    #[test]
    fn a_paused_server_answers_nothing_until_resumed() {
        let server = RedisServer::start().expect("redis-server starts");
        server.pause();
        assert!(
            server.command(&["PING"]).is_err(),
            "a paused server answered"
        );
        server.resume();
        assert_eq!(server.command(&["PING"]).unwrap(), "+PONG");
    }

    #[test]
    fn fresh_urls_name_distinct_databases() {
        let server = shared();
        let a = server.fresh_url();
        let b = server.fresh_url();
        assert_ne!(a, b);
        assert!(a.starts_with(&server.url()), "{a}");
    }
}
