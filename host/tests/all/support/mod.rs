//! Shared set-up for the tests that run `serve` as a child process: start the real binary on
//! a database file, wait until it answers, and talk to it over loopback with a deliberately
//! small HTTP/1.1 client (one connection per request, so a killed server shows up as a
//! connection error, and raw sockets are at hand for the slow-client tests). A response from a
//! `serve` child knows the request it answers and the child's log, so [`Response::expect`]
//! reports the whole exchange and the tail of the server's log.

pub mod in_process;

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use zoe_test_support::exchange_report;
pub use zoe_test_support::{ADMIN, ADMIN_KEY};

/// How long one request may take before the test gives up on it (never reached when healthy;
/// it only turns a hang into a failure).
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A `serve` child process on a database file. Killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when `--metrics-listen 127.0.0.1:0` was among the arguments.
    pub metrics_addr: Option<SocketAddr>,
    log: PathBuf,
}

impl Serve {
    /// Starts `serve` on `db` with `extra` environment variables and waits until `/health`
    /// answers.
    pub fn start(db: &Path, extra: &[(&str, &str)]) -> Self {
        Self::start_with(db, extra, &[], None)
    }

    /// Like [`Serve::start`], with `args` after `serve --listen 127.0.0.1:0`, and with at most
    /// `max_open_files` file descriptors (the shell's `ulimit -n`) when that is given.
    ///
    /// The child binds port 0 and says which port it got: a port picked here and bound there
    /// could be taken in between by any other test of this process.
    pub fn start_with(
        db: &Path,
        extra: &[(&str, &str)],
        args: &[&str],
        max_open_files: Option<u32>,
    ) -> Self {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let started = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = db.with_extension(format!("serve-{started}.log"));
        let binary = env!("CARGO_BIN_EXE_zoe-session-host");
        let mut command = match max_open_files {
            Some(limit) => {
                let mut shell = Command::new("/bin/sh");
                let script = format!(r#"ulimit -n {limit} && exec "$0" "$@""#);
                shell.args(["-c", &script, binary]);
                shell
            }
            None => Command::new(binary),
        };
        command
            .env_clear()
            .env("SESSION_DB_PATH", db)
            .env("SESSION_ADMIN_KEY", ADMIN_KEY)
            .env("SESSION_LOG_REQUESTS", "false")
            .env("SESSION_MAX_PER_USER", "100000")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (name, value) in extra {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (addr, metrics_addr) = announced_addresses(stdout).unwrap_or_else(|problem| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "serve {problem}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        serve_logs().lock().unwrap().insert(addr, log.clone());
        let mut serve = Self {
            child,
            addr,
            metrics_addr,
            log,
        };
        serve.wait_ready();
        serve
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!("serve exited with {status}: {}", self.log_text());
            }
            if get(self.addr, "/health", &[]).is_ok_and(|r| r.status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "serve did not answer /health within 60 s: {}",
            self.log_text()
        );
    }

    /// What the server wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut logs = serve_logs().lock().unwrap();
        if logs.get(&self.addr) == Some(&self.log) {
            logs.remove(&self.addr);
        }
    }
}

/// The log file of each running [`Serve`], by address, so that [`request`] can give a response
/// the log of the server that sent it.
fn serve_logs() -> &'static Mutex<HashMap<SocketAddr, PathBuf>> {
    static LOGS: OnceLock<Mutex<HashMap<SocketAddr, PathBuf>>> = OnceLock::new();
    LOGS.get_or_init(Mutex::default)
}

/// The API's address and, when it is served, the metrics' address, as `serve` prints them on
/// stdout once it listens (`metrics on http://ADDR/metrics`, then `zoe-session listening on
/// http://ADDR`); an error when it exits first or says nothing for 60 s. A thread drains the
/// rest of stdout until the child exits.
fn announced_addresses(stdout: ChildStdout) -> Result<(SocketAddr, Option<SocketAddr>), String> {
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut metrics = None;
    loop {
        let line = match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => return Err("did not listen within 60 s".into()),
            Err(RecvTimeoutError::Disconnected) => return Err("exited before listening".into()),
        };
        let parse = |addr: &str| {
            addr.parse::<SocketAddr>()
                .map_err(|_| format!("printed an address that does not parse: {line:?}"))
        };
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            metrics = Some(parse(rest.trim_end_matches("/metrics"))?);
        } else if let Some(rest) = line.strip_prefix("zoe-session listening on http://") {
            return Ok((parse(rest)?, metrics));
        }
    }
}

