//! The wall clock the guest sees. The system clock in production; a clock that tests set and
//! advance, so expiry is tested without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmtime_wasi::HostWallClock;

/// A wall clock: the system's, or a manual one shared by every clone.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The operating system's clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock stopped at `unix_ms` milliseconds since the epoch; it moves only by
    /// [`Clock::advance`] and [`Clock::set`].
    pub fn manual(unix_ms: u64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicU64::new(unix_ms))),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Some(ms) = &self.manual {
            let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
            ms.fetch_add(by, Ordering::SeqCst);
        }
    }

    /// Sets a manual clock (no effect on the system clock).
    pub fn set(&self, unix_ms: u64) {
        if let Some(ms) = &self.manual {
            ms.store(unix_ms, Ordering::SeqCst);
        }
    }

    /// The current time.
    pub fn now(&self) -> Duration {
        match &self.manual {
            Some(ms) => Duration::from_millis(ms.load(Ordering::SeqCst)),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }

    /// The current time in milliseconds since the epoch.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.now().as_millis()).unwrap_or(u64::MAX)
    }
}

impl HostWallClock for Clock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Clock::now(self)
    }
}
