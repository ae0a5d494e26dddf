//! [`Runtime`] (one per process) and [`EnvModule`] (a compiled environment, shareable).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use wasmgym_abi::{ABI_VERSION, EnvSpec, exports};
use wasmtime::{Config, Engine, ExternType, InstancePre, Linker, Module, ValType};

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::instance::{Env, Exports};
use crate::limits::{Limits, LoadLimits};
use crate::rewrite::{self, Layout};
use crate::sandbox::{HostState, Sandbox};
use crate::snapshot::Snapshot;
use crate::{instrument, wasi};

/// `what` (such as `"modules"`, for [`RuntimeConfig::compile_cache`]) in wasmgym's cache folder:
/// under `$WASMGYM_CACHE_DIR` (set but empty: no cache, `None`), else `$XDG_CACHE_HOME/wasmgym`, else
/// `~/.cache/wasmgym`; `None` when none of them is set.
pub fn cache_dir(what: &str) -> Option<PathBuf> {
    let root = match std::env::var_os("WASMGYM_CACHE_DIR") {
        Some(dir) if dir.is_empty() => return None,
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| Path::new(&h).join(".cache")))?
            .join("wasmgym"),
    };
    Some(root.join(what))
}

/// Engine-wide settings. Plain data.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Maximum wasm stack of a guest, in bytes. → [`Error::StackOverflow`]. It is taken from the
    /// stack of the thread that calls into the guest, which must be larger (by a few MiB for the
    /// host): the default 512 KiB fits any thread. Deep recursion (a depth-first search over 10⁵
    /// nodes) needs tens of MiB; run such guests on threads of
    /// [`ProgramModule::thread_stack_bytes`](crate::ProgramModule::thread_stack_bytes), as the
    /// grader does.
    pub max_wasm_stack: usize,
    /// How often the deadline clock ticks; deadlines are rounded up to whole ticks.
    pub epoch_tick: Duration,
    /// Warm instances each module keeps from dropped `Env`s for [`Env::fork`] to reuse. Each holds
    /// its memory resident; 0 turns reuse off.
    pub instance_pool: usize,
    /// Instances are created in this many slots reserved when the runtime starts (wasmtime's
    /// pooling allocator: about 4 GiB of address space per memory, two memories per instance),
    /// which instantiates in a few microseconds instead of tens, because a slot's memory is
    /// reused instead of mapped and unmapped, and up to [`RuntimeConfig::slot_keep_resident`]
    /// bytes of it stay resident. Past this many live instances, and for a module a slot does not
    /// fit (more than one memory of its own, more than one table, a table over 100,000 elements,
    /// compiled code over 16 MiB), for limits that allow a larger table, and on a runtime with
    /// `wasm_exceptions`, instances are created on demand as before. 0: always on demand.
    pub instance_slots: u32,
    /// Bytes of written memory a released slot keeps resident (zeroed) for the next instance, so
    /// that instance's first writes do not fault; the rest is given back to the system. Not
    /// counted in [`Runtime::memory_in_use`]: at most `instance_slots` × 2 × this much.
    pub slot_keep_resident: usize,
    /// Instrument stores so restores and snapshots touch only the pages written since the last
    /// one (restore cost flat in memory size). Costs about 10–25% per step and some fuel per
    /// store; without it, restores and snapshots compare every page.
    pub track_dirty_pages: bool,
    /// Total memory the runtime's instances and copy-on-write images may hold, in bytes; past it,
    /// creating an instance or fork, growing memory or writing new pages fails with
    /// [`Error::MemoryCap`] instead of the machine running out. `None`: no cap (still counted,
    /// see [`Runtime::memory_in_use`]).
    pub memory_cap: Option<u64>,
    /// A fork into a new instance maps the parent's memory copy-on-write (Linux) when memory 0 is
    /// at least this large (default 256 KiB), so the fork holds only the pages it writes and is
    /// created with one `mmap`, in a pooled slot while one is free (1 MiB: 14 µs, against 26 µs
    /// on demand and 220 µs copying, mostly page faults); smaller memories, and states within 64
    /// pages of the module's initial memory, are copied into a slot, which costs less there. The
    /// memfd mapped is the parent's last one where the state differs from it on at most an eighth
    /// of its pages; a new one is written otherwise, unless the last new one served no other fork:
    /// then forks copy (writing a file per fork costs more) and try a new file again after eight
    /// (then 16, 32, … 256 while new files keep serving no other fork). `usize::MAX`: never.
    pub cow_fork_min_bytes: usize,
    /// Static bounds every module must be within before it is compiled (see [`LoadLimits`]);
    /// [`Runtime::with_load_limits`] gives a runtime with other bounds for trusted modules.
    pub load_limits: LoadLimits,
    /// A directory where compiled modules are kept (`<key>.cwasm` and what the rewrite learned,
    /// `<key>.layout`, keyed by the module's bytes, the load limits, this engine's settings and
    /// wasmtime's version), so loading the same module again deserialises it instead of rewriting,
    /// instrumenting and compiling it (a language interpreter: minutes). `None`: always compile.
    /// The directory is created (mode 0700) and must be writable by this user only. Each entry
    /// carries the BLAKE3 hash of its code, checked before the code is used: a corrupted or
    /// truncated entry is compiled again and rewritten, never run. Safe under concurrent
    /// processes (entries are written to temporary files and renamed).
    pub compile_cache: Option<PathBuf>,
    /// The compile cache's size bound: after storing an entry, the least recently used entries
    /// are removed until the directory holds at most this many bytes (default 2 GiB, or
    /// `$WASMGYM_CACHE_MAX_MIB`).
    pub compile_cache_max_bytes: u64,
    /// Accept the exception-handling proposal (`try_table`, `throw`, `throw_ref`, `exnref`), which
    /// interpreters compiled with setjmp/longjmp support use (CPython 3.15 for WASI). Off by
    /// default: exception objects live in a heap outside linear memory, which
    /// [`Limits::memory_bytes`] does not bound, so only trusted modules should get it (the
    /// interpreter, not the code it runs). The GC and typed-function-reference proposals stay off
    /// either way (snapshots hold no GC heap).
    pub wasm_exceptions: bool,
    /// A secret that authenticates snapshot bytes. With it, [`EnvModule::snapshot_to_bytes`] signs
    /// the bytes with a keyed BLAKE3 hash (format 4), [`EnvModule::snapshot_from_bytes`] accepts
    /// only bytes signed with this key, and instances refuse snapshots decoded any other way
    /// ([`Snapshot::from_bytes`]): a snapshot from an untrusted peer cannot claim a state that no
    /// instance of this key's runtimes reached. Snapshots taken in this process are trusted.
    /// `None` (default): bytes carry a plain checksum, which finds corruption, not forgery.
    pub snapshot_key: Option<SnapshotKey>,
}

