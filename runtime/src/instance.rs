//! [`Env`]: one live instance of an environment (owns its store), and the calls into it.

use wasmgym_abi::rng::Rng;
use wasmgym_abi::wire::{self, Status};
use wasmgym_abi::{Action, EnvSpec, Observation, ResetRequest, exports};
use wasmtime::{Extern, Global, Memory, ResourceLimiter, Store, TypedFunc, Val};

use crate::error::{CallBudget, Error, HostTrap, Result, TrapContext, from_wasmtime};
use crate::limits::Limits;
use crate::module::EnvModule;
use crate::rewrite::{GLOBAL_EXPORT, MEMORY_EXPORT};
use crate::snapshot::{GlobalValue, Snapshot, SnapshotData};

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
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.memory_bytes {
            return Err(wasmtime::Error::new(HostTrap::MemoryLimit {
                requested: desired as u64,
                limit: self.limits.memory_bytes,
            }));
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

/// The result of `reset` or `step`, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The observation, in the spec's observation space.
    pub observation: Observation,
    /// This step's reward for each player (empty after `reset`).
    pub rewards: Vec<f64>,
    /// The episode reached a terminal state.
    pub terminated: bool,
    /// The episode was cut short (`max_episode_steps`).
    pub truncated: bool,
    /// Extra information as a JSON object (`"{}"` when the environment gives none).
    pub info: String,
    /// Whose turn it is next, or `None` once the episode is over.
    pub current_player: Option<u32>,
}

impl Transition {
    /// The reward of `player` in this step (0 when there is none).
    pub fn reward(&self, player: u32) -> f64 {
        self.rewards.get(player as usize).copied().unwrap_or(0.0)
    }

    /// Whether the episode ended (terminated or truncated).
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

struct Exports {
    alloc: TypedFunc<i32, i32>,
    spec: TypedFunc<(), i64>,
    reset: TypedFunc<(i32, i32), i64>,
    step: TypedFunc<(i32, i32), i64>,
    legal_actions: TypedFunc<(), i64>,
    render: TypedFunc<(), i64>,
    memories: Vec<Memory>,
    globals: Vec<Global>,
}

#[derive(Clone, Copy)]
enum Call {
    Spec,
    Reset,
    Step,
    LegalActions,
    Render,
}

/// A live environment instance: owns its wasmtime store, so it is per episode or per branch.
///
/// Create with [`EnvModule::instantiate`]; branch with [`Env::snapshot`], [`Env::restore`] and
/// [`Env::fork`]. Calls that fail with an error that [poisons](Error::poisons) leave the instance
/// refusing every call but `restore` (which makes it usable again) until it is dropped.
pub struct Env {
    module: EnvModule,
    store: Store<HostState>,
    exports: Exports,
    poisoned: Option<String>,
}

impl Env {
    pub(crate) fn new(module: &EnvModule, limits: Limits) -> Result<Env> {
        let (store, exports) = instantiate(module, limits, true)?;
        Ok(Env { module: module.clone(), store, exports, poisoned: None })
    }

    /// The module this instance runs.
    pub fn module(&self) -> &EnvModule {
        &self.module
    }

    /// The environment's spec.
    pub fn spec(&self) -> &EnvSpec {
        self.module.spec()
    }

    /// The limits this instance runs under.
    pub fn limits(&self) -> &Limits {
        &self.store.data().limits
    }

    /// Replaces the limits; memory already in use is kept even if over the new cap.
    pub fn set_limits(&mut self, limits: Limits) {
        self.store.data_mut().limits = limits;
    }

    /// Starts an episode. `seed` reseeds the host RNG (otherwise its stream continues); `options` is
    /// a JSON document the environment interprets.
    pub fn reset(&mut self, seed: Option<u64>, options: Option<&str>) -> Result<Transition> {
        let mut request = Vec::new();
        ResetRequest { seed, options: options.unwrap_or("").to_owned() }.encode(&mut request);
        let saved_rng = self.store.data().vars.rng.clone();
        if let Some(seed) = seed {
            self.store.data_mut().vars.rng = Rng::seed_from_u64(seed);
        }
        let result = self.invoke(Call::Reset, &request).and_then(|payload| self.transition(&payload));
        match &result {
            Ok(_) => self.store.data_mut().vars.steps = 0,
            Err(e) if !e.poisons() => self.store.data_mut().vars.rng = saved_rng,
            Err(_) => {}
        }
        result
    }

