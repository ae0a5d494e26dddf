//! [`Sandbox`]: one wasmtime store and instance of a guest under [`Limits`], with complete snapshots.
//!
//! Everything an instance of any kind needs lives here: arming fuel and deadline per call, turning
//! failures into [`Error`]s (with what the instance shows after them), poisoning, and capturing and
//! writing back the complete state. [`Env`](crate::Env) adds the environment ABI on top.

use std::sync::Arc;

use wasmgym_abi::rng::Rng;
use wasmtime::{
    Extern, ExternType, Global, Instance, Memory, ResourceLimiter, Store, TypedFunc, Val, ValType, WasmParams,
    WasmResults,
};

use crate::budget::{Budget, Charge};
use crate::copy::copy;
use crate::cow::CowFile;
use crate::error::{CallBudget, Error, HostTrap, Result, TrapContext, from_wasmtime};
use crate::instrument::DIRTY_MAP_EXPORT;
use crate::limits::Limits;
use crate::module::{ModuleInner, SLOT_MEMORY_BYTES, hex};
use crate::pages::{MemoryImage, PAGE, PAGE_CHARGE};
use crate::rewrite::{GLOBAL_EXPORT, MEMORY_EXPORT};
use crate::snapshot::{GlobalValue, SnapshotData};

/// Host-side state of an instance that a snapshot holds, beside the guest's memories and globals.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HostVars {
    pub rng: Rng,
    pub clock_ns: u64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub fuel_consumed: u64,
    pub steps: u64,
    pub episode: Episode,
}

/// Where the current episode stands, as the host last heard from the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Episode {
    NotStarted,
    Running { player: u32 },
    Over,
}

impl HostVars {
    fn new() -> Self {
        HostVars {
            rng: Rng::seed_from_u64(0),
            clock_ns: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            fuel_consumed: 0,
            steps: 0,
            episode: Episode::NotStarted,
        }
    }
}

/// The data of an instance's store.
pub(crate) struct HostState {
    pub vars: HostVars,
    pub limits: Limits,
    /// Memory 0, once the instance exists (host calls read and write it).
    pub memory: Option<Memory>,
    /// A program's per-run WASI inputs and open files (not snapshot data; see [`crate::wasi::Io`]).
    pub io: crate::wasi::Io,
    /// Ranges `(ptr, len)` of memory 0 that host calls wrote during the current guest call.
    pub host_writes: Vec<(u32, u32)>,
    /// What the sandbox holds, as charged to the runtime's budget (see
    /// `Sandbox::resident_estimate`); growth is added as it happens, and must fit.
    pub charge: Charge,
    /// Whether growth is checked against the budget (not while a copy-on-write mapping replaces
    /// the memory it grows).
    pub check_growth: bool,
    /// Bytes of all the guest's linear memories together, as the limiter has seen them grow
    /// (brought back to the exact sizes after every call): `Limits::memory_bytes` bounds the
    /// total, not each memory.
    pub memory_total: u64,
    /// Bytes of the dirty-page map the host adds, until the limiter has seen it created (it is
    /// not counted against the limit).
    pub host_memory: u64,
}

impl HostState {
    fn new(module: &ModuleInner, limits: &Limits, charge: Charge) -> HostState {
        HostState {
            vars: HostVars::new(),
            limits: limits.clone(),
            memory: None,
            io: Default::default(),
            host_writes: Vec::new(),
            charge,
            check_growth: true,
            memory_total: 0,
            host_memory: match module.pre.module().get_export(DIRTY_MAP_EXPORT) {
                Some(ExternType::Memory(ty)) => ty.minimum() * 65536,
                _ => 0,
            },
        }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let more = (desired - current) as u64;
        // The host's dirty map (created once, at instantiation, at its full and maximum size) is
        // not the guest's memory.
        if current == 0 && self.host_memory > 0 && more == self.host_memory && maximum == Some(desired) {
            self.host_memory = 0;
            return Ok(true);
        }
        // All memories together: ten memories of 250 MiB are 2.5 GiB, whatever the limit per memory.
        let total = self.memory_total.saturating_add(more);
        if total > self.limits.memory_bytes {
            return Err(wasmtime::Error::new(HostTrap::MemoryLimit {
                requested: total,
                limit: self.limits.memory_bytes,
            }));
        }
        self.memory_total = total;
        // At instantiation (current = 0) the new instance's charge is checked as a whole.
        if self.check_growth && current > 0 {
            if !self.charge.budget().fits(more) {
                let Error::MemoryCap { requested, in_use, cap } = self.charge.budget().exceeded(more) else {
                    unreachable!("exceeded makes a MemoryCap")
                };
                return Err(wasmtime::Error::new(HostTrap::MemoryCap { requested, in_use, cap }));
            }
            self.charge.set(self.charge.bytes() + more);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.table_elements {
            return Err(wasmtime::Error::new(HostTrap::TableLimit {
                requested: desired as u64,
                limit: self.limits.table_elements,
            }));
        }
        Ok(true)
    }
}

/// What may have changed in the memories since they last equalled `Sandbox::base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dirty {
    /// Nothing: the memories are exactly `base`.
    Clean,
    /// The pages marked in the dirty map (see `instrument.rs`), and no others.
    Tracked,
    /// Any page: pages are compared with `base` to find the changed ones.
    All,
}

/// A store with one instance of a module, its memories and mutable globals, and whether an earlier
/// failure poisoned it.
///
/// It remembers the images its memories last equalled (`base`: at creation, the module's initial
/// images; after a capture or restore, the snapshot's), so a capture copies only the pages that
/// changed and shares the rest, and a restore writes only the pages where the target differs.
pub(crate) struct Sandbox {
    module: Arc<ModuleInner>,
    pub store: Store<HostState>,
    pub instance: Instance,
    memories: Vec<Memory>,
    globals: Vec<Global>,
    poisoned: Option<String>,
    base: Vec<MemoryImage>,
    dirty: Dirty,
    /// The dirty map of an instrumented module (one byte per 4 KiB page of memory 0).
    map: Option<Memory>,
    /// Memory 0 maps a snapshot's image copy-on-write (see `cow.rs`).
    cow: Option<CowMapping>,
    /// The memfd this sandbox's forks last mapped (or it maps itself), so a fork of a nearby state
    /// maps it and writes only the pages that differ.
    file_base: Option<FileBase>,
    /// The instance is in one of the runtime's pooled slots, whose memory wasmtime resets and
    /// reuses: a memfd may be mapped into it only where the module's [`SlotMemory`] is known, and
    /// is put back when the sandbox is dropped.
    slotted: bool,
    /// Bytes of this slotted instance's memory 0 a memfd was mapped over (0: none).
    slot_mapped: usize,
    /// Page lists a capture or restore reuses (the marked pages; the pages to copy).
    scratch: (Vec<usize>, Vec<usize>),
}

/// A memfd forks map and the image it holds, and whether writing another one pays: a file serves
/// the forks of states near the one it holds; one per fork of ever-changing states costs more than
/// copying (1 MiB with 256 changed pages: 630 µs against 270 µs; 16 MiB with 1,024: 10 ms against
/// 7.5 ms).
struct FileBase {
    file: Arc<CowFile>,
    image: MemoryImage,
    /// A fork other than the first has mapped it.
    reused: bool,
    /// Forks copied since, because a new file did not pay.
    copied: u32,
    /// After this many copies a new file is written again: [`FileBase::RETRY_AFTER`], doubled
    /// for each file in a row that served no other fork (up to [`FileBase::RETRY_MAX`]).
    retry_after: u32,
}

