//! The compiled component and its linker, shared by every host and every instance.
//!
//! Compiling the component with Cranelift is the expensive step (hundreds of milliseconds),
//! so a [`Runtime`] is built once per process and cloned cheaply; each call site then makes
//! a fresh `Store` and instantiates from the pre-linked [`InstancePre`].
//!
//! The runtime also owns the engine's epoch ticker, which request deadlines are counted in:
//! one per engine, however many servers share it, since every tick counts against every
//! store of the engine (a ticker per server made two servers cut requests at half their
//! deadline).

use crate::bindings::EnginePre;
use crate::state::HostState;
use anyhow::Context as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances once [`Runtime::start_epoch_ticker`] has run; deadlines are
/// counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(50);

/// The component built into this crate by `build.rs`.
pub static EMBEDDED_COMPONENT: &[u8] = include_bytes!(env!("ZOE_SESSION_WASM"));

/// Where `build.rs` left zoe-session's WASIp3 build (`p3/`, spin-sdk 7), which Spin >= 4.1
/// runs: a file of the build tree, not embedded, for tests, benchmarks and
/// `serve --component`.
pub const WASIP3_COMPONENT_PATH: &str = env!("ZOE_SESSION_P3_WASM");

/// How instances are allocated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Allocation {
    /// Allocate on demand: right for a handful of long-lived instances.
    #[default]
    OnDemand,
    /// Pre-reserve slots for up to this many concurrent instances: right for one instance per
    /// request, where allocation speed matters.
    Pooling { max_instances: u32 },
}

/// Whether instances count the guest's own work in Wasmtime fuel (about one unit per Wasm
/// operator executed), for `serve --count-host-calls`: a figure of the guest's work that does
/// not move with the machine's load, as timings on a shared VM do. Metering makes guest code
/// slower, so it is for measuring only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Metering {
    #[default]
    Off,
    Fuel,
}

/// How a [`Runtime`] is built; an [`Allocation`] alone means no metering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeOptions {
    pub allocation: Allocation,
    pub metering: Metering,
    /// The most linear memory one pooled instance may grow to (a `memory.grow` past it fails,
    /// and the guest's allocator with it); `None` for [`DEFAULT_MAX_MEMORY_BYTES`]. A platform
    /// limit (`serve --platform akamai`: 128 MiB) goes here.
    pub max_memory_bytes: Option<usize>,
}

/// The linear memory a pooled instance may have unless [`RuntimeOptions::max_memory_bytes`]
/// says otherwise: far more than the component uses (a few MiB).
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 64 << 20;

impl From<Allocation> for RuntimeOptions {
    fn from(allocation: Allocation) -> Self {
        Self {
            allocation,
            metering: Metering::Off,
            max_memory_bytes: None,
        }
    }
}

/// A compiled component, linked against WASI, wasi-http, `spin:sqlite` and variables.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    component: Component,
    pre: InstancePre<HostState>,
    metering: Metering,
    /// Started by the first server; stops when the last clone of the runtime is dropped.
    ticker: OnceLock<EpochTicker>,
}

/// A byte count for the pooling allocator from the environment variable `name`, which Spin
/// reads too, else `default`.
fn keep_resident(name: &str, default: usize) -> anyhow::Result<usize> {
    bytes_setting(name, std::env::var(name), default)
}

/// `value`, the lookup of the variable `name`, as a byte count; `default` when it is unset.
fn bytes_setting(
    name: &str,
    value: Result<String, std::env::VarError>,
    default: usize,
) -> anyhow::Result<usize> {
    match value {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{name} must be a number of bytes, not {text:?}")),
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("{name} must be a number of bytes")
        }
    }
}