/// A 32-byte secret for [`RuntimeConfig::snapshot_key`] (its `Debug` does not show it).
#[derive(Clone, PartialEq, Eq)]
pub struct SnapshotKey(pub [u8; 32]);

impl std::fmt::Debug for SnapshotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotKey(..)")
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_wasm_stack: 512 << 10,
            epoch_tick: Duration::from_millis(1),
            instance_pool: 32,
            instance_slots: 512,
            slot_keep_resident: 512 << 10,
            track_dirty_pages: true,
            memory_cap: None,
            cow_fork_min_bytes: 256 << 10,
            load_limits: LoadLimits::default(),
            compile_cache: None,
            compile_cache_max_bytes: std::env::var("WASMGYM_CACHE_MAX_MIB")
                .ok()
                .and_then(|m| m.parse::<u64>().ok())
                .map_or(2 << 30, |m| m << 20),
            wasm_exceptions: false,
            snapshot_key: None,
        }
    }
}

/// The compiler and its settings: create one per process and share it (cloning is cheap).
///
/// Every guest it runs has fuel metering, deadline interruption and NaN canonicalisation on, so
/// floating-point results are the same on every machine.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    /// The same settings with pooled instance slots, when `instance_slots` > 0 and the address
    /// space for them could be reserved.
    slots: Option<Engine>,
    /// The thread that advances both engines' epochs (deadlines).
    ticker: Arc<Ticker>,
    config: Arc<RuntimeConfig>,
    budget: Arc<Budget>,
}

impl Runtime {
    /// A runtime with the default [`RuntimeConfig`].
    pub fn new() -> Result<Runtime> {
        Runtime::with_config(RuntimeConfig::default())
    }

    /// A runtime with `config`.
    pub fn with_config(config: RuntimeConfig) -> Result<Runtime> {
        let mut c = Config::new();
        c.consume_fuel(true)
            .epoch_interruption(true)
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            .wasm_exceptions(config.wasm_exceptions)
            .wasm_gc(false)
            .wasm_function_references(false)
            .max_wasm_stack(config.max_wasm_stack)
            // Never used (no async), but wasmtime requires it to be at least max_wasm_stack.
            .async_stack_size(config.max_wasm_stack + (2 << 20));
        let engine = Engine::new(&c).map_err(|e| Error::Runtime { message: format!("{e:#}") })?;
        let slots = (config.instance_slots > 0).then(|| slot_engine(c, &config)).flatten();
        let ticker = Ticker::start(std::iter::once(&engine).chain(&slots), config.epoch_tick);
        let budget = Budget::new(config.memory_cap);
        Ok(Runtime { engine, slots, ticker, config: Arc::new(config), budget })
    }