impl FileBase {
    const RETRY_AFTER: u32 = 8;
    const RETRY_MAX: u32 = 256;

    fn new(file: Arc<CowFile>, image: MemoryImage, reused: bool) -> FileBase {
        FileBase { file, image, reused, copied: 0, retry_after: FileBase::RETRY_AFTER }
    }

    /// The record of a new file written after `last`: a retry after a file no other fork mapped
    /// waits twice as long next time.
    fn after(last: Option<&FileBase>, file: Arc<CowFile>, image: MemoryImage) -> FileBase {
        let retry_after = match last {
            Some(last) if !last.reused => (last.retry_after * 2).min(FileBase::RETRY_MAX),
            _ => FileBase::RETRY_AFTER,
        };
        FileBase { retry_after, ..FileBase::new(file, image, false) }
    }
}

/// Memory 0 of a sandbox mapped from a [`CowFile`], and which of its pages the sandbox has written
/// (so holds privately).
struct CowMapping {
    file: Arc<CowFile>,
    private: Vec<u64>,
    private_pages: usize,
}

impl CowMapping {
    fn new(file: Arc<CowFile>) -> CowMapping {
        let pages = file.len().div_ceil(PAGE);
        CowMapping { file, private: vec![0; pages.div_ceil(64)], private_pages: 0 }
    }

    /// Records the writes since the last capture or restore: the pages `marked` in the dirty map
    /// and the next of each (see [`Sandbox::take_dirty`]), or every page when they are unknown.
    fn note_writes(&mut self, dirty: Dirty, marked: &[usize]) {
        match dirty {
            Dirty::All => (0..self.file.len().div_ceil(PAGE)).for_each(|p| self.note(p)),
            _ => marked.iter().for_each(|&p| {
                self.note(p);
                self.note(p + 1);
            }),
        }
    }

    /// Whether page `p` is the sandbox's own copy (written since the mapping), not the file's.
    fn is_private(&self, p: usize) -> bool {
        self.private.get(p / 64).is_some_and(|word| word & (1 << (p % 64)) != 0)
    }

    /// Records that page `p` was written (pages past the mapping are charged as plain memory).
    fn note(&mut self, p: usize) {
        if let Some(word) = self.private.get_mut(p / 64)
            && *word & (1 << (p % 64)) == 0
            && p < self.file.len().div_ceil(PAGE)
        {
            *word |= 1 << (p % 64);
            self.private_pages += 1;
        }
    }
}

/// What wasmtime left in memory 0 of a module's pooled slots, which a fork that maps a memfd over
/// it puts back before the slot is reset and reused (wasmtime resets a slot by discarding private
/// pages, `MADV_DONTNEED`, and trusts the mapping beneath to hold its image).
#[derive(Clone)]
pub(crate) enum SlotMemory {
    /// A private mapping of the module's data image: mapped back is a memfd of the same bytes
    /// (the initial memory), with anonymous memory past the initial size.
    Image(Arc<CowFile>),
    /// Anonymous memory (wasmtime copies the data in at instantiation, or there is none).
    Anonymous,
}

impl SlotMemory {
    /// What a fresh slotted instance's memory is mapped from, found by discarding every page
    /// (`MADV_DONTNEED`) and reading what wasmtime's mapping gives back: the module's initial
    /// memory (a private mapping of its data image), or zeros (anonymous memory). `None` where
    /// neither, as when a start function wrote memory at instantiation (nothing is mapped into this
    /// module's slots then). The initial memory is written back either way. Once per module: a read
    /// of every page.
    fn probe(sandbox: &mut Sandbox) -> Option<SlotMemory> {
        let initial = sandbox.base[0].clone();
        let bytes = sandbox.memories[0].data_mut(&mut sandbox.store);
        if bytes.len() != initial.len() || !bytes.len().is_multiple_of(PAGE) {
            return None;
        }
        // SAFETY: the whole memory, page-aligned, which no other reference points into.
        unsafe { crate::cow::discard(bytes.as_mut_ptr(), bytes.len()).ok()? };
        let (mut image, mut zeros) = (true, true);
        for (p, page) in bytes.chunks_mut(PAGE).enumerate() {
            zeros &= page.iter().all(|&b| b == 0);
            if *page != *initial.page(p) {
                image = false;
                copy(page, initial.page(p));
            }
        }
        if zeros {
            return Some(SlotMemory::Anonymous);
        }
        // The module's data, like wasmtime's image of it, is not counted against the cap.
        let file = image.then(|| CowFile::new(&initial, &Budget::new(None)).ok())??;
        Some(SlotMemory::Image(Arc::new(file)))
    }
}

/// What an instance holds beside its linear memory (store, instance, tables, code references, page
/// tables), as charged to the budget. Measured: see `docs/branching.md`.
pub(crate) const INSTANCE_OVERHEAD: u64 = 16 << 10;

impl Sandbox {
    /// A fresh instance of `module`; runs the guest's `_initialize` (if any) when `initialize`.
    pub fn new(module: &Arc<ModuleInner>, limits: Limits, initialize: bool) -> Result<Sandbox> {
        Sandbox::create(module, limits, initialize, true)
    }

    /// [`Sandbox::new`], in a pooled slot if `slot` allows it, the module has one and one is
    /// free; otherwise on demand.
    fn create(module: &Arc<ModuleInner>, limits: Limits, initialize: bool, slot: bool) -> Result<Sandbox> {
        let instantiate = |pre: &wasmtime::InstancePre<HostState>| -> Result<(Store<HostState>, _)> {
            let host = HostState::new(module, &limits, module.budget.charge(0)?);
            let mut store = Store::new(pre.module().engine(), host);
            store.limiter(|state| state);
            let budget = arm(&mut store, module)?;
            let instance = pre.instantiate(&mut store);
            Ok((store, instance.map_err(|e| (e, budget))))
        };
        let mut made = None;
        if slot
            && limits.table_elements <= crate::module::SLOT_TABLE_ELEMENTS as u64
            && let Some(pre) = &module.slotted
        {
            let (store, instance) = instantiate(pre)?;
            // With every slot in use, this instance is created on demand instead.
            let full =
                matches!(&instance, Err((e, _)) if e.chain().any(|c| c.is::<wasmtime::PoolConcurrencyLimitError>()));
            if !full {
                made = Some((store, instance));
            }
        }
        let slotted = made.is_some();
        let (mut store, instance) = match made {
            Some(made) => made,
            None => instantiate(&module.pre)?,
        };
        let instance = instance.map_err(|(e, budget)| from_wasmtime(e, budget, TrapContext::default()))?;
        let missing = |what: &str| Error::MissingExport { name: what.into(), expected: "added at load".into() };
        let memories = (0..module.layout.memories)
            .map(|i| match instance.get_export(&mut store, &format!("{MEMORY_EXPORT}{i}")) {
                Some(Extern::Memory(m)) => Ok(m),
                _ => Err(missing("memory")),
            })
            .collect::<Result<Vec<_>>>()?;
        let globals = (module.layout.mutable_globals.iter())
            .map(|i| instance.get_global(&mut store, &format!("{GLOBAL_EXPORT}{i}")).ok_or_else(|| missing("global")))
            .collect::<Result<Vec<_>>>()?;
        store.data_mut().memory = memories.first().copied();
        let map = instance.get_memory(&mut store, DIRTY_MAP_EXPORT);
        let base = (module.initial_images)
            .get_or_init(|| memories.iter().map(|m| MemoryImage::from_bytes(m.data(&store))).collect())
            .clone();
        let mut sandbox = Sandbox {
            module: module.clone(),
            store,
            instance,
            memories,
            globals,
            poisoned: None,
            base,
            dirty: Dirty::Clean,
            map,
            cow: None,
            file_base: None,
            scratch: Default::default(),
            slotted,
            slot_mapped: 0,
        };
        let estimate = sandbox.resident_estimate();
        let charge = &mut sandbox.store.data_mut().charge;
        if !charge.budget().fits(estimate) {
            return Err(charge.budget().exceeded(estimate));
        }
        charge.set(estimate);
        if initialize && let Some(init) = instance.get_func(&mut sandbox.store, "_initialize") {
            let init = init.typed::<(), ()>(&sandbox.store).map_err(|_| missing("_initialize"))?;
            sandbox.call(&init, ())?;
        }
        Ok(sandbox)
    }