    /// Applies an action: an `i64` for discrete action spaces, a string for text ones.
    ///
    /// An illegal action gets [`Error::IllegalAction`] and leaves the state unchanged.
    pub fn step(&mut self, action: impl Into<Action>) -> Result<Transition> {
        let action = action.into();
        let mut request = Vec::new();
        action.encode(&mut request);
        let payload = match self.invoke(Call::Step, &request) {
            Err(Error::IllegalAction { message, .. }) => {
                return Err(Error::IllegalAction { action: action.to_string(), message });
            }
            other => other?,
        };
        let transition = self.transition(&payload)?;
        self.store.data_mut().vars.steps += 1;
        Ok(transition)
    }

    /// The legal discrete actions now, ascending (empty once the episode is over, and for text
    /// action spaces, where any text in the space is legal).
    pub fn legal_actions(&mut self) -> Result<Vec<i64>> {
        let payload = self.invoke(Call::LegalActions, &[])?;
        self.protocol(wire::decode_legal_actions(&payload).map_err(|e| e.0))
    }

    /// A text rendering of the current state.
    pub fn render(&mut self) -> Result<String> {
        let payload = self.invoke(Call::Render, &[])?;
        self.protocol(String::from_utf8(payload).map_err(|e| format!("render output is not UTF-8: {e}")))
    }

    /// Whose turn it is, or `None` before `reset` and once the episode is over.
    pub fn current_player(&self) -> Option<u32> {
        match self.store.data().vars.episode {
            Episode::Running { player } => Some(player),
            _ => None,
        }
    }

    /// Whether an episode is running (reset was called and it has not ended).
    pub fn is_running(&self) -> bool {
        matches!(self.store.data().vars.episode, Episode::Running { .. })
    }

    /// Steps taken in the current episode.
    pub fn steps(&self) -> u64 {
        self.store.data().vars.steps
    }

    /// Fuel used by this instance so far (part of its snapshot, so restores rewind it).
    pub fn fuel_consumed(&self) -> u64 {
        self.store.data().vars.fuel_consumed
    }

    /// What the guest wrote to stdout (bounded by `Limits::output_bytes`).
    pub fn stdout(&self) -> &[u8] {
        &self.store.data().vars.stdout
    }

    /// What the guest wrote to stderr (bounded by `Limits::output_bytes`).
    pub fn stderr(&self) -> &[u8] {
        &self.store.data().vars.stderr
    }

    /// Total size of the instance's linear memories, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.exports.memories.iter().map(|m| m.data_size(&self.store) as u64).sum()
    }