    /// This runtime (same engine, memory account and instances) loading modules under `limits`
    /// instead: for modules the host trusts, such as a language interpreter
    /// ([`LoadLimits::trusted`]).
    pub fn with_load_limits(&self, limits: LoadLimits) -> Runtime {
        let config = RuntimeConfig { load_limits: limits, ..(*self.config).clone() };
        Runtime {
            engine: self.engine.clone(),
            slots: self.slots.clone(),
            ticker: self.ticker.clone(),
            config: Arc::new(config),
            budget: self.budget.clone(),
        }
    }

    /// The engine every module of this runtime is compiled by.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn ticker(&self) -> &Arc<Ticker> {
        &self.ticker
    }

    /// `module` (compiled by [`Runtime::engine`]) again for the pooled slots, linked by `link`, if
    /// this runtime has them and the module fits a slot; `None` otherwise (instances of it are
    /// then created on demand).
    pub(crate) fn slotted(
        &self,
        module: &Module,
        link: impl Fn(&mut Linker<HostState>, &Module) -> Result<()>,
    ) -> Option<InstancePre<HostState>> {
        let engine = self.slots.as_ref()?;
        let bytes = module.serialize().ok()?;
        if bytes.len() > MAX_SLOTTED_CODE {
            return None;
        }
        // SAFETY: the bytes are what this process's compiler just produced for an engine with the
        // same compilation settings (only the instance allocator differs), not outside input.
        // A module over a slot's bounds is refused here.
        let module = unsafe { Module::deserialize(engine, &bytes) }.ok()?;
        let mut linker = Linker::new(engine);
        link(&mut linker, &module).ok()?;
        linker.instantiate_pre(&module).ok()
    }

    /// The settings this runtime was made with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Bytes the runtime's live instances (including warm ones kept for reuse) and copy-on-write
    /// images hold, as counted against [`RuntimeConfig::memory_cap`].
    pub fn memory_in_use(&self) -> u64 {
        self.budget.used()
    }

    pub(crate) fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Compiles an environment from a binary module or WAT text, checking its ABI version, exports
    /// and imports, and reading its spec.
    pub fn load(&self, wasm: &[u8]) -> Result<EnvModule> {
        let binary = to_binary(wasm)?;
        let options = rewrite::Options { limits: self.config.load_limits.clone(), ..Default::default() };
        let Prepared { module, layout, hash } = self.prepare(&binary, &options, &|layout| {
            if layout.abi_version.is_none() {
                // Say what the module is when it is another kind of guest, before compiling anything.
                let exports = &layout.exports;
                if exports.iter().any(|e| e == wasmgym_abi::checker::CHECK) {
                    return Err(Error::WrongKind {
                        message: "it is a checker (it exports `wasmgym_check`), not an environment: pass it to \
                                  `wasmgym grade --checker`"
                            .into(),
                    });
                }
                if exports.iter().any(|e| e == "_start") {
                    return Err(Error::WrongKind {
                        message: "it is a program (it exports `_start`), not an environment: grade it with \
                                  `wasmgym grade`, or build an environment with `export_env!`"
                            .into(),
                    });
                }
            }
            if layout.abi_version != Some(ABI_VERSION) {
                return Err(Error::AbiMismatch {
                    found: layout.abi_version,
                    supported: ABI_VERSION,
                    what: "environment",
                });
            }
            Ok(())
        })?;
        check_exports(&module, &layout)?;
        let mut linker = Linker::new(&self.engine);
        wasi::link(&mut linker, &module)?;
        let pre = linker.instantiate_pre(&module).map_err(|e| Error::InvalidModule { message: format!("{e:#}") })?;
        let mut inner = ModuleInner {
            pre,
            slotted: self.slotted(&module, wasi::link),
            initial_images: Default::default(),
            slot_memory: Default::default(),
            types: Default::default(),
            ticker: self.ticker.clone(),
            layout,
            hash,
            spec: None,
            size: binary.len(),
            budget: self.budget.clone(),
            cow_fork_min_bytes: self.config.cow_fork_min_bytes,
            snapshot_key: self.config.snapshot_key.clone(),
            max_wasm_stack: self.config.max_wasm_stack,
            env_exports_checked: Default::default(),
        };
        // Read the spec from a probe instance.
        let probe_module = EnvModule { inner: Arc::new(inner.clone()), pool: Arc::new(Pool::new(0)) };
        let probe = Env::new(&probe_module, Limits::default())?.read_spec()?;
        check_spec(&probe)?;
        inner.spec = Some(probe);
        if let Some(images) = probe_module.inner.initial_images.get() {
            inner.initial_images = images.clone().into();
        }
        Ok(EnvModule { inner: Arc::new(inner), pool: Arc::new(Pool::new(self.config.instance_pool)) })
    }

    /// [`Runtime::load`] from a file (`.wasm` or `.wat`).
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<EnvModule> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
        self.load(&bytes)
    }
}