    /// Replaces the instance by a fresh one under the same limits (memories cannot shrink). The old
    /// instance's charge is given back first, so an instance that grew to near the runtime's cap
    /// can still be replaced; if the new one cannot be created, the old one stays, charged again.
    pub fn renew(&mut self) -> Result<()> {
        let held = self.store.data().charge.bytes();
        self.store.data_mut().charge.set(0);
        match Sandbox::new(&self.module, self.store.data().limits.clone(), false) {
            Ok(fresh) => {
                *self = fresh;
                Ok(())
            }
            Err(e) => {
                self.store.data_mut().charge.set(held);
                Err(e)
            }
        }
    }

    /// The module this is an instance of.
    pub fn module(&self) -> &ModuleInner {
        &self.module
    }

    /// The exported function `name` with the given signature.
    pub fn func<P: WasmParams, R: WasmResults>(&mut self, name: &str) -> Result<TypedFunc<P, R>> {
        self.func_checked(name, false)
    }

    /// [`Sandbox::func`], without checking the type again where `checked` says an earlier instance
    /// of this module gave this export as this very `TypedFunc<P, R>`.
    pub fn func_checked<P: WasmParams, R: WasmResults>(
        &mut self,
        name: &str,
        checked: bool,
    ) -> Result<TypedFunc<P, R>> {
        let missing = || Error::MissingExport { name: name.into(), expected: "checked at load".into() };
        let func = self.instance.get_func(&mut self.store, name).ok_or_else(missing)?;
        if checked {
            // SAFETY: an instance of the same module (so a function of the same type under this
            // name) passed `Func::typed` for these `P` and `R`, as the caller vouches.
            return Ok(unsafe { TypedFunc::new_unchecked(&self.store, func) });
        }
        func.typed(&self.store).map_err(|_| missing())
    }

    /// [`Sandbox::func_checked`] for an export the module may lack: `None` then; an error if it
    /// has it with another type.
    pub fn optional_func<P: WasmParams, R: WasmResults>(
        &mut self,
        name: &str,
        checked: bool,
    ) -> Result<Option<TypedFunc<P, R>>> {
        if self.instance.get_export(&mut self.store, name).is_none() {
            return Ok(None);
        }
        self.func_checked(name, checked).map(Some)
    }

    /// Calls `func` under the limits: fuel and deadline armed, fuel accounted, failures classified;
    /// a failure that stopped the guest poisons the sandbox.
    pub fn call<P: WasmParams, R: WasmResults>(&mut self, func: &TypedFunc<P, R>, params: P) -> Result<R> {
        self.check_usable()?;
        let budget = arm(&mut self.store, &self.module)?;
        if self.dirty == Dirty::Clean && self.map.is_some() {
            self.dirty = Dirty::Tracked;
        } else if self.map.is_none() {
            self.dirty = Dirty::All;
        }
        let result = func.call(&mut self.store, params);
        self.note_host_writes();
        self.store.data_mut().memory_total = self.memory_bytes();
        let left = self.store.get_fuel().unwrap_or(0);
        self.store.data_mut().vars.fuel_consumed += budget.fuel.saturating_sub(left);
        let within_cap = self.sync_charge();
        let result = result.map_err(|err| {
            let context = TrapContext { shadow_stack_escaped: self.shadow_stack_escaped() };
            from_wasmtime(err, budget, context)
        });
        let result = match result {
            Ok(_) if !within_cap => Err(self.store.data().charge.budget().exceeded(0)),
            other => other,
        };
        result.inspect_err(|e| self.poison(e))
    }

    /// Bytes the sandbox holds: [`INSTANCE_OVERHEAD`], its memories, and the pages of the dirty map
    /// that cover memory 0; of a memory mapped copy-on-write, only the pages written since it was
    /// mapped and any growth past the mapping.
    fn resident_estimate(&self) -> u64 {
        let mut total = INSTANCE_OVERHEAD;
        for (i, memory) in self.memories.iter().enumerate() {
            let size = memory.data_size(&self.store);
            total += match (&self.cow, i) {
                (Some(cow), 0) => (cow.private_pages * PAGE + size.saturating_sub(cow.file.len())) as u64,
                _ => size as u64,
            };
        }
        if self.map.is_some() {
            total += self.memories[0].data_size(&self.store).div_ceil(PAGE).next_multiple_of(PAGE) as u64;
        }
        total
    }

    /// Brings the charge up to date after memory may have grown or been written; `false` if that
    /// took the runtime past its cap.
    fn sync_charge(&mut self) -> bool {
        let marked = if self.cow.is_some() { self.marks() } else { Vec::new() };
        if let Some(cow) = &mut self.cow {
            cow.note_writes(self.dirty, &marked);
        }
        let estimate = self.resident_estimate();
        let charge = &mut self.store.data_mut().charge;
        estimate == charge.bytes() || charge.set(estimate)
    }

    /// Bytes this sandbox is charged for (see [`Sandbox::resident_estimate`]).
    pub fn resident_bytes(&self) -> u64 {
        self.store.data().charge.bytes()
    }

    /// Writes `bytes` into memory 0 at `ptr` for the guest to read, recording the write for
    /// dirty-page tracking. Host code writes guest memory through here (or WASI's recorded paths).
    pub fn write_memory(&mut self, ptr: u32, bytes: &[u8]) -> std::result::Result<(), wasmtime::MemoryAccessError> {
        self.memories[0].write(&mut self.store, ptr as usize, bytes)?;
        self.mark_written(ptr, bytes.len() as u32);
        Ok(())
    }

    /// Records where the host wrote memory 0 itself (the guest's own writes mark the map).
    fn mark_written(&mut self, ptr: u32, len: u32) {
        match self.map {
            Some(map) if len > 0 => {
                if self.dirty == Dirty::Clean {
                    self.dirty = Dirty::Tracked;
                }
                let first = (ptr / PAGE as u32) as usize;
                let last = (ptr.saturating_add(len - 1) / PAGE as u32) as usize;
                let bytes = map.data_mut(&mut self.store);
                let end = last.min(bytes.len() - 1);
                bytes[first.min(end)..=end].fill(1);
            }
            Some(_) => {}
            None => self.dirty = Dirty::All,
        }
    }

    /// Folds what host calls wrote during the last guest call into the tracking.
    fn note_host_writes(&mut self) {
        let state = self.store.data_mut();
        for (ptr, len) in std::mem::take(&mut state.host_writes) {
            self.mark_written(ptr, len);
        }
    }

