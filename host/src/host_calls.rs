//! The host calls a guest makes through Spin's interfaces, counted per instance, and a guest
//! stderr that counts its writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The host calls a guest has made through Spin's interfaces, counted for
/// `serve --count-host-calls` (docs/benchmarks-history.md, issue 18): under Spin every one of
/// them is paid on every request, so they are the figure to drive down.
#[derive(Debug, Default)]
pub struct HostCalls {
    variable_reads: AtomicU32,
    sqlite_opens: AtomicU32,
    sqlite_statements: AtomicU32,
    postgres_opens: AtomicU32,
    postgres_statements: AtomicU32,
    key_value_opens: AtomicU32,
    key_value_reads: AtomicU32,
    key_value_writes: AtomicU32,
    stderr_writes: AtomicU32,
    request_body_reads: AtomicU32,
}

/// A snapshot of [`HostCalls`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCallCounts {
    pub variable_reads: u32,
    pub sqlite_opens: u32,
    pub sqlite_statements: u32,
    pub postgres_opens: u32,
    pub postgres_statements: u32,
    pub key_value_opens: u32,
    /// `get`, `exists` and `get-keys` calls.
    pub key_value_reads: u32,
    /// `set` and `delete` calls: what Akamai's 50 writes a second per app is counted in.
    pub key_value_writes: u32,
    /// Writes to the guest's stderr (its log lines).
    pub stderr_writes: u32,
    /// Reads of the request body that reached the host (`serve` only): the guest opened the
    /// body stream and pulled a frame or its end from it.
    pub request_body_reads: u32,
}

impl HostCalls {
    pub(crate) fn variable_read(&self) {
        self.variable_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sqlite_open(&self) {
        self.sqlite_opens.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sqlite_statement(&self) {
        self.sqlite_statements.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn postgres_open(&self) {
        self.postgres_opens.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn key_value_open(&self) {
        self.key_value_opens.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn key_value_read(&self) {
        self.key_value_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn key_value_write(&self) {
        self.key_value_writes.fetch_add(1, Ordering::Relaxed);
    }

    fn stderr_write(&self) {
        self.stderr_writes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn request_body_read(&self) {
        self.request_body_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn postgres_statement(&self) {
        self.postgres_statements.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far, setting them back to zero (a reused instance starts each request
    /// from zero).
    pub fn take(&self) -> HostCallCounts {
        let take = |counter: &AtomicU32| counter.swap(0, Ordering::Relaxed);
        HostCallCounts {
            variable_reads: take(&self.variable_reads),
            sqlite_opens: take(&self.sqlite_opens),
            sqlite_statements: take(&self.sqlite_statements),
            postgres_opens: take(&self.postgres_opens),
            postgres_statements: take(&self.postgres_statements),
            key_value_opens: take(&self.key_value_opens),
            key_value_reads: take(&self.key_value_reads),
            key_value_writes: take(&self.key_value_writes),
            stderr_writes: take(&self.stderr_writes),
            request_body_reads: take(&self.request_body_reads),
        }
    }
}

/// A guest stderr that counts its writes in a [`HostCalls`] and passes them on to `inner`.
#[derive(Debug)]
pub struct CountingStderr<S> {
    inner: S,
    calls: Arc<HostCalls>,
}

impl<S> CountingStderr<S> {
    pub fn new(inner: S, calls: Arc<HostCalls>) -> Self {
        Self { inner, calls }
    }
}

impl<S: IsTerminal> IsTerminal for CountingStderr<S> {
    fn is_terminal(&self) -> bool {
        self.inner.is_terminal()
    }
}

impl<S: StdoutStream> StdoutStream for CountingStderr<S> {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(CountingOutput {
            inner: self.inner.p2_stream(),
            calls: self.calls.clone(),
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASIp3 guests use this; ours are p2.
        self.inner.async_stream()
    }
}

struct CountingOutput {
    inner: Box<dyn OutputStream>,
    calls: Arc<HostCalls>,
}

impl OutputStream for CountingOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.calls.stderr_write();
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }
}

#[async_trait::async_trait]
impl Pollable for CountingOutput {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}