impl Runtime {
    /// Rewrites `binary` with `options` (exports of state, load limits), runs `check` on what the
    /// rewrite learned (refusals that need no compiler), instruments the result for dirty-page
    /// tracking and compiles it. With a compile cache, a module seen before is deserialised
    /// instead, with its layout, and only `check` runs again.
    pub(crate) fn prepare(
        &self,
        binary: &[u8],
        options: &rewrite::Options,
        check: &dyn Fn(&Layout) -> Result<()>,
    ) -> Result<Prepared> {
        let hash = module_hash(binary);
        let cached = self.config.compile_cache.as_ref().map(|dir| {
            let key = hex(&self.cache_key(&hash, options));
            (dir, dir.join(format!("{key}.cwasm")), dir.join(format!("{key}.layout")))
        });
        if let Some((_, code, layout)) = &cached
            && let Some((module, layout)) = read_cached(&self.engine, code, layout)
        {
            check(&layout)?;
            return Ok(Prepared { module, layout, hash });
        }
        let (rewritten, layout) = rewrite::rewrite_with(binary, options)?;
        check(&layout)?;
        // Stores mark a dirty-page map (instrument.rs). If the instrumented module does not
        // compile, compile the module as given, so the error speaks of the author's code.
        let instrumented =
            if self.config.track_dirty_pages { instrument::dirty_map(&rewritten)?.0 } else { rewritten.clone() };
        let module = Module::new(&self.engine, &instrumented)
            .or_else(|_| Module::new(&self.engine, &rewritten))
            .map_err(|e| Error::InvalidModule { message: format!("{e:#}") })?;
        if let Some((dir, code, layout_path)) = &cached {
            // A cache that cannot be written is no reason to fail the load.
            if store_compiled(dir, code, &module, layout_path, &layout).is_ok() {
                prune_cache(dir, self.config.compile_cache_max_bytes);
            }
        }
        Ok(Prepared { module, layout, hash })
    }

    fn cache_key(&self, module_hash: &[u8; 32], options: &rewrite::Options) -> [u8; 32] {
        use std::hash::{Hash, Hasher};
        let mut settings = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut settings);
        let mut key = blake3::Hasher::new();
        key.update(b"wasmgym compile cache 3\0");
        // What a hit skips, so that a change to either (or to `Layout`) is a miss, not stale code.
        key.update(include_str!("rewrite.rs").as_bytes());
        key.update(include_str!("instrument.rs").as_bytes());
        key.update(&settings.finish().to_le_bytes());
        key.update(format!("{options:?} {}\0", self.config.track_dirty_pages).as_bytes());
        key.update(module_hash);
        *key.finalize().as_bytes()
    }
}

/// A module rewritten, checked and compiled ([`Runtime::prepare`]).
pub(crate) struct Prepared {
    pub module: Module,
    pub layout: Layout,
    /// BLAKE3 hash of the module's bytes as given.
    pub hash: [u8; 32],
}

/// BLAKE3 hash of `binary`, on all cores for large modules (an interpreter: 100 MB).
pub(crate) fn module_hash(binary: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    if binary.len() >= 1 << 20 {
        hasher.update_rayon(binary);
    } else {
        hasher.update(binary);
    }
    *hasher.finalize().as_bytes()
}

/// What a cache entry's `.layout` file holds: the layout, and the hash and length of the code
/// beside it, checked before the code is deserialised.
#[derive(serde::Serialize, serde::Deserialize)]
struct CacheEntry {
    layout: Layout,
    code_blake3: String,
    code_bytes: u64,
}