    /// The pages of memory 0 written since `base`, or `None` when unknown. Clears the map.
    fn take_dirty(&mut self) -> Option<Written> {
        let pages = self.memories[0].data_size(&self.store).div_ceil(PAGE);
        let dirty = std::mem::replace(&mut self.dirty, Dirty::Clean);
        let Some(map) = self.map else {
            return (dirty == Dirty::Clean).then(|| Written { marked: Vec::new(), pages });
        };
        let mut marked = std::mem::take(&mut self.scratch.0);
        marked.clear();
        if dirty == Dirty::Tracked {
            self.marks_into(&mut marked);
        }
        let bytes = map.data_mut(&mut self.store);
        let scan = pages.min(bytes.len());
        // Fold the marks into the copy-on-write bookkeeping before they are cleared.
        if let Some(cow) = &mut self.cow {
            cow.note_writes(dirty, &marked);
        }
        match dirty {
            Dirty::Clean => Some(Written { marked, pages }),
            Dirty::All => {
                bytes[..scan].fill(0);
                self.scratch.0 = marked;
                None
            }
            Dirty::Tracked => {
                marked.iter().for_each(|&p| bytes[p] = 0);
                Some(Written { marked, pages })
            }
        }
    }

    /// The pages marked in the dirty map, in order (the map is left as it is).
    fn marks(&self) -> Vec<usize> {
        let mut marked = Vec::new();
        self.marks_into(&mut marked);
        marked
    }

    /// [`Sandbox::marks`] into `marked` (cleared first).
    fn marks_into(&self, marked: &mut Vec<usize>) {
        marked.clear();
        let Some(map) = self.map else { return };
        let bytes = map.data(&self.store);
        let scan = self.memories[0].data_size(&self.store).div_ceil(PAGE).min(bytes.len());
        // Eight map bytes at a time: most words are zero.
        let (words, tail) = bytes[..scan].as_chunks::<8>();
        for (i, word) in words.iter().enumerate() {
            if u64::from_ne_bytes(*word) != 0 {
                marked.extend((0..8).filter(|&j| word[j] != 0).map(|j| i * 8 + j));
            }
        }
        let base = words.len() * 8;
        marked.extend((0..tail.len()).filter(|&j| tail[j] != 0).map(|j| base + j));
    }

    /// The pages of memory 0 written since `base` as [`Sandbox::take_dirty`] gives them, without
    /// clearing the map (empty when nothing was written; tracked sandboxes only).
    pub(crate) fn marked_pages(&self) -> Vec<usize> {
        if self.dirty == Dirty::Clean {
            return Vec::new();
        }
        let pages = self.memories[0].data_size(&self.store).div_ceil(PAGE);
        let mut written = Vec::new();
        for p in self.marks() {
            if written.last() != Some(&p) {
                written.push(p);
            }
            if p + 1 < pages {
                written.push(p + 1);
            }
        }
        written
    }

    /// Marks the sandbox unusable (until a restore) if `error` stopped the guest mid-way.
    pub fn poison(&mut self, error: &Error) {
        if error.poisons() {
            self.poisoned = Some(error.to_string());
        }
    }

    /// Marks the sandbox unusable (until a restore) whatever `error` is: the guest was left
    /// part-way through a call that is all or nothing for the host (a rollout, a playout).
    pub fn poison_always(&mut self, error: &Error) {
        self.poisoned = Some(error.to_string());
    }

