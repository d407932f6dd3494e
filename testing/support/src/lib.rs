//! What every integration test suite of the workspace shares: the manual clock's start, the
//! admin key and its `Authorization` header, the component compiled once per test binary (with
//! instances on demand for the typed API, pooled as `serve` pools them for HTTP), the
//! database file of a test host, and the report a failed HTTP exchange prints (the request,
//! the response and the tail of the server's log).
//!
//! The root crate's tests (`tests/`) and the host's (`host/tests/`) both use it; what only one
//! suite needs stays in that suite's support module.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use zoe_session_host::{Allocation, HostConfig, Location, Runtime};

/// The admin key as a literal, so that [`ADMIN`] can be built from it at compile time.
macro_rules! admin_key {
    () => {
        "test-admin-key-0123456789abcdef"
    };
}

/// 2027-01-15T08:00:00Z: a fixed start so tests never depend on the real date.
pub const START_MS: u64 = 1_800_000_000_000;

/// The admin key every test server is given.
pub const ADMIN_KEY: &str = admin_key!();

/// The `Authorization` header carrying [`ADMIN_KEY`].
pub const ADMIN: (&str, &str) = ("authorization", concat!("Bearer ", admin_key!()));

/// The headers of an admin request: just [`ADMIN`].
pub fn admin() -> &'static [(&'static str, &'static str)] {
    &[ADMIN]
}

/// The embedded component, compiled once for the whole test binary, allocating instances on
/// demand: any number at once, as the typed API's tests (races of a hundred instances) need.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(Allocation::OnDemand).expect("component compiles"))
}

/// How many instances [`serve_runtime`] holds at once: enough for every server of a test binary.
pub const SERVE_INSTANCES: u32 = 64;

/// The embedded component, compiled once for the whole test binary, with pooling slots for
/// [`SERVE_INSTANCES`] instances, as `serve` allocates them: for the tests that serve HTTP.
pub fn serve_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(Allocation::Pooling {
            max_instances: SERVE_INSTANCES,
        })
        .expect("component compiles")
    })
}

/// Which build of zoe-session a test runs. Both builds pass the same suites: the WASIp2 build
/// (spin-sdk 5.2, embedded in the host) and the WASIp3 build (`p3/`, spin-sdk 7), which `serve`
/// runs as Spin 4.1 does, reusing instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    Wasip2,
    Wasip3,
}

impl Build {
    /// The build a copy of a suite is for, by the copy's module path: a suite file that the
    /// test binary includes a second time as a module named `…_wasip3` runs the WASIp3 build.
    pub const fn of_module(path: &str) -> Self {
        let (path, suffix) = (path.as_bytes(), b"_wasip3");
        if path.len() < suffix.len() {
            return Self::Wasip2;
        }
        let mut i = 0;
        while i < suffix.len() {
            if path[path.len() - suffix.len() + i] != suffix[i] {
                return Self::Wasip2;
            }
            i += 1;
        }
        Self::Wasip3
    }

    /// This build compiled once for the test binary, instances allocated on demand.
    pub fn runtime(self) -> &'static Runtime {
        match self {
            Self::Wasip2 => runtime(),
            Self::Wasip3 => {
                static RUNTIME: OnceLock<Runtime> = OnceLock::new();
                RUNTIME.get_or_init(|| wasip3(Allocation::OnDemand))
            }
        }
    }

    /// This build compiled once for the test binary with pooling slots, as `serve` runs it.
    pub fn serve_runtime(self) -> &'static Runtime {
        match self {
            Self::Wasip2 => serve_runtime(),
            Self::Wasip3 => {
                static RUNTIME: OnceLock<Runtime> = OnceLock::new();
                RUNTIME.get_or_init(|| {
                    wasip3(Allocation::Pooling {
                        max_instances: SERVE_INSTANCES,
                    })
                })
            }
        }
    }
}

fn wasip3(allocation: Allocation) -> Runtime {
    Runtime::from_file(
        Path::new(zoe_session_host::runtime::WASIP3_COMPONENT_PATH),
        allocation,
    )
    .expect("the WASIp3 build compiles")
}

/// The name of a test host's database file inside its directory.
pub const DATABASE_FILE: &str = "sessions.db";