    /// Whether an earlier error left the instance refusing calls until a restore.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// A complete copy of the instance's state: every memory, every mutable global (exported or
    /// not) and the host state (RNG, virtual clock, step counter, captured output, fuel used).
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        self.check_usable()?;
        let memories = self.exports.memories.iter().map(|m| m.data(&self.store).to_vec()).collect();
        let mut globals = Vec::with_capacity(self.exports.globals.len());
        for g in &self.exports.globals {
            globals.push(GlobalValue::from_val(g.get(&mut self.store)).ok_or_else(|| Error::Unsupported {
                message: "a mutable global of reference type cannot be snapshotted".into(),
            })?);
        }
        Ok(Snapshot::new(SnapshotData {
            module: self.module.hash(),
            memories,
            globals,
            vars: self.store.data().vars.clone(),
        }))
    }

    /// Puts the instance in the exact state `snapshot` holds. Works on a poisoned instance, which
    /// becomes usable again. A snapshot of another module is refused with [`Error::BadSnapshot`]
    /// and changes nothing.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let data = snapshot.data();
        self.check_compatible(data)?;
        // Memories cannot shrink: start from a fresh instance if any is larger than the snapshot's.
        let larger = self.exports.memories.iter().zip(&data.memories).any(|(m, s)| m.data_size(&self.store) > s.len());
        if larger {
            let limits = self.store.data().limits.clone();
            let (store, exports) = instantiate(&self.module, limits, false)?;
            self.store = store;
            self.exports = exports;
        }
        self.poisoned = None;
        let result = self.write_state(data);
        if let Err(e) = &result {
            self.poisoned = Some(format!("restore failed: {e}"));
        }
        result
    }

    /// A new, independent instance in exactly this instance's state.
    pub fn fork(&mut self) -> Result<Env> {
        let snapshot = self.snapshot()?;
        let (store, exports) = instantiate(&self.module, self.store.data().limits.clone(), false)?;
        let mut child = Env { module: self.module.clone(), store, exports, poisoned: None };
        child.write_state(snapshot.data())?;
        Ok(child)
    }

    /// A BLAKE3 hash of the state that determines the future: memories, mutable globals, RNG,
    /// virtual clock, step counter and episode status (not captured output or fuel used). Equal
    /// hashes mean identical futures under identical calls, so it deduplicates exactly.
    ///
    /// It hashes the machine, not the game: the same game state reached by another path, or after
    /// other queries (each call writes the guest's output buffer), can hash differently.
    pub fn state_hash(&mut self) -> Result<[u8; 32]> {
        self.check_usable()?;
        let mut h = blake3::Hasher::new();
        for m in &self.exports.memories {
            h.update(&(m.data_size(&self.store) as u64).to_le_bytes());
            h.update(m.data(&self.store));
        }
        for g in &self.exports.globals {
            if let Some(v) = GlobalValue::from_val(g.get(&mut self.store)) {
                h.update(&v.to_bits().to_le_bytes());
            }
        }
        let vars = &self.store.data().vars;
        h.update(&vars.rng.state_bytes());
        h.update(&vars.clock_ns.to_le_bytes());
        h.update(&vars.steps.to_le_bytes());
        let episode = match vars.episode {
            Episode::NotStarted => u64::MAX,
            Episode::Running { player } => player as u64,
            Episode::Over => u64::MAX - 1,
        };
        h.update(&episode.to_le_bytes());
        Ok(*h.finalize().as_bytes())
    }

    pub(crate) fn read_spec(mut self) -> Result<EnvSpec> {
        let payload = self.invoke(Call::Spec, &[])?;
        serde_json::from_slice(&payload)
            .map_err(|e| Error::Protocol { message: format!("wasmgym_spec returned invalid JSON: {e}") })
    }

    fn check_usable(&self) -> Result<()> {
        match &self.poisoned {
            Some(cause) => Err(Error::Poisoned { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    fn check_compatible(&self, data: &SnapshotData) -> Result<()> {
        let bad = |reason: String| Err(Error::BadSnapshot { reason });
        if data.module != self.module.hash() {
            return bad(format!(
                "it belongs to module {}, this instance runs module {}: restore it into an instance of its own module",
                crate::module::hex(&data.module[..8]),
                crate::module::hex(&self.module.hash()[..8])
            ));
        }
        if data.memories.len() != self.exports.memories.len() || data.globals.len() != self.exports.globals.len() {
            return bad(format!(
                "it holds {} memories and {} globals, the module has {} and {}",
                data.memories.len(),
                data.globals.len(),
                self.exports.memories.len(),
                self.exports.globals.len()
            ));
        }
        let limit = self.store.data().limits.memory_bytes;
        let total: u64 = data.memories.iter().map(|m| m.len() as u64).sum();
        if total > limit {
            return Err(Error::MemoryLimit { requested: total, limit });
        }
        Ok(())
    }

    /// Writes a compatible snapshot's state into this instance, whose memories are no larger.
    fn write_state(&mut self, data: &SnapshotData) -> Result<()> {
        let budget = CallBudget { fuel: 0, deadline: Default::default() };
        for (memory, bytes) in self.exports.memories.iter().zip(&data.memories) {
            let current = memory.data_size(&self.store);
            if current < bytes.len() {
                let pages = ((bytes.len() - current) / 65536) as u64;
                memory.grow(&mut self.store, pages).map_err(|e| from_wasmtime(e, budget, TrapContext::default()))?;
            }
            memory.data_mut(&mut self.store).copy_from_slice(bytes);
        }
        for (global, value) in self.exports.globals.iter().zip(&data.globals) {
            global.set(&mut self.store, value.to_val()).map_err(|e| Error::BadSnapshot {
                reason: format!("a global does not accept the snapshot's value: {e}"),
            })?;
        }
        self.store.data_mut().vars = data.vars.clone();
        Ok(())
    }

    /// Calls an ABI export with `request`, returning the payload of an `Ok` output.
    fn invoke(&mut self, call: Call, request: &[u8]) -> Result<Vec<u8>> {
        self.check_usable()?;
        let ticks = self.module.inner.epoch_ticks(self.store.data().limits.deadline);
        let budget = arm(&mut self.store, ticks)?;
        let result = self.invoke_inner(call, request, budget);
        let left = self.store.get_fuel().unwrap_or(0);
        self.store.data_mut().vars.fuel_consumed += budget.fuel.saturating_sub(left);
        match result {
            Ok((Status::Ok, payload)) => Ok(payload),
            Ok((status, payload)) => {
                let message = String::from_utf8_lossy(&payload).into_owned();
                Err(match status {
                    Status::IllegalAction => Error::IllegalAction { action: String::new(), message },
                    Status::BadRequest => Error::InvalidCall { message },
                    _ => Error::Guest { message },
                })
            }
            Err(e) => {
                if e.poisons() {
                    self.poisoned = Some(e.to_string());
                }
                Err(e)
            }
        }
    }

    fn invoke_inner(&mut self, call: Call, request: &[u8], budget: CallBudget) -> Result<(Status, Vec<u8>)> {
        let memory = self.exports.memories[0];
        let (ptr, len) = if request.is_empty() {
            (0, 0)
        } else {
            let ptr =
                self.exports.alloc.call(&mut self.store, request.len() as i32).map_err(|e| self.trap(e, budget))?;
            memory.write(&mut self.store, ptr as u32 as usize, request).map_err(|_| Error::Protocol {
                message: format!("{} returned {ptr:#x}, outside memory for {} bytes", exports::ALLOC, request.len()),
            })?;
            (ptr, request.len() as i32)
        };
        let e = &self.exports;
        let packed = match call {
            Call::Spec => e.spec.call(&mut self.store, ()),
            Call::Reset => e.reset.call(&mut self.store, (ptr, len)),
            Call::Step => e.step.call(&mut self.store, (ptr, len)),
            Call::LegalActions => e.legal_actions.call(&mut self.store, ()),
            Call::Render => e.render.call(&mut self.store, ()),
        }
        .map_err(|e| self.trap(e, budget))?;
        let (out_ptr, out_len) = wasmgym_abi::unpack(packed);
        let data = memory.data(&self.store);
        let out = (out_ptr as usize)
            .checked_add(out_len as usize)
            .and_then(|end| data.get(out_ptr as usize..end))
            .ok_or_else(|| Error::Protocol {
                message: format!("output at {out_ptr:#x} of {out_len} bytes lies outside the guest's memory"),
            })?;
        let (&status, payload) = out.split_first().ok_or_else(|| Error::Protocol { message: "empty output".into() })?;
        let status = Status::from_byte(status)
            .ok_or_else(|| Error::Protocol { message: format!("unknown status byte {status} in output") })?;
        Ok((status, payload.to_vec()))
    }

    /// Classifies an error from a guest call, with what the instance shows after it.
    fn trap(&mut self, err: wasmtime::Error, budget: CallBudget) -> Error {
        let escaped = self.module.inner.layout.stack_pointer.is_some_and(|i| {
            let size = self.exports.memories[0].data_size(&self.store) as u64;
            matches!(self.exports.globals[i].get(&mut self.store), Val::I32(sp) if sp as u32 as u64 > size)
        });
        from_wasmtime(err, budget, TrapContext { shadow_stack_escaped: escaped })
    }

    /// Decodes a transition payload and records the episode status it reports.
    fn transition(&mut self, payload: &[u8]) -> Result<Transition> {
        let t = self.protocol(wire::Transition::decode(payload).map_err(|e| e.0))?;
        let observation =
            self.protocol(Observation::decode(&self.spec().observation_space, &t.observation).map_err(|e| e.0))?;
        self.store.data_mut().vars.episode = match t.current_player {
            Some(player) => Episode::Running { player },
            None => Episode::Over,
        };
        Ok(Transition {
            observation,
            rewards: t.rewards,
            terminated: t.terminated,
            truncated: t.truncated,
            info: if t.info.is_empty() { "{}".into() } else { t.info },
            current_player: t.current_player,
        })
    }

    /// Turns a decoding failure of guest output into a (poisoning) protocol error.
    fn protocol<T>(&mut self, result: std::result::Result<T, String>) -> Result<T> {
        result.map_err(|message| {
            let e = Error::Protocol { message };
            self.poisoned = Some(e.to_string());
            e
        })
    }
}

/// Sets the fuel and deadline for one call.
fn arm(store: &mut Store<HostState>, ticks: u64) -> Result<CallBudget> {
    let limits = &store.data().limits;
    let budget =
        CallBudget { fuel: limits.fuel_per_call.unwrap_or(u64::MAX), deadline: limits.deadline.unwrap_or_default() };
    store.set_fuel(budget.fuel).map_err(|e| Error::Runtime { message: format!("{e:?}") })?;
    store.set_epoch_deadline(ticks);
    Ok(budget)
}

/// A store and instance of `module`; runs the guest's `_initialize` when `initialize`.
fn instantiate(module: &EnvModule, limits: Limits, initialize: bool) -> Result<(Store<HostState>, Exports)> {
    let inner = &module.inner;
    let engine = inner.pre.module().engine();
    let ticks = inner.epoch_ticks(limits.deadline);
    let mut store = Store::new(engine, HostState { vars: HostVars::new(), limits, memory: None });
    store.limiter(|state| state);
    let budget = arm(&mut store, ticks)?;
    let instance = inner.pre.instantiate(&mut store).map_err(|e| from_wasmtime(e, budget, TrapContext::default()))?;
    let missing = |name: &str| Error::MissingExport { name: name.into(), expected: "checked at load".into() };
    let func =
        |store: &mut Store<HostState>, name: &str| instance.get_func(&mut *store, name).ok_or_else(|| missing(name));
    macro_rules! typed {
        ($name:expr) => {
            func(&mut store, $name)?.typed(&store).map_err(|_| missing($name))?
        };
    }
    let memories = (0..inner.layout.memories)
        .map(|i| match instance.get_export(&mut store, &format!("{MEMORY_EXPORT}{i}")) {
            Some(Extern::Memory(m)) => Ok(m),
            _ => Err(missing("memory")),
        })
        .collect::<Result<Vec<_>>>()?;
    let globals = inner
        .layout
        .mutable_globals
        .iter()
        .map(|i| instance.get_global(&mut store, &format!("{GLOBAL_EXPORT}{i}")).ok_or_else(|| missing("global")))
        .collect::<Result<Vec<_>>>()?;
    let exports = Exports {
        alloc: typed!(exports::ALLOC),
        spec: typed!(exports::SPEC),
        reset: typed!(exports::RESET),
        step: typed!(exports::STEP),
        legal_actions: typed!(exports::LEGAL_ACTIONS),
        render: typed!(exports::RENDER),
        memories,
        globals,
    };
    store.data_mut().memory = Some(exports.memories[0]);
    if initialize && let Some(init) = instance.get_func(&mut store, "_initialize") {
        let init = init.typed::<(), ()>(&store).map_err(|_| missing("_initialize"))?;
        init.call(&mut store, ()).map_err(|e| from_wasmtime(e, budget, TrapContext::default()))?;
    }
    Ok((store, exports))
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

    fn to_val(&self) -> Val {
        match *self {
            GlobalValue::I32(x) => Val::I32(x as i32),
            GlobalValue::I64(x) => Val::I64(x as i64),
            GlobalValue::F32(x) => Val::F32(x),
            GlobalValue::F64(x) => Val::F64(x),
            GlobalValue::V128(x) => Val::V128(x.into()),
        }
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("env", &self.spec().name)
            .field("steps", &self.steps())
            .field("current_player", &self.current_player())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}