    /// Fails with [`Error::Poisoned`] if an earlier failure stopped the guest mid-way.
    pub fn check_usable(&self) -> Result<()> {
        match &self.poisoned {
            Some(cause) => Err(Error::Poisoned { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    pub fn in_slot(&self) -> bool {
        self.slotted
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Memory 0, which the ABI and WASI use.
    pub fn memory(&self) -> Memory {
        self.memories[0]
    }

    /// Total size of the linear memories, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memories.iter().map(|m| m.data_size(&self.store) as u64).sum()
    }

    /// The shadow stack pointer has left linear memory (wrapped below zero or past the end).
    fn shadow_stack_escaped(&mut self) -> bool {
        let Some(i) = self.module.layout.stack_pointer else { return false };
        let size = self.memories[0].data_size(&self.store) as u64;
        matches!(self.globals[i].get(&mut self.store), Val::I32(sp) if sp as u32 as u64 > size)
    }

    /// The complete state: memories, mutable globals and host state. Pages unchanged since the
    /// last capture or restore are shared with it.
    pub fn capture(&mut self) -> Result<SnapshotData> {
        self.check_usable()?;
        let dirty = self.take_dirty().map(|written| written.pages());
        let budget = &self.module.budget;
        let mut stored = 0u64;
        for (image, memory) in self.base.iter_mut().zip(&self.memories) {
            let data = memory.data(&self.store);
            if image.len() != data.len() {
                image.resize(data.len());
            }
            let mut update = |p: usize| {
                let page = &data[p * PAGE..((p + 1) * PAGE).min(data.len())];
                if image.page(p)[..page.len()] != *page {
                    image.set_page_charged(p, page, Some(budget));
                    stored += PAGE_CHARGE;
                }
            };
            // Tracked pages exist only for memory 0 of a module with one memory.
            match &dirty {
                Some(pages) => pages.iter().for_each(|&p| update(p)),
                None => (0..data.len().div_ceil(PAGE)).for_each(update),
            }
        }
        // The pages are in use either way (the base holds them); the snapshot is refused.
        if stored > 0 && budget.over() {
            return Err(budget.exceeded(stored));
        }
        let mut globals = Vec::with_capacity(self.globals.len());
        for g in &self.globals {
            globals.push(GlobalValue::from_val(g.get(&mut self.store)).ok_or_else(|| Error::Unsupported {
                message: "a mutable global of reference type cannot be snapshotted".into(),
            })?);
        }
        Ok(SnapshotData {
            authentic: true,
            module: self.module.hash,
            memories: self.base.clone(),
            globals,
            vars: self.store.data().vars.clone(),
        })
    }

    /// Puts the sandbox in the exact state `data` holds, on a fresh instance if a memory has grown
    /// past the snapshot's (memories cannot shrink). Returns whether the instance was replaced, in
    /// which case handles to its functions must be fetched again. An incompatible snapshot changes
    /// nothing; a poisoned sandbox becomes usable.
    pub fn restore(&mut self, data: &SnapshotData) -> Result<bool> {
        self.restore_checked(data, false)
    }

    /// [`Sandbox::restore`]; `compatible` says the caller restored this very snapshot into this
    /// sandbox before, so its compatibility is known.
    pub fn restore_checked(&mut self, data: &SnapshotData, compatible: bool) -> Result<bool> {
        if !compatible {
            self.check_compatible(data)?;
        }
        let larger = self.memories.iter().zip(&data.memories).any(|(m, image)| m.data_size(&self.store) > image.len());
        if larger {
            self.renew()?;
        }
        self.poisoned = None;
        if let Err(e) = self.remap_state(data).and_then(|done| if done { Ok(()) } else { self.write_state(data) }) {
            self.poisoned = Some(format!("restore failed: {e}"));
            return Err(e);
        }
        Ok(larger)
    }

    /// A new, independent sandbox in exactly this one's state, under the same limits: a new
    /// instance (in a pooled slot, whose memory is resident) into which only the pages that may
    /// differ from the module's initial image are copied, memory to memory, or, where that is many
    /// pages of a large memory, an instance created on demand whose memory maps this state
    /// copy-on-write.
    pub fn fork(&mut self) -> Result<Sandbox> {
        /// Up to this many pages to write, copying them into a pooled slot beats mapping.
        const COPY_MAX_PAGES: usize = 64;
        self.check_usable()?;
        let size = self.memories[0].data_size(&self.store);
        let map = CowFile::SUPPORTED
            && self.map.is_some()
            && self.memories.len() == 1
            && size >= self.module.cow_fork_min_bytes
            && match (&self.module.slotted, self.module.initial_images.get()) {
                (Some(_), Some(initial)) => {
                    let written = self.marked_pages().len();
                    written > COPY_MAX_PAGES || self.base[0].differs_on_more_than(&initial[0], COPY_MAX_PAGES - written)
                }
                _ => true,
            };
        let limits = self.store.data().limits.clone();
        if map && self.file_pays() {
            let data = self.capture()?;
            if let Some((file, image)) = self.cow_base(&data.memories[0])? {
                let slot = size <= SLOT_MEMORY_BYTES && !matches!(self.module.slot_memory.get(), Some(None));
                let mut child = Sandbox::create(&self.module, limits, false, slot)?;
                if child.slotted {
                    // The first fork into a slot, still fresh, shows what the module's slots hold.
                    self.module.slot_memory.get_or_init(|| SlotMemory::probe(&mut child));
                }
                if child.mappable() {
                    child.map_state(&data, file, &image)?;
                } else {
                    child.write_state(&data)?;
                }
                return Ok(child);
            }
        }
        let mut child = Sandbox::create(&self.module, limits, false, size <= SLOT_MEMORY_BYTES)?;
        if !self.copy_into(&mut child)? {
            let data = self.capture()?;
            child.write_state(&data)?;
        }
        Ok(child)
    }

    /// Restores a copy-on-write sandbox that has written many pages by mapping the target's image
    /// afresh (one `mmap`, which also gives its private pages back), when the target has a memfd
    /// and the sizes match. Returns whether it did.
    fn remap_state(&mut self, data: &SnapshotData) -> Result<bool> {
        /// Below this many written pages, copying the differing pages back is cheaper.
        const REMAP_MIN_PAGES: usize = 32;
        let Some(cow) = &self.cow else { return Ok(false) };
        let size = self.memories[0].data_size(&self.store);
        let target = &data.memories[0];
        let file = match target.cached_file() {
            Some(file) if cow.private_pages >= REMAP_MIN_PAGES && size == target.len() => file,
            _ => return Ok(false),
        };
        self.take_dirty();
        // SAFETY: as in `map_state`: the memory is exactly the file's length and nothing borrows it.
        unsafe { file.map_over(self.memories[0].data_ptr(&self.store))? };
        self.cow = Some(CowMapping::new(file));
        self.base = data.memories.clone();
        self.dirty = Dirty::Clean;
        self.write_globals_and_vars(data)?;
        self.sync_charge();
        Ok(true)
    }

    /// Whether a fork of this state may map a memfd: `false` where the state is surely far from
    /// the last file (its `base` alone differs from the file's image on more than an eighth of the
    /// pages) and a new file would not pay (see [`FileBase`]), so the fork copies without a
    /// capture. Otherwise [`Sandbox::cow_base`] decides on the captured state.
    fn file_pays(&mut self) -> bool {
        if self.dirty == Dirty::Clean && self.base[0].cached_file().is_some() {
            return true; // the state has a memfd of its own (a restored snapshot's, say)
        }
        let size = self.memories[0].data_size(&self.store);
        let Some(file) = &self.file_base else { return true };
        let image = &file.image;
        let far = image.len() != size || self.base[0].differs_on_more_than(image, image.pages() / 8);
        !far || self.new_file_pays()
    }

    /// Whether writing a new memfd pays (see [`FileBase`]); counts a copy if not.
    fn new_file_pays(&mut self) -> bool {
        let Some(file) = &mut self.file_base else { return true };
        if file.reused || file.copied >= file.retry_after {
            return true;
        }
        file.copied += 1;
        false
    }

    /// A memfd to map for a fork whose memory 0 is `target`, and the image it holds: `target`'s own,
    /// or the one this sandbox last used if `target` differs from it on few pages (the fork then
    /// writes those), or else a new one written now and remembered for the next forks; `None`
    /// where a new one would not pay (the fork copies instead).
    fn cow_base(&mut self, target: &MemoryImage) -> Result<Option<(Arc<CowFile>, MemoryImage)>> {
        if let Some(file) = target.cached_file() {
            return Ok(Some((file, target.clone())));
        }
        if let Some(file) = &mut self.file_base
            && file.image.len() == target.len()
            && !target.differs_on_more_than(&file.image, target.pages() / 8)
        {
            file.reused = true;
            return Ok(Some((file.file.clone(), file.image.clone())));
        }
        if !self.new_file_pays() {
            return Ok(None);
        }
        let file = target.cow_file(&self.module.budget)?;
        self.file_base = Some(FileBase::after(self.file_base.as_ref(), file.clone(), target.clone()));
        Ok(Some((file, target.clone())))
    }

    /// Puts a fresh sandbox of a single-memory, tracked module in the state `data` holds: memory 0
    /// maps `file` (which holds `image`) copy-on-write, and the pages where `data` differs from
    /// `image` are written over it.
    fn map_state(&mut self, data: &SnapshotData, file: Arc<CowFile>, image: &MemoryImage) -> Result<()> {
        self.check_compatible(data)?;
        let memory = self.memories[0];
        let current = memory.data_size(&self.store);
        if current > file.len() || self.map.is_none() || !self.mappable() {
            return Err(Error::Runtime { message: "copy-on-write mapping into a used or pooled instance".into() });
        }
        self.take_dirty();
        // In a slot the memory never moves and its reservation holds the largest memory, so the
        // file is mapped first and growing over it changes no protection (one `mprotect` less);
        // should growing fail, the sandbox is dropped unused, which puts the slot back.
        let map_first = self.slotted && file.len() <= SLOT_MEMORY_BYTES;
        if self.slotted {
            self.slot_mapped = self.slot_mapped.max(file.len());
        }
        if map_first {
            // SAFETY: the file's length is within the slot's reservation, page-aligned, and no
            // reference into it is live (we hold the store mutably and no call is running).
            unsafe { file.map_over(memory.data_ptr(&self.store))? };
        }
        if current < file.len() {
            let budget = CallBudget { fuel: 0, deadline: Default::default() };
            self.store.data_mut().check_growth = false;
            let grown = memory.grow(&mut self.store, ((file.len() - current) / 65536) as u64);
            self.store.data_mut().check_growth = true;
            grown.map_err(|e| from_wasmtime(e, budget, TrapContext::default()))?;
        }
        if !map_first {
            // SAFETY: the memory is `file.len()` bytes, page-aligned, readable and writable, and no
            // reference into it is live (we hold the store mutably and no call is running).
            unsafe { file.map_over(memory.data_ptr(&self.store))? };
        }
        let mut cow = CowMapping::new(file.clone());
        let target = &data.memories[0];
        let bytes = memory.data_mut(&mut self.store);
        target.diff(image, |p| {
            // A page captured anew may still equal the file's: it stays shared, unwritten.
            if target.page(p) == image.page(p) {
                return;
            }
            let at = p * PAGE;
            let end = (at + PAGE).min(bytes.len());
            copy(&mut bytes[at..end], &target.page(p)[..end - at]);
            cow.note(p);
        });
        self.cow = Some(cow);
        self.file_base = Some(FileBase::new(file, image.clone(), true));
        self.base = data.memories.clone();
        self.dirty = Dirty::Clean;
        self.write_globals_and_vars(data)?;
        if !self.sync_charge() {
            return Err(self.store.data().charge.budget().exceeded(0));
        }
        Ok(())
    }

    /// Whether a memfd may be mapped over this instance's memory 0: created on demand, or in a
    /// slot whose [`SlotMemory`] is known.
    fn mappable(&self) -> bool {
        !self.slotted || matches!(self.module.slot_memory.get(), Some(Some(_)))
    }

    /// Puts back in memory 0 of a slotted instance a memfd was mapped into what wasmtime left
    /// there (see [`SlotMemory`]), so the slot's next instance starts from the module's image:
    /// past the memory's size too, where a mapping made before a failed growth may reach.
    fn put_back_slot(&mut self) -> Result<()> {
        let memory = self.memories[0];
        let (base, len) = (memory.data_ptr(&self.store), memory.data_size(&self.store));
        // SAFETY: the memory is `len` bytes, page-aligned, readable and writable, inside a slot
        // whose reservation holds `slot_mapped` bytes; nothing runs in it and nothing borrows it.
        unsafe {
            match self.module.slot_memory.get() {
                Some(Some(SlotMemory::Image(file))) if file.len() <= len => {
                    file.map_over(base)?;
                    crate::cow::map_anonymous(base.add(file.len()), len - file.len())?;
                }
                Some(Some(SlotMemory::Anonymous)) => crate::cow::map_anonymous(base, len)?,
                _ => return Err(Error::Runtime { message: "a mapped slot of a module without a slot memory".into() }),
            }
            crate::cow::map_inaccessible(base.add(len), self.slot_mapped.saturating_sub(len))
        }
    }

    /// Puts `child`, a warm sandbox of the same module in any state, in exactly this one's state
    /// under the same limits, writing only the pages where the two differ. Returns whether the
    /// child's instance was replaced (see [`Sandbox::restore`]).
    pub fn fork_into(&mut self, child: &mut Sandbox) -> Result<bool> {
        child.store.data_mut().limits = self.store.data().limits.clone();
        if self.copy_into(child)? {
            return Ok(false);
        }
        let data = self.capture()?;
        child.restore(&data)
    }

    /// Puts `child` in exactly this sandbox's state by copying memory to memory only the pages
    /// where the two may differ, without taking a snapshot: the pages either marked since its
    /// `base` (and the first [`SPILL`] bytes of the page after each), and those where the two
    /// `base`s differ. The child takes this sandbox's `base`, with this sandbox's marks in its map.
    /// Returns `false`, having changed nothing, where that does not apply (untracked or several
    /// memories, or a child with more memory).
    fn copy_into(&mut self, child: &mut Sandbox) -> Result<bool> {
        self.check_usable()?;
        let tracked = |s: &Sandbox| s.map.is_some() && s.memories.len() == 1 && s.dirty != Dirty::All;
        let (size, child_size) = (self.memories[0].data_size(&self.store), child.memories[0].data_size(&child.store));
        if !tracked(self) || !tracked(child) || child_size > size {
            return Ok(false);
        }
        let mut here = std::mem::take(&mut self.scratch.0);
        here.clear();
        if self.dirty != Dirty::Clean {
            self.marks_into(&mut here);
        }
        let there = child.take_dirty().map(|written| written.marked).unwrap_or_default();
        let memory = child.memories[0];
        if child_size < size {
            let budget = CallBudget { fuel: 0, deadline: Default::default() };
            let grown = memory.grow(&mut child.store, ((size - child_size) / 65536) as u64);
            grown.map_err(|e| from_wasmtime(e, budget, TrapContext::default()))?;
        }
        let from = self.memories[0].data(&self.store);
        let to = memory.data_mut(&mut child.store);
        let pages = from.len().div_ceil(PAGE);
        // The pages marked on either side and those where the bases differ (each list in order).
        let mut differing = std::mem::take(&mut self.scratch.1);
        differing.clear();
        self.base[0].diff(&child.base[0], |p| differing.push(p));
        let mut candidates = std::mem::take(&mut child.scratch.1);
        union(&here, &there, &mut candidates);
        if !differing.is_empty() {
            let written = std::mem::replace(&mut candidates, Vec::with_capacity(here.len() + differing.len()));
            union(&written, &differing, &mut candidates);
        }
        self.scratch.1 = differing;
        let mut cow = child.cow.as_mut();
        if cow.is_none() && full_copy_is_cheaper(candidates.len(), runs(&candidates).count(), pages) {
            copy(to, from);
        } else {
            // Both memories start on a page boundary, where `memcpy` is fast (see `copy.rs`).
            let bytes = |pages: std::ops::Range<usize>| pages.start * PAGE..(pages.end * PAGE).min(from.len());
            for run in runs(&candidates) {
                // A copy-on-write child compares a page it still shares with the file first, so
                // equal pages stay shared; pages it holds privately are copied with the rest of
                // their run in one go.
                let mut start = run.start;
                for p in run.clone() {
                    if let Some(cow) = cow.as_deref_mut()
                        && !cow.is_private(p)
                    {
                        to[bytes(start..p)].copy_from_slice(&from[bytes(start..p)]);
                        if from[bytes(p..p + 1)] != to[bytes(p..p + 1)] {
                            copy(&mut to[bytes(p..p + 1)], &from[bytes(p..p + 1)]);
                            cow.note(p);
                        }
                        start = p + 1;
                    }
                }
                to[bytes(start..run.end)].copy_from_slice(&from[bytes(start..run.end)]);
            }
            // A store that began near the end of a marked page may have reached the next one.
            for p in here.iter().chain(&there).map(|&p| p + 1) {
                if p < pages && candidates.binary_search(&p).is_err() {
                    let range = p * PAGE..(p * PAGE + SPILL).min(from.len());
                    if to[range.clone()] != from[range.clone()] {
                        to[range.clone()].copy_from_slice(&from[range]);
                        if let Some(cow) = cow.as_deref_mut() {
                            cow.note(p);
                        }
                    }
                }
            }
        }
        child.scratch = (there, candidates);
        child.base = self.base.clone();
        // The child's memory differs from its new base where this sandbox's does.
        let map = child.map.expect("tracked").data_mut(&mut child.store);
        for &p in &here {
            if let Some(byte) = map.get_mut(p) {
                *byte = 1;
            }
        }
        child.dirty = if here.is_empty() { Dirty::Clean } else { Dirty::Tracked };
        self.scratch.0 = here;
        for (from, to) in self.globals.iter().zip(&child.globals) {
            let value = from.get(&mut self.store);
            to.set(&mut child.store, value)
                .map_err(|e| Error::Runtime { message: format!("copying a global: {e}") })?;
        }
        child.store.data_mut().vars = self.store.data().vars.clone();
        child.poisoned = None;
        if !child.sync_charge() {
            return Err(child.store.data().charge.budget().exceeded(0));
        }
        Ok(true)
    }

    /// BLAKE3 of the state that determines the future (not captured output or fuel used). The
    /// memories enter as the Merkle hashes of their page trees, so the cost follows the pages
    /// changed since the last capture, not the memory size.
    pub fn state_hash(&mut self) -> Result<[u8; 32]> {
        let data = self.capture()?;
        Ok(hash_state(&data.memories, &data.globals, &data.vars))
    }

    /// [`Sandbox::state_hash`] computed from the live memory bytes instead of the tracked images:
    /// O(memory size), and equal to `state_hash` exactly when dirty-page tracking missed nothing.
    pub fn state_hash_full(&mut self) -> Result<[u8; 32]> {
        let mut data = self.capture()?;
        data.memories = self.memories.iter().map(|m| MemoryImage::from_bytes(m.data(&self.store))).collect();
        Ok(hash_state(&data.memories, &data.globals, &data.vars))
    }

    /// The module's global and memory types, read once per module (asking wasmtime costs more
    /// than the rest of a small restore).
    fn types(&self) -> &ModuleTypes {
        self.module.types.get_or_init(|| ModuleTypes {
            globals: self.globals.iter().map(|g| g.ty(&self.store).content().clone()).collect(),
            memory_max: self.memories.iter().map(|m| m.ty(&self.store).maximum()).collect(),
        })
    }

    fn check_compatible(&self, data: &SnapshotData) -> Result<()> {
        let bad = |reason: String| Err(Error::BadSnapshot { reason });
        if self.module.snapshot_key.is_some() && !data.authentic {
            return bad("it was decoded from bytes not signed with this runtime's snapshot key: decode signed bytes \
                        with `EnvModule::snapshot_from_bytes` instead"
                .into());
        }
        if data.module != self.module.hash {
            return bad(format!(
                "it belongs to module {}, this instance runs module {}: restore it into an instance of its own module",
                hex(&data.module[..8]),
                hex(&self.module.hash[..8])
            ));
        }
        if data.memories.len() != self.memories.len() || data.globals.len() != self.globals.len() {
            return bad(format!(
                "it holds {} memories and {} globals, the module has {} and {}",
                data.memories.len(),
                data.globals.len(),
                self.memories.len(),
                self.globals.len()
            ));
        }
        let types = self.types();
        for (i, (image, maximum)) in data.memories.iter().zip(&types.memory_max).enumerate() {
            let minimum = self.module.layout.initial_pages.get(i).copied().unwrap_or(0);
            let pages = image.len() as u64 / 65536;
            if image.len() % 65536 != 0 || pages < minimum || maximum.is_some_and(|max| pages > max) {
                return bad(format!(
                    "its memory {i} is {} bytes, which the module's memory {i} (64 KiB pages, {minimum} to {}) \
                     can never hold",
                    image.len(),
                    maximum.map_or("no maximum".into(), |m| m.to_string())
                ));
            }
        }
        for (i, (value, ty)) in data.globals.iter().zip(&types.globals).enumerate() {
            let fits = matches!(
                (value, ty),
                (GlobalValue::I32(_), ValType::I32)
                    | (GlobalValue::I64(_), ValType::I64)
                    | (GlobalValue::F32(_), ValType::F32)
                    | (GlobalValue::F64(_), ValType::F64)
                    | (GlobalValue::V128(_), ValType::V128)
            );
            if !fits {
                return bad(format!("its global {i} is {value:?}, the module's global {i} is of type {ty}"));
            }
        }
        let limit = self.store.data().limits.memory_bytes;
        let total: u64 = data.memories.iter().map(|image| image.len() as u64).sum();
        if total > limit {
            return Err(Error::MemoryLimit { requested: total, limit });
        }
        Ok(())
    }

    /// Writes a compatible snapshot's state into this instance, whose memories are no larger: only
    /// the pages where the target differs from what the memory holds.
    fn write_state(&mut self, data: &SnapshotData) -> Result<()> {
        let budget = CallBudget { fuel: 0, deadline: Default::default() };
        let dirty = self.take_dirty();
        if let Some(written) = dirty.as_ref().filter(|_| self.cow.is_none()) {
            let back = |s: &Sandbox| {
                s.memories.len() == 1
                    && data.memories[0].same(&s.base[0])
                    && s.memories[0].data_size(&s.store) == data.memories[0].len()
            };
            if back(self) {
                // Back to the image this instance last equalled (a search restoring its root): only
                // the pages written since differ, and there is no page list to build.
                let (bytes, target) = (self.memories[0].data_mut(&mut self.store), &data.memories[0]);
                for (i, &p) in written.marked.iter().enumerate() {
                    let at = p * PAGE;
                    let end = (at + PAGE).min(bytes.len());
                    copy(&mut bytes[at..end], &target.page(p)[..end - at]);
                    let next = p + 1;
                    if next < target.pages() && written.marked.get(i + 1) != Some(&next) {
                        let end = (next * PAGE + SPILL).min(bytes.len());
                        bytes[next * PAGE..end].copy_from_slice(&target.page(next)[..end - next * PAGE]);
                    }
                }
                self.scratch.0 = dirty.map(|written| written.marked).unwrap_or_default();
                self.dirty = Dirty::Clean;
                return self.write_globals_and_vars(data);
            }
        }
        let mut cow = self.cow.take();
        let mut list = std::mem::take(&mut self.scratch.1);
        let mut grew = false;
        for (i, (memory, target)) in self.memories.iter().zip(&data.memories).enumerate() {
            let current = memory.data_size(&self.store);
            if current < target.len() {
                grew = true;
                let pages = ((target.len() - current) / 65536) as u64;
                if let Err(e) = memory.grow(&mut self.store, pages) {
                    self.cow = cow;
                    return Err(from_wasmtime(e, budget, TrapContext::default()));
                }
            }
            let bytes = memory.data_mut(&mut self.store);
            // Pages written since `base`, and pages where `base` and the target differ; or, when
            // the written pages are unknown, every page.
            let candidates = dirty.as_ref().map(|written| {
                list.clear();
                list.extend_from_slice(&written.marked);
                target.diff(&self.base[i], |p| list.push(p));
                // A page both written and different would be copied twice.
                list.sort_unstable();
                list.dedup();
                &list[..]
            });
            // The first bytes of the page after each marked one, which a store that started near
            // the marked page's end may have reached (unless the page is a candidate already).
            let spills = match (&dirty, candidates) {
                (Some(written), Some(_)) => &written.marked[..],
                _ => &[][..],
            }
            .iter()
            .map(|&p| p + 1)
            .filter(|&p| p < target.pages() && candidates.is_some_and(|c| c.binary_search(&p).is_err()));
            if cow.is_none()
                && candidates
                    .as_ref()
                    .is_some_and(|c| full_copy_is_cheaper(c.len(), c.len(), bytes.len().div_ceil(PAGE)))
            {
                for p in 0..target.pages() {
                    let at = p * PAGE;
                    let end = (at + PAGE).min(bytes.len());
                    copy(&mut bytes[at..end], &target.page(p)[..end - at]);
                }
                continue;
            }
            // A copy-on-write memory compares a page it still shares with the file first, so
            // equal pages stay shared; a private page just copies (cheaper than comparing).
            let copy = |page: usize| {
                let at = page * PAGE;
                if at >= bytes.len() {
                    return;
                }
                let end = (at + PAGE).min(bytes.len());
                let want = &target.page(page)[..end - at];
                let compare = i == 0 && cow.as_ref().is_some_and(|cow| !cow.is_private(page));
                if !compare {
                    copy(&mut bytes[at..end], want);
                } else if bytes[at..end] != *want {
                    copy(&mut bytes[at..end], want);
                    if i == 0
                        && let Some(cow) = &mut cow
                    {
                        cow.note(page);
                    }
                }
            };
            match candidates {
                Some(candidates) => candidates.iter().copied().for_each(copy),
                None => (0..target.pages()).for_each(copy),
            }
            for p in spills {
                let at = p * PAGE;
                let end = (at + SPILL).min(bytes.len());
                let want = &target.page(p)[..end - at];
                if bytes[at..end] != *want {
                    bytes[at..end].copy_from_slice(want);
                    if i == 0
                        && let Some(cow) = &mut cow
                    {
                        cow.note(p);
                    }
                }
            }
        }
        self.cow = cow;
        self.scratch = (dirty.map(|written| written.marked).unwrap_or_default(), list);
        let same = |a: &[MemoryImage], b: &[MemoryImage]| a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.same(b));
        if !same(&self.base, &data.memories) {
            self.base = data.memories.clone();
        }
        self.dirty = Dirty::Clean;
        self.write_globals_and_vars(data)?;
        // The charge follows the memories' sizes and copy-on-write pages: unchanged otherwise.
        if grew || self.cow.is_some() {
            self.sync_charge();
        }
        Ok(())
    }

    fn write_globals_and_vars(&mut self, data: &SnapshotData) -> Result<()> {
        for (global, value) in self.globals.iter().zip(&data.globals) {
            global.set(&mut self.store, value.to_val()).map_err(|e| Error::BadSnapshot {
                reason: format!("a global does not accept the snapshot's value: {e}"),
            })?;
        }
        self.store.data_mut().vars = data.vars.clone();
        Ok(())
    }
}

/// What snapshots of a module are checked against: the types of its mutable globals and the
/// maxima of its memories (64 KiB pages).
#[derive(Clone)]
pub(crate) struct ModuleTypes {
    globals: Vec<ValType>,
    memory_max: Vec<Option<u64>>,
}

/// Bytes a store that starts in one page may write into the next: 15 for the widest (`v128`).
const SPILL: usize = 16;

/// The pages of memory 0 marked written in the dirty map since `base`, in order. A store starting
/// near the end of a marked page may also have written the first [`SPILL`] bytes of the next.
struct Written {
    marked: Vec<usize>,
    /// Pages of memory 0.
    pages: usize,
}

impl Written {
    /// Every page that may hold a write: each marked page and the next.
    fn pages(&self) -> Vec<usize> {
        let mut pages = Vec::with_capacity(self.marked.len() * 2);
        for &p in &self.marked {
            if pages.last() != Some(&p) {
                pages.push(p);
            }
            if p + 1 < self.pages {
                pages.push(p + 1);
            }
        }
        pages
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.slot_mapped > 0 && self.put_back_slot().is_err() {
            // Wasmtime would reuse the slot with a snapshot's file beneath: keep the store, and so
            // the slot, from ever going back to the pool.
            let host = HostState::new(&self.module, &Limits::default(), Budget::new(None).charge_anyway(0));
            let store = Store::new(self.module.pre.module().engine(), host);
            std::mem::forget(std::mem::replace(&mut self.store, store));
        }
    }
}

/// Whether writing every page of a memory of `pages` pages is cheaper than writing `candidates`
/// distinct pages in `runs` runs of consecutive pages. A run costs about one page more than its
/// pages copied as part of one sequential copy (`../shared/FACTS.md`: 67 ns hot, 176 ns scattered,
/// against 610 ns per page of a bulk copy that misses the cache), so scattered pages meet the full
/// copy near half the memory, and long runs near all of it.
fn full_copy_is_cheaper(candidates: usize, runs: usize, pages: usize) -> bool {
    candidates + runs >= pages
}

/// `a` ∪ `b` (each sorted and distinct) into `out`, sorted and distinct.
fn union(a: &[usize], b: &[usize], out: &mut Vec<usize>) {
    out.clear();
    out.reserve(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        out.push(x.min(y));
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

/// The runs of consecutive pages in `pages` (sorted, distinct), as page ranges.
fn runs(pages: &[usize]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = *pages.get(at)?;
        let mut end = start + 1;
        at += 1;
        while pages.get(at) == Some(&end) {
            end += 1;
            at += 1;
        }
        Some(start..end)
    })
}

/// BLAKE3 of memories (by their Merkle hashes), globals and the host state that shapes the future.
fn hash_state(memories: &[MemoryImage], globals: &[GlobalValue], vars: &HostVars) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for image in memories {
        h.update(&image.hash());
    }
    for v in globals {
        h.update(&v.to_bits().to_le_bytes());
    }
    h.update(&vars.rng.state_bytes());
    h.update(&vars.clock_ns.to_le_bytes());
    h.update(&vars.steps.to_le_bytes());
    let episode = match vars.episode {
        Episode::NotStarted => u64::MAX,
        Episode::Running { player } => player as u64,
        Episode::Over => u64::MAX - 1,
    };
    h.update(&episode.to_le_bytes());
    *h.finalize().as_bytes()
}

/// Sets the fuel and deadline for one call.
fn arm(store: &mut Store<HostState>, module: &ModuleInner) -> Result<CallBudget> {
    let limits = &store.data().limits;
    let budget =
        CallBudget { fuel: limits.fuel_per_call.unwrap_or(u64::MAX), deadline: limits.deadline.unwrap_or_default() };
    module.ticker.ensure_running();
    let ticks = module.ticker.ticks(limits.deadline);
    store.set_fuel(budget.fuel).map_err(|e| Error::Runtime { message: format!("{e:?}") })?;
    store.set_epoch_deadline(ticks);
    Ok(budget)
}

impl GlobalValue {
    fn from_val(v: Val) -> Option<GlobalValue> {
        Some(match v {
            Val::I32(x) => GlobalValue::I32(x as u32),
            Val::I64(x) => GlobalValue::I64(x as u64),
            Val::F32(x) => GlobalValue::F32(x),
            Val::F64(x) => GlobalValue::F64(x),
            Val::V128(x) => GlobalValue::V128(x.as_u128()),
            _ => return None,
        })
    }

    fn to_val(self) -> Val {
        match self {
            GlobalValue::I32(x) => Val::I32(x as i32),
            GlobalValue::I64(x) => Val::I64(x as i64),
            GlobalValue::F32(x) => Val::F32(x),
            GlobalValue::F64(x) => Val::F64(x),
            GlobalValue::V128(x) => Val::V128(x.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{full_copy_is_cheaper, runs, union};

    #[test]
    fn page_lists_merge_and_split_into_runs() {
        let mut out = vec![99];
        union(&[1, 4, 5, 9], &[0, 4, 6, 10, 11], &mut out);
        assert_eq!(out, [0, 1, 4, 5, 6, 9, 10, 11]);
        union(&[], &[3], &mut out);
        assert_eq!(out, [3]);
        let pages = [0, 1, 4, 5, 6, 9, 10, 11, 20];
        assert_eq!(runs(&pages).collect::<Vec<_>>(), [0..2, 4..7, 9..12, 20..21]);
        assert_eq!(runs(&[]).count(), 0);
    }

    #[test]
    fn a_full_copy_wins_for_scattered_pages_past_half_and_long_runs_near_all() {
        // 100 pages: 50 scattered pages cost as much as all 100; 90 pages in one run do not.
        assert!(full_copy_is_cheaper(50, 50, 100));
        assert!(!full_copy_is_cheaper(49, 49, 100));
        assert!(!full_copy_is_cheaper(90, 1, 100));
        assert!(full_copy_is_cheaper(99, 1, 100));
    }
}