/// A host config over the database file [`DATABASE_FILE`] in `dir`, default settings otherwise.
pub fn file_config(dir: impl AsRef<Path>) -> HostConfig {
    HostConfig {
        database: Location::File(dir.as_ref().join(DATABASE_FILE)),
        ..HostConfig::in_memory()
    }
}

/// How much of the server's log a failure report shows: its last this many bytes.
pub const LOG_TAIL_BYTES: usize = 4000;

/// The last [`LOG_TAIL_BYTES`] of `log` (from a character boundary).
pub fn log_tail(log: &str) -> &str {
    let mut start = log.len().saturating_sub(LOG_TAIL_BYTES);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

/// A finished child process as a failure message shows it: exit status, stdout, stderr.
pub fn describe_output(output: &std::process::Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What a test prints when an HTTP exchange is not what it expected: `problem`, the request
/// (`"POST /sessions/create"`), the response's status and body, and the tail of the server's
/// log when the test has it.
pub fn exchange_report(
    problem: &str,
    request: &str,
    status: u16,
    body: &str,
    log: Option<&str>,
) -> String {
    let mut report = format!("{problem}\n  request:  {request}\n  response: {status} {body}\n");
    match log {
        Some("") => report.push_str("  server log: (empty)\n"),
        Some(log) => {
            let tail = log_tail(log);
            let cut = if tail.len() < log.len() {
                " (tail)"
            } else {
                ""
            };
            let _ = writeln!(report, "  server log{cut}:\n{}", tail.trim_end());
        }
        None => {}
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suite_copy_named_wasip3_runs_the_wasip3_build() {
        assert_eq!(Build::of_module("all::http_api_wasip3"), Build::Wasip3);
        assert_eq!(Build::of_module("all::http_api"), Build::Wasip2);
        assert_eq!(Build::of_module("p3"), Build::Wasip2);
    }

    #[test]
    fn the_admin_header_carries_the_admin_key() {
        assert_eq!(ADMIN.1, format!("Bearer {ADMIN_KEY}"));
        assert_eq!(admin(), [ADMIN]);
    }

    #[test]
    fn the_log_tail_is_the_end_of_the_log_cut_on_a_character_boundary() {
        assert_eq!(log_tail("short"), "short");
        let log = format!("{}{}", "é".repeat(LOG_TAIL_BYTES), "end");
        let tail = log_tail(&log);
        assert!(tail.len() <= LOG_TAIL_BYTES && tail.len() >= LOG_TAIL_BYTES - 1);
        assert!(tail.ends_with("end"));
    }

    #[test]
    fn the_report_shows_the_request_the_response_and_the_log() {
        let report = exchange_report(
            "expected status 200",
            "GET /health",
            500,
            "{}",
            Some("line one\n"),
        );
        assert!(report.contains("GET /health"), "{report}");
        assert!(report.contains("500 {}"), "{report}");
        assert!(report.contains("server log:\nline one"), "{report}");
        let without = exchange_report("x", "GET /", 200, "", None);
        assert!(!without.contains("server log"), "{without}");
    }
}

/// Another connection holding the write lock of a new SQLite file, as a second replica starting
/// on the same database at the same moment does: it creates the file in rollback-journal mode,
/// takes the lock (`BEGIN IMMEDIATE`) and lets it go after `hold`. [`WriteLockHolder::released`]
/// says whether it has, so that a test can check an open waited for it without timing anything.
#[derive(Debug)]
pub struct WriteLockHolder {
    released: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriteLockHolder {
    /// Takes the lock on `path` now and lets it go after `hold`, on a thread of its own.
    ///
    /// # Panics
    ///
    /// When SQLite cannot create the file or take the lock.
    pub fn hold(path: &Path, hold: std::time::Duration) -> Self {
        let holder = rusqlite::Connection::open(path).expect("open the file to lock");
        holder
            .execute_batch("CREATE TABLE t (x); BEGIN IMMEDIATE")
            .expect("take the write lock");
        let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = released.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(hold);
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            holder.execute_batch("COMMIT").expect("let the lock go");
        });
        Self {
            released,
            thread: Some(thread),
        }
    }

    /// Whether the lock has been let go.
    pub fn released(&self) -> bool {
        self.released.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for WriteLockHolder {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