/// The module and layout kept under `code` and `layout`, if both are there, whole and unchanged
/// (the code's BLAKE3 hash is the one recorded when it was written). A hit refreshes the entry's
/// time, which pruning goes by.
fn read_cached(engine: &Engine, code: &Path, layout: &Path) -> Option<(Module, Layout)> {
    let entry: CacheEntry = serde_json::from_slice(&std::fs::read(layout).ok()?).ok()?;
    let bytes = std::fs::read(code).ok()?;
    if bytes.len() as u64 != entry.code_bytes || hex(&module_hash(&bytes)) != entry.code_blake3 {
        return None; // corrupted or half-replaced: compile again, which rewrites the entry
    }
    // SAFETY: the bytes are exactly what `Module::serialize` of this engine's settings wrote (the
    // key covers the settings and wasmtime's version, deserialize checks both again, and the
    // hash above rules out any change since), in a directory only this user may write.
    let module = unsafe { Module::deserialize(engine, &bytes) }.ok()?;
    if let Ok(file) = std::fs::File::options().append(true).open(layout) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
    Some((module, entry.layout))
}

/// Writes `module` serialised to `code` and its entry (layout, code hash) to `layout_path`, in
/// `dir` (created, mode 0700 on Unix), each through a temporary file, so a reader never sees part
/// of one; the entry last, as a reader needs both.
fn store_compiled(
    dir: &Path,
    code: &Path,
    module: &Module,
    layout_path: &Path,
    layout: &Layout,
) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let write = |path: &Path, bytes: &[u8]| {
        let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(&temporary, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
    };
    let bytes = module.serialize().map_err(std::io::Error::other)?;
    let entry =
        CacheEntry { layout: layout.clone(), code_blake3: hex(&module_hash(&bytes)), code_bytes: bytes.len() as u64 };
    write(code, &bytes)?;
    write(layout_path, &serde_json::to_vec(&entry)?)
}

/// Removes the least recently used entries of the cache in `dir` (by their `.layout` file's
/// time, which a hit refreshes) until it holds at most `max_bytes`. Entries another process
/// removes meanwhile are skipped; one being read survives on Linux (its file stays open).
fn prune_cache(dir: &Path, max_bytes: u64) {
    let Ok(files) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
    let mut total = 0;
    for file in files.flatten() {
        let path = file.path();
        let Ok(meta) = file.metadata() else { continue };
        total += meta.len();
        if path.extension().is_some_and(|e| e == "layout") {
            let code = path.with_extension("cwasm");
            let size = meta.len() + std::fs::metadata(&code).map_or(0, |m| m.len());
            entries.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), size, path));
        }
    }
    entries.sort();
    for (_, size, layout) in entries {
        if total <= max_bytes {
            break;
        }
        let _ = std::fs::remove_file(&layout);
        let _ = std::fs::remove_file(layout.with_extension("cwasm"));
        total = total.saturating_sub(size);
    }
}

/// A pooled slot's table holds this many elements; instances whose `Limits::table_elements` allow
/// more are created on demand (a slot would refuse growth the limits allow).
pub(crate) const SLOT_TABLE_ELEMENTS: usize = 100_000;

/// The largest memory a slot holds (its reservation is at least this large).
pub(crate) const SLOT_MEMORY_BYTES: usize = 1 << 32;

/// Compiled code up to this size gets pooled slots (a second copy of the code is loaded for them).
const MAX_SLOTTED_CODE: usize = 16 << 20;

/// An engine with `config`'s compilation settings whose instances come from `instance_slots`
/// pooled slots; `None` if the address space for them cannot be reserved.
fn slot_engine(mut c: Config, config: &RuntimeConfig) -> Option<Engine> {
    if config.wasm_exceptions {
        // Exception objects live in a GC heap, which slots do not provide.
        return None;
    }
    let slots = config.instance_slots;
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_core_instances(slots)
        // Memory 0 and the dirty-page map.
        .total_memories(slots.saturating_mul(2))
        .max_memories_per_module(2)
        .total_tables(slots)
        .max_tables_per_module(1)
        .table_elements(SLOT_TABLE_ELEMENTS)
        .total_component_instances(0)
        .total_gc_heaps(0)
        .max_memory_size(SLOT_MEMORY_BYTES)
        .linear_memory_keep_resident(config.slot_keep_resident)
        .table_keep_resident(64 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&c).ok()
}