/// A response: status, lowercase headers, body; and, when [`request`] sent it, the request it
/// answers and the log file of the [`Serve`] that answered.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The request this answers, e.g. `POST /sessions/create`; `None` when read off a raw socket.
    pub request: Option<String>,
    log: Option<PathBuf>,
}

impl Response {
    /// The report of `problem` with this exchange: request, response, and the tail of the
    /// server's log when the server is a [`Serve`] (an in-process server's guest writes its log
    /// to the test's own stderr).
    pub fn report(&self, problem: &str) -> String {
        let log = self
            .log
            .as_ref()
            .map(|path| std::fs::read_to_string(path).unwrap_or_default());
        exchange_report(
            problem,
            self.request
                .as_deref()
                .unwrap_or("(written on a raw socket)"),
            self.status,
            &String::from_utf8_lossy(&self.body),
            log.as_deref(),
        )
    }

    /// Asserts the status, reporting the exchange and the server's log when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert!(
            self.status == status,
            "{}",
            self.report(&format!("expected status {status}"))
        );
        self
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "status {} body is not JSON ({err}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    request(addr, "GET", path, headers, None)
}

/// Sends one request on a fresh connection and reads the whole response.
///
/// # Errors
///
/// Any I/O error, e.g. the server is gone; a malformed response is an `InvalidData` error.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let mut response = parse_response(&raw)?;
    response.request = Some(format!("{method} {path}"));
    response.log = serve_logs().lock().unwrap().get(&addr).cloned();
    Ok(response)
}

/// Sends `head` (a request line and headers, ending with the blank line) exactly as given on a
/// fresh connection and reads the response: for requests [`request`] would not send, such as
/// a forged or doubled `Host`.
///
/// # Errors
///
/// As [`request`].
pub fn send_head(addr: SocketAddr, head: &str) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(head.as_bytes())?;
    let mut response = read_response(&mut stream)?;
    response.request = head.lines().next().map(str::to_owned);
    response.log = serve_logs().lock().unwrap().get(&addr).cloned();
    Ok(response)
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// Parses a complete HTTP/1.1 response (content-length, chunked, or read to close).
pub fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    parse(raw, true)?.ok_or_else(|| invalid("incomplete response"))
}

/// Reads one response from `stream` and stops as soon as it is complete, without waiting for the
/// connection to end. A server that refuses a request without reading all of it closes with
/// unread input, and the kernel then resets the connection: the answer arrives intact, but a
/// read past it fails, so reading to the end would lose it.
///
/// # Errors
///
/// Any I/O error before the response is complete (including the 30 s safety timeout); a
/// malformed response is an `InvalidData` error.
pub fn read_response(stream: &mut TcpStream) -> std::io::Result<Response> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(response) = parse(&raw, false)? {
            return Ok(response);
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return parse_response(&raw);
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// The response in `raw`, or `None` while more is needed; `closed` says nothing more will come.
fn parse(raw: &[u8], closed: bool) -> std::io::Result<Option<Response>> {
    let incomplete = |what: &str| if closed { Err(invalid(what)) } else { Ok(None) };
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return incomplete("no end of headers");
    };
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| invalid("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        match dechunk(rest)? {
            Some(body) => body,
            None => return incomplete("short chunk"),
        }
    } else if let Some((_, len)) = headers.iter().find(|(k, _)| k == "content-length") {
        let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
        match rest.get(..len) {
            Some(body) => body.to_vec(),
            None => return incomplete("short body"),
        }
    } else if closed {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Response {
        status,
        headers,
        body,
        request: None,
        log: None,
    }))
}

/// The body of a chunked response, or `None` while its last chunk has not arrived.
fn dechunk(mut rest: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| invalid("chunk"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid("bad chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        let (Some(chunk), Some(after)) = (rest.get(..size), rest.get(size + 2..)) else {
            return Ok(None);
        };
        body.extend_from_slice(chunk);
        rest = after;
    }
}
