//! Instances kept for reuse, and the count of guests still running.

use crate::state::HostState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

/// Instances whose last request ended normally, waiting for the next one.
pub(super) struct InstancePool {
    pub(super) idle: Mutex<Vec<Instance>>,
    /// Idle instances kept at most (the concurrency limit: more are never needed at once).
    pub(super) max_idle: usize,
    pub(super) requests_per_instance: u32,
    pub(super) created: AtomicU64,
    /// Requests served by an instance taken from `idle`.
    pub(super) reused: AtomicU64,
    /// Guest tasks still running: a guest may finish after its response was sent.
    pub(super) running: AtomicUsize,
}

/// Counts a guest task as running until it is dropped, however the task ends.
pub(super) struct Running(Arc<InstancePool>);

impl Running {
    pub(super) fn start(pool: &Arc<InstancePool>) -> Self {
        pool.running.fetch_add(1, Ordering::SeqCst);
        Self(pool.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) struct Instance {
    pub(super) store: Store<HostState>,
    pub(super) proxy: Proxy,
    pub(super) served: u32,
}

impl std::fmt::Debug for InstancePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePool")
            .field("requests_per_instance", &self.requests_per_instance)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl InstancePool {
    pub(super) fn take(&self) -> Option<Instance> {
        let instance = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if instance.is_some() {
            self.reused.fetch_add(1, Ordering::Relaxed);
        }
        instance
    }

    /// Keeps `instance` for another request unless it has served its share.
    pub(super) fn give_back(&self, instance: Instance) {
        if instance.served >= self.requests_per_instance {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(instance);
        }
    }
}