/// The thread that advances engines' epochs every `tick`, so deadlines fire; it ends when the
/// engines are dropped. A process forked from this one (Python's `os.fork`, `multiprocessing`'s
/// fork start method) inherits the engines but not the thread: the first call armed in the child
/// starts it again there ([`Ticker::ensure_running`]).
pub(crate) struct Ticker {
    engines: Vec<wasmtime::EngineWeak>,
    tick: Duration,
    /// The [`FORK_GENERATION`] the thread was started in.
    generation: AtomicU64,
}

/// Bumped in the child of every `fork` (a `pthread_atfork` handler: one atomic add, which is
/// async-signal-safe).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

impl Ticker {
    fn start<'a>(engines: impl Iterator<Item = &'a Engine>, tick: Duration) -> Arc<Ticker> {
        static AT_FORK: std::sync::Once = std::sync::Once::new();
        // SAFETY: registers a handler that only adds to an atomic, for the child side of `fork`.
        AT_FORK.call_once(|| unsafe {
            libc::pthread_atfork(None, None, Some(forked_child));
        });
        let ticker = Arc::new(Ticker {
            engines: engines.map(Engine::weak).collect(),
            tick,
            generation: AtomicU64::new(FORK_GENERATION.load(Ordering::Relaxed)),
        });
        ticker.spawn();
        ticker
    }

    fn spawn(&self) {
        let (engines, tick) = (self.engines.clone(), self.tick);
        std::thread::Builder::new()
            .name("wasmgym-epoch".into())
            .spawn(move || {
                loop {
                    let mut live = false;
                    for engine in engines.iter().filter_map(|e| e.upgrade()) {
                        engine.increment_epoch();
                        live = true;
                    }
                    if !live {
                        return;
                    }
                    std::thread::sleep(tick);
                }
            })
            .expect("spawning the epoch thread");
    }

    /// Starts the thread again in a process forked since it was started (one atomic load
    /// otherwise), so a deadline armed there fires.
    pub fn ensure_running(&self) {
        let now = FORK_GENERATION.load(Ordering::Relaxed);
        let started = self.generation.load(Ordering::Relaxed);
        if started != now
            && self.generation.compare_exchange(started, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.spawn();
        }
    }

    /// Epoch ticks for a deadline: rounded up, plus one because the current tick may be nearly over.
    pub fn ticks(&self, deadline: Option<Duration>) -> u64 {
        match deadline {
            Some(d) => (d.as_nanos().div_ceil(self.tick.as_nanos().max(1)) as u64).saturating_add(1),
            None => u64::MAX / 2,
        }
    }
}

pub(crate) fn to_binary(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if bytes.starts_with(b"\0asm") {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if text.trim_start().starts_with('(') || text.trim_start().starts_with(";;") => {
            wat::parse_str(text).map(std::borrow::Cow::Owned).map_err(|e| Error::InvalidModule {
                message: format!("WAT does not parse: {}", clip_lines(&e.to_string())),
            })
        }
        _ => Err(Error::InvalidModule {
            message: format!(
                "not WebAssembly: the file starts with the bytes {} ({:?}), not the \\0asm magic (00 61 73 6d), and is \
                 not WAT text",
                bytes[..bytes.len().min(8)].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "),
                String::from_utf8_lossy(&bytes[..bytes.len().min(8)]),
            ),
        }),
    }
}

/// `text` with each line cut to 160 characters (a parser quotes the offending source line, which
/// in a hostile or minified file can be megabytes long).
fn clip_lines(text: &str) -> String {
    const WIDTH: usize = 160;
    let clip = |line: &str| match line.char_indices().nth(WIDTH) {
        Some((at, _)) => format!("{}… ({} more bytes)", &line[..at], line.len() - at),
        None => line.to_owned(),
    };
    text.lines().take(20).map(clip).collect::<Vec<_>>().join("\n")
}

