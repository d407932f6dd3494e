//! A minimal HTTP/1.1 keep-alive client and a closed-loop load generator.
//!
//! Hand-written rather than hyper's client so the generator does as little per request as
//! possible (one pre-built request buffer, one read buffer per connection) and so the bench
//! needs no dependency features the host does not already build. It understands exactly what
//! the two servers send: `Content-Length` or chunked bodies.

use crate::stats::{Samples, median, us};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A request rendered once and sent many times.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        text.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

fn bad(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(8192),
        })
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Sends `request` and returns the status and body.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        self.stream.write_all(request).await?;
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| bad("head not utf-8"))?;
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status"))?;
        let mut length = None;
        let mut chunked = false;
        for line in head.lines().skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        self.buf.drain(..head_end);
        let body = if chunked {
            self.chunked().await?
        } else {
            let length = length.unwrap_or(0);
            while self.buf.len() < length {
                self.fill().await?;
            }
            self.buf.drain(..length).collect()
        };
        Ok((status, body))
    }

    async fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                self.fill().await?;
            };
            let size_text = std::str::from_utf8(&self.buf[..line_end]).map_err(|_| bad("chunk"))?;
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("chunk size"))?;
            // The chunk, then its CRLF (for the last chunk: the empty trailer's CRLF).
            while self.buf.len() < line_end + 2 + size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
            self.buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

/// What a load run measured.
#[derive(Debug)]
pub struct Load {
    pub latencies: Samples,
    pub elapsed: Duration,
    pub errors: u64,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// `concurrency` connections, each sending `make(connection, n)`'s request as soon as the
/// previous answer arrived, for `duration`. Non-2xx answers count as errors.
pub async fn load<F>(
    addr: SocketAddr,
    concurrency: usize,
    duration: Duration,
    make: F,
) -> io::Result<Load>
where
    F: Fn(usize, usize) -> Vec<u8> + Send + Sync + Clone + 'static,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            let mut samples = Samples::with_capacity(1 << 14);
            let mut errors = 0u64;
            let mut n = 0;
            while Instant::now() < deadline {
                let req = make(c, n);
                let t = Instant::now();
                let (status, _) = conn.send(&req).await?;
                samples.push(t.elapsed());
                if !(200..300).contains(&status) {
                    errors += 1;
                }
                n += 1;
            }
            io::Result::Ok((samples, errors))
        }));
    }
    let mut latencies = Samples::default();
    let mut errors = 0;
    for task in tasks {
        let (samples, e) = task.await.map_err(io::Error::other)??;
        latencies.extend(samples);
        errors += e;
    }
    Ok(Load {
        latencies,
        elapsed: start.elapsed(),
        errors,
    })
}

/// A request this slow has met a delayed ACK, or something as bad.
pub const STALL: Duration = Duration::from_millis(30);

/// One cell's figures (the `--stores`, `--wasip3` and `--keepalive` tables): a load's, or medians over
/// rounds of them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cell {
    pub per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub stalls: f64,
    pub requests: f64,
    /// Answers that were not 2xx (reported, not fatal: a busy store shows here).
    pub errors: f64,
}

impl Cell {
    pub fn of(load: &Load) -> Self {
        Self {
            per_second: load.per_second(),
            p50_us: load.latencies.quantile_us(0.5),
            p99_us: load.latencies.quantile_us(0.99),
            stalls: load.latencies.at_least(STALL) as f64,
            requests: load.latencies.len() as f64,
            errors: load.errors as f64,
        }
    }

    pub fn median(rounds: &[Self]) -> Self {
        let of = |figure: fn(&Self) -> f64| median(rounds.iter().map(figure).collect());
        Self {
            per_second: of(|c| c.per_second),
            p50_us: of(|c| c.p50_us),
            p99_us: of(|c| c.p99_us),
            stalls: of(|c| c.stalls),
            requests: of(|c| c.requests),
            errors: of(|c| c.errors),
        }
    }

    pub fn text(&self) -> String {
        let errors = if self.errors > 0.0 {
            format!(", {:.0} not 2xx", self.errors)
        } else {
            String::new()
        };
        format!(
            "{:.0} ({} / {}){errors}",
            self.per_second,
            us(self.p50_us),
            us(self.p99_us)
        )
    }
}