/// Advances an engine's epoch every [`EPOCH_TICK`] until dropped. A plain thread, so a guest
/// hogging a runtime worker cannot stop the clock that interrupts it.
struct EpochTicker {
    ticking: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let ticking = Arc::new(AtomicBool::new(true));
        let flag = ticking.clone();
        std::thread::spawn(move || {
            while flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
        Self { ticking }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Not joined: the thread notices within one tick, and a drop must not block.
        self.ticking.store(false, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Compiles the embedded zoe-session component.
    ///
    /// # Errors
    ///
    /// When Wasmtime cannot compile or link the component (a build problem, not bad input).
    pub fn new(options: impl Into<RuntimeOptions>) -> anyhow::Result<Self> {
        Self::from_bytes(EMBEDDED_COMPONENT, options)
    }

    /// Compiles a component from a file, e.g. a composed app.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, or Wasmtime cannot compile or link it.
    pub fn from_file(path: &Path, options: impl Into<RuntimeOptions>) -> anyhow::Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_bytes(&bytes, options)
            .with_context(|| format!("cannot load the component {}", path.display()))
    }

    /// Compiles a component from its bytes.
    ///
    /// # Errors
    ///
    /// When Wasmtime cannot compile or link the component.
    pub fn from_bytes(bytes: &[u8], options: impl Into<RuntimeOptions>) -> anyhow::Result<Self> {
        let RuntimeOptions {
            allocation,
            metering,
            max_memory_bytes,
        } = options.into();
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(metering == Metering::Fuel);
        if let Allocation::Pooling { max_instances } = allocation {
            let mut pooling = PoolingAllocationConfig::default();
            pooling.total_component_instances(max_instances);
            pooling.total_core_instances(max_instances * 4);
            pooling.total_memories(max_instances * 4);
            pooling.total_tables(max_instances * 4);
            pooling.max_memory_size(max_memory_bytes.unwrap_or(DEFAULT_MAX_MEMORY_BYTES));
            // As spin-core sets them, from the same variables with the same defaults: a slot
            // given back keeps up to this much of its linear memory and table resident, reset
            // in place instead of unmapped, so the next instance in it does not fault those
            // pages in again.
            pooling.linear_memory_keep_resident(keep_resident(
                "SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT",
                2 << 20,
            )?);
            pooling.table_keep_resident(keep_resident(
                "SPIN_WASMTIME_TABLE_KEEP_RESIDENT",
                512 << 10,
            )?);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        }
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        let component = Component::new(&engine, bytes)
            .map_err(anyhow::Error::from)
            .context("compiling the component")?;
        let mut linker = Linker::<HostState>::new(&engine);
        link(&mut linker).map_err(anyhow::Error::from)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("the component imports something this host does not provide")?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                component,
                pre,
                metering,
                ticker: OnceLock::new(),
            }),
        })
    }

    /// Whether this runtime's stores count fuel ([`Metering::Fuel`]).
    pub fn meters_fuel(&self) -> bool {
        self.inner.metering == Metering::Fuel
    }

    /// The Wasmtime engine (for epoch ticks and stores).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Starts advancing the engine's epoch every [`EPOCH_TICK`], once: later calls, from any
    /// clone, do nothing. Epoch deadlines (`Store::set_epoch_deadline`) count these ticks. The
    /// ticker stops when the last clone of this runtime is dropped.
    pub fn start_epoch_ticker(&self) {
        self.inner
            .ticker
            .get_or_init(|| EpochTicker::start(self.inner.engine.clone()));
    }

    /// The compiled component.
    pub fn component(&self) -> &Component {
        &self.inner.component
    }

    /// The pre-linked component, ready to instantiate.
    pub fn instance_pre(&self) -> &InstancePre<HostState> {
        &self.inner.pre
    }

    /// The pre-linked component, typed for the `sessions` export.
    ///
    /// # Errors
    ///
    /// When the component does not export `zoe:session/sessions`.
    pub fn engine_pre(&self) -> anyhow::Result<EnginePre<HostState>> {
        EnginePre::new(self.inner.pre.clone())
            .map_err(anyhow::Error::from)
            .context("the component does not export zoe:session/sessions@0.2.0")
    }
}

fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    crate::bindings::spin::sqlite::sqlite::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        linker,
        |state| state,
    )?;
    crate::bindings::fermyon::spin::variables::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        linker,
        |state| state,
    )?;
    crate::bindings::spin::postgres::postgres::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        linker,
        |state| state,
    )?;
    crate::bindings::fermyon::spin::key_value::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        linker,
        |state| state,
    )?;
    link_p3(linker)
}

/// The WASIp3 interfaces, beside the WASIp2 ones (their names differ by version, so one linker
/// serves a WASIp2 component, a WASIp3 one, and a WASIp3 one that also imports WASIp2 WASI, as
/// spin-sdk 7 guests do): WASI 0.3, `wasi:http@0.3.0`, and the Spin interfaces spin-sdk 7 imports.
/// The WASIp2-era Spin interfaces [`link`] adds stay there for WASIp3 components too, as Spin
/// links every version of its interfaces for every component: the WASIp3 build and the session
/// middleware import the synchronous `fermyon:spin/key-value@2.0.0` for `key_value_store`.
fn link_p3(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use crate::bindings::p3::spin;
    use wasmtime::component::HasSelf;
    wasmtime_wasi::p3::add_to_linker(linker)?;
    wasmtime_wasi_http::p3::add_to_linker(linker)?;
    spin::sqlite::sqlite::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    spin::postgres::postgres::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    spin::variables::variables::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    spin::key_value::key_value::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn one_ticker_per_runtime_and_it_stops_with_the_last_clone() {
        let runtime = Runtime::new(Allocation::OnDemand).unwrap();
        let clone = runtime.clone();
        runtime.start_epoch_ticker();
        clone.start_epoch_ticker();
        let ticker = runtime.inner.ticker.get().expect("started");
        let flag = Arc::downgrade(&ticker.ticking);
        // This runtime's flag and the ticker thread's copy: a second start made no thread.
        assert_eq!(flag.strong_count(), 2);
        drop(runtime);
        assert_eq!(flag.strong_count(), 2, "a clone still holds the runtime");
        drop(clone);
        let deadline = Instant::now() + Duration::from_secs(10);
        while flag.upgrade().is_some() {
            assert!(Instant::now() < deadline, "the ticker thread did not stop");
            std::thread::sleep(EPOCH_TICK);
        }
    }

    #[test]
    fn keep_resident_settings_default_parse_and_refuse_non_numbers() {
        use std::env::VarError;
        assert_eq!(bytes_setting("X", Err(VarError::NotPresent), 7).unwrap(), 7);
        assert_eq!(bytes_setting("X", Ok(" 4096 ".into()), 7).unwrap(), 4096);
        assert_eq!(bytes_setting("X", Ok("0".into()), 7).unwrap(), 0);
        for bad in ["", "2MiB", "-1"] {
            let err = bytes_setting("SPIN_X", Ok(bad.into()), 7).unwrap_err();
            assert!(format!("{err:#}").contains("SPIN_X must be a number of bytes"));
        }
    }
}