fn check_exports(module: &Module, layout: &Layout) -> Result<()> {
    use ValType::{I32, I64};
    let expected: [(&str, &[ValType], &[ValType]); 6] = [
        (exports::ALLOC, &[I32], &[I32]),
        (exports::SPEC, &[], &[I64]),
        (exports::RESET, &[I32, I32], &[I64]),
        (exports::STEP, &[I32, I32], &[I64]),
        (exports::LEGAL_ACTIONS, &[], &[I64]),
        (exports::RENDER, &[], &[I64]),
    ];
    let optional: [(&str, &[ValType], &[ValType]); 7] = [
        (exports::ROLLOUT, &[I64, I32, I32, I64], &[I64]),
        (exports::STEP_ACTIONS, &[I32, I32], &[I64]),
        (exports::PLAYOUT, &[I32, I32], &[I64]),
        (exports::TEXT_ACTIONS, &[], &[I64]),
        (exports::OBSERVE, &[], &[I64]),
        (exports::STATE_KEY, &[], &[I64]),
        (exports::INPUT_BUFFER, &[], &[I64]),
    ];
    let present = optional.into_iter().filter(|(name, ..)| module.get_export(name).is_some());
    for (name, params, results) in expected.into_iter().chain(present) {
        let signature = || format!("a function ({params:?}) -> {results:?}");
        let Some(ExternType::Func(ty)) = module.get_export(name) else {
            return Err(Error::MissingExport { name: name.into(), expected: signature() });
        };
        let matches = |a: &mut dyn ExactSizeIterator<Item = ValType>, b: &[ValType]| {
            a.len() == b.len() && a.zip(b).all(|(x, y)| x.matches(y))
        };
        if !matches(&mut ty.params(), params) || !matches(&mut ty.results(), results) {
            return Err(Error::MissingExport { name: name.into(), expected: format!("{}, found {ty}", signature()) });
        }
    }
    layout.require_memory()
}

fn check_spec(spec: &EnvSpec) -> Result<()> {
    spec.validate().map_err(|m| Error::Protocol { message: format!("the environment's spec is invalid: {m}") })
}

/// A compiled environment: validated, rewritten and linked once, then instantiated cheaply as many
/// times as needed. Cloning is cheap and clones share the compiled code.
#[derive(Clone)]
pub struct EnvModule {
    pub(crate) inner: Arc<ModuleInner>,
    pool: Arc<Pool>,
}

/// Warm sandboxes left by dropped `Env`s, for forks to reuse.
struct Pool {
    capacity: usize,
    sandboxes: std::sync::Mutex<Vec<(Sandbox, Exports)>>,
}

impl Pool {
    fn new(capacity: usize) -> Pool {
        Pool { capacity, sandboxes: Default::default() }
    }
}

#[derive(Clone)]
pub(crate) struct ModuleInner {
    pub pre: InstancePre<HostState>,
    /// The module for the runtime's pooled slots, if it has them and the module fits one.
    pub slotted: Option<InstancePre<HostState>>,
    /// Images of the memories of a fresh instance (before `_initialize`), taken once.
    pub initial_images: std::sync::OnceLock<Vec<crate::pages::MemoryImage>>,
    /// What memory 0 of a fresh instance in a slot is mapped from (probed on the first fork that
    /// would map a memfd into a slot; `None`: forks map only into instances created on demand).
    pub slot_memory: std::sync::OnceLock<Option<crate::sandbox::SlotMemory>>,
    /// The types of its mutable globals and the maxima of its memories (64 KiB pages), read from
    /// the first instance: what a snapshot is checked against before every restore.
    pub types: std::sync::OnceLock<crate::sandbox::ModuleTypes>,
    pub ticker: Arc<Ticker>,
    pub layout: Layout,
    pub hash: [u8; 32],
    pub spec: Option<EnvSpec>,
    pub size: usize,
    /// The runtime's memory account.
    pub budget: Arc<Budget>,
    /// See [`RuntimeConfig::cow_fork_min_bytes`].
    pub cow_fork_min_bytes: usize,
    /// See [`RuntimeConfig::snapshot_key`].
    pub snapshot_key: Option<SnapshotKey>,
    /// See [`RuntimeConfig::max_wasm_stack`].
    pub max_wasm_stack: usize,
    /// An instance's environment exports have passed their type check (see `instance.rs`).
    pub env_exports_checked: Arc<std::sync::atomic::AtomicBool>,
}

/// What `wasmgym inspect` reports about a module.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleInfo {
    /// The environment's spec.
    pub spec: EnvSpec,
    /// The ABI version stamped in the module.
    pub abi_version: u32,
    /// BLAKE3 hash of the module's bytes, in hex; snapshots record it.
    pub hash: String,
    /// Size of the module in bytes.
    pub size_bytes: usize,
    /// The module's own exports.
    pub exports: Vec<String>,
    /// Imported functions as `module::name`.
    pub imports: Vec<String>,
    /// Initial size of each linear memory, in bytes.
    pub initial_memory_bytes: Vec<u64>,
    /// Mutable globals, exported or not, that snapshots hold.
    pub mutable_globals: usize,
}

impl EnvModule {
    /// A warm sandbox (with its export handles) from the pool, if any.
    pub(crate) fn take_pooled(&self) -> Option<(Sandbox, Exports)> {
        self.pool.sandboxes.lock().ok()?.pop()
    }

    /// Drops the warm sandboxes, giving their memory back to the budget.
    pub(crate) fn drain_pool(&self) -> bool {
        let drained = self.pool.sandboxes.lock().map(|mut pool| std::mem::take(&mut *pool)).unwrap_or_default();
        !drained.is_empty()
    }

    /// Runs `f`, and once more after dropping the warm sandboxes if it failed for want of memory.
    pub(crate) fn with_room<T>(&self, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        match f() {
            Err(Error::MemoryCap { .. }) if self.drain_pool() => f(),
            other => other,
        }
    }

    /// Keeps `sandbox` for a later fork if the pool has room and it is usable; drops it otherwise.
    pub(crate) fn give_pooled(&self, sandbox: Sandbox, exports: Exports) {
        if sandbox.is_poisoned() || self.pool.capacity == 0 {
            return;
        }
        if let Ok(mut pool) = self.pool.sandboxes.lock()
            && pool.len() < self.pool.capacity
        {
            pool.push((sandbox, exports));
        }
    }

    /// The environment's spec.
    pub fn spec(&self) -> &EnvSpec {
        self.inner.spec.as_ref().expect("the spec is read while loading")
    }

    /// BLAKE3 hash of the module's bytes.
    pub fn hash(&self) -> [u8; 32] {
        self.inner.hash
    }

    /// A report on the module.
    pub fn info(&self) -> ModuleInfo {
        let layout = &self.inner.layout;
        ModuleInfo {
            spec: self.spec().clone(),
            abi_version: ABI_VERSION,
            hash: hex(&self.inner.hash),
            size_bytes: self.inner.size,
            exports: layout.exports.clone(),
            imports: layout.imports.iter().map(|(m, n)| format!("{m}::{n}")).collect(),
            initial_memory_bytes: layout.initial_pages.iter().map(|p| p * 65536).collect(),
            mutable_globals: layout.mutable_globals.len(),
        }
    }

    /// `snapshot` in bytes written against this module's initial memory (format 3): only the pages
    /// that differ from the memories as instantiated, so the module's data segments are not
    /// repeated in every snapshot (connect_four mid-game: a few KB against 28 KB for
    /// [`Snapshot::to_bytes`]). Reading them back needs this module:
    /// [`EnvModule::snapshot_from_bytes`]. A snapshot of another module is `Error::BadSnapshot`.
    /// On a runtime with a [`RuntimeConfig::snapshot_key`] the bytes are signed with it (format 4).
    pub fn snapshot_to_bytes(&self, snapshot: &Snapshot) -> Result<Vec<u8>> {
        if snapshot.module_hash() != self.inner.hash {
            return Err(Error::BadSnapshot {
                reason: "the snapshot was taken from another module: write it with that module, or with \
                         `Snapshot::to_bytes`"
                    .into(),
            });
        }
        let key = self.inner.snapshot_key.as_ref().map(|k| &k.0);
        Ok(snapshot.to_bytes_against(self.initial_images()?, key))
    }

    /// A snapshot of this module from bytes of [`EnvModule::snapshot_to_bytes`] (format 3) or of
    /// [`Snapshot::to_bytes`] (formats 1 and 2), checked as [`Snapshot::from_bytes`] checks them;
    /// bytes of another module's snapshot are `Error::BadSnapshot`. On a runtime with a
    /// [`RuntimeConfig::snapshot_key`], only bytes signed with that key (format 4) are accepted.
    pub fn snapshot_from_bytes(&self, bytes: &[u8]) -> Result<Snapshot> {
        let key = self.inner.snapshot_key.as_ref().map(|k| &k.0);
        Snapshot::from_bytes_against(bytes, &self.inner.hash, self.initial_images()?, key)
    }

    /// The images of a fresh instance's memories, read from one the first time.
    fn initial_images(&self) -> Result<&[crate::pages::MemoryImage]> {
        if self.inner.initial_images.get().is_none() {
            Sandbox::new(&self.inner, Limits::default(), false)?;
        }
        Ok(self.inner.initial_images.get().expect("set by every new sandbox"))
    }

    /// A new instance under `Limits::default()`, with no episode started.
    pub fn instantiate(&self) -> Result<Env> {
        self.instantiate_with(Limits::default())
    }

    /// A new instance under `limits`, with no episode started.
    pub fn instantiate_with(&self, limits: Limits) -> Result<Env> {
        self.with_room(|| Env::new(self, limits.clone()))
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl std::fmt::Debug for EnvModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvModule").field("name", &self.spec().name).field("hash", &hex(&self.inner.hash[..8])).finish()
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.config).finish()
    }
}
