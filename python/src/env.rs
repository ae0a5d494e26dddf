//! `Env` and `Snapshot`: one live instance and its complete state, as Python objects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use wasmgym::{Action, EnvModule, Limits, Observation, Runtime, RuntimeConfig, Space, Transition};

use crate::errors;

/// The process's runtime, made on first use (one per process: after `os.fork` the child makes
/// its own, since the parent's epoch thread does not exist there).
pub fn runtime() -> PyResult<&'static Runtime> {
    static RUNTIMES: OnceLock<Mutex<HashMap<u32, &'static Runtime>>> = OnceLock::new();
    let mut runtimes = RUNTIMES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if let Some(runtime) = runtimes.get(&pid) {
        return Ok(runtime);
    }
    let config =
        RuntimeConfig { compile_cache: cache_dir("modules"), snapshot_key: snapshot_key()?, ..Default::default() };
    let runtime: &'static Runtime = Box::leak(Box::new(Runtime::with_config(config).map_err(errors::runtime)?));
    runtimes.insert(pid, runtime);
    Ok(runtime)
}

/// The key that signs snapshot bytes (`Env.snapshot_to_bytes`): `$WASMGYM_SNAPSHOT_KEY`, 64 hex
/// digits, read when the process's runtime is made; unset or empty: none.
fn snapshot_key() -> PyResult<Option<wasmgym::SnapshotKey>> {
    let Some(hex) = std::env::var("WASMGYM_SNAPSHOT_KEY").ok().filter(|h| !h.is_empty()) else { return Ok(None) };
    let bad = || {
        PyValueError::new_err(
            "WASMGYM_SNAPSHOT_KEY must be 64 hex digits (32 bytes), such as `openssl rand -hex 32` prints",
        )
    };
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(Some(wasmgym::SnapshotKey(key)))
}

pub use wasmgym::cache_dir;

/// A compiled module by built-in name or path, compiled once per process (and file version).
pub fn module(source: &str) -> PyResult<EnvModule> {
    // Keyed by process, name or path, and a file's modification time and size: a rebuilt file is
    // loaded again.
    type Key = (u32, String, Option<(std::time::SystemTime, u64)>);
    static MODULES: OnceLock<Mutex<HashMap<Key, EnvModule>>> = OnceLock::new();
    let stamp = std::fs::metadata(source).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
    let key = (std::process::id(), source.to_owned(), stamp);
    if let Some(module) = MODULES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(module.clone());
    }
    let runtime = runtime()?;
    let builtin = wasmgym_builtin::find(source).or_else(|| wasmgym_builtin::find_program(source));
    let module = match builtin {
        Some(builtin) => runtime.load(builtin.bytes).map_err(errors::runtime)?,
        None if looks_like_path(source) => runtime.load_file(source).map_err(errors::runtime)?,
        None => {
            return Err(PyValueError::new_err(format!(
                "unknown environment `{source}`: the built-ins are {}; a path to a .wasm or .wat file works too",
                wasmgym_builtin::names().join(", ")
            )));
        }
    };
    MODULES.get().expect("made above").lock().unwrap_or_else(|e| e.into_inner()).insert(key, module.clone());
    Ok(module)
}

fn looks_like_path(arg: &str) -> bool {
    let path = std::path::Path::new(arg);
    path.exists() || arg.contains('/') || path.extension().is_some_and(|e| e == "wasm" || e == "wat")
}

/// Limits from keyword arguments, over the runtime's defaults. `0` for fuel or the deadline
/// means none.
pub fn limits(fuel_per_call: Option<u64>, deadline_s: Option<f64>, memory_mib: Option<u64>) -> PyResult<Limits> {
    let mut limits = Limits::default();
    if let Some(fuel) = fuel_per_call {
        limits.fuel_per_call = (fuel > 0).then_some(fuel);
    }
    if let Some(seconds) = deadline_s {
        if !seconds.is_finite() || !(0.0..=1e9).contains(&seconds) {
            return Err(PyValueError::new_err(format!(
                "deadline_s = {seconds} is not a duration: give seconds between 0 (no deadline) and 1e9"
            )));
        }
        limits.deadline = (seconds > 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    if let Some(mib) = memory_mib {
        if mib == 0 || mib > 65_536 {
            return Err(PyValueError::new_err(format!(
                "memory_mib = {mib} is out of range: give 1 to 65536 (wasm32 memories are at most 4 GiB each)"
            )));
        }
        limits.memory_bytes = mib << 20;
    }
    Ok(limits)
}

/// A Python int (or anything with `__index__`, such as a numpy integer) or str as an action.
pub fn action(value: &Bound<'_, PyAny>) -> PyResult<Action> {
    if let Ok(n) = value.extract::<i64>() {
        return Ok(Action::Discrete(n));
    }
    if let Ok(text) = value.extract::<String>() {
        return Ok(Action::Text(text));
    }
    Err(PyTypeError::new_err(format!(
        "an action is an int (Discrete action spaces) or a str (Text action spaces), not {}",
        value.get_type().name()?
    )))
}

/// An action as Python: int or str.
pub fn action_to_py<'py>(py: Python<'py>, action: &Action) -> PyResult<Bound<'py, PyAny>> {
    Ok(match action {
        Action::Discrete(a) => a.into_pyobject(py)?.into_any(),
        Action::Text(t) => t.into_pyobject(py)?.into_any(),
    })
}

/// The shape of a `Box` observation space (empty for the others).
pub fn box_shape(space: &Space) -> Vec<usize> {
    match space {
        Space::Box { shape, .. } => shape.iter().map(|&d| d as usize).collect(),
        _ => Vec::new(),
    }
}

/// An observation as Python: a numpy array of the space's dtype and shape, an int, an int64 array
/// (multi-discrete) or a str.
pub fn observation_to_py<'py>(py: Python<'py>, obs: &Observation, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    // Copied into an array numpy allocates (no Rust buffer for numpy to keep alive).
    fn shaped<'py, T: numpy::Element>(py: Python<'py>, v: &[T], shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
        let array = PyArray1::from_slice(py, v);
        if shape.len() == 1 { Ok(array.into_any()) } else { Ok(array.reshape(shape.to_vec())?.into_any()) }
    }
    Ok(match obs {
        Observation::F32(v) => shaped(py, v, shape)?,
        Observation::F64(v) => shaped(py, v, shape)?,
        Observation::I32(v) => shaped(py, v, shape)?,
        Observation::Discrete(d) => d.into_pyobject(py)?.into_any(),
        Observation::MultiDiscrete(v) => PyArray1::from_slice(py, v).into_any(),
        Observation::Text(t) => t.into_pyobject(py)?.into_any(),
    })
}

/// A transition as the tuple `(observation, rewards, terminated, truncated, info_json,
/// current_player)`.
fn transition_to_py<'py>(py: Python<'py>, t: &Transition, shape: &[usize]) -> PyResult<Bound<'py, PyTuple>> {
    let observation = observation_to_py(py, &t.observation, shape)?;
    (observation, &t.rewards, t.terminated, t.truncated, t.info.as_str(), t.current_player).into_pyobject(py)
}

/// Gymnasium's `info` after a reset or step: the environment's own info (a JSON object; any
/// other JSON value under the key "info"), `current_player`, `rewards` (every player's),
/// `legal_actions` and, for Discrete action spaces of at most 65,536 actions, `action_mask`.
fn info_to_py<'py>(py: Python<'py>, t: &Transition, actions: &[Action], meta: &Meta) -> PyResult<Bound<'py, PyDict>> {
    let info = match t.info.as_str() {
        "{}" | "" => PyDict::new(py),
        json => {
            let value = py.import("json")?.call_method1("loads", (json,))?;
            match value.cast_into::<PyDict>() {
                Ok(dict) => dict,
                Err(e) => {
                    let dict = PyDict::new(py);
                    dict.set_item("info", e.into_inner())?;
                    dict
                }
            }
        }
    };
    info.set_item(intern!(py, "current_player"), t.current_player)?;
    match t.rewards.is_empty() {
        true => info.set_item(intern!(py, "rewards"), vec![0.0; meta.players as usize])?,
        false => info.set_item(intern!(py, "rewards"), &t.rewards)?,
    }
    let legal: Vec<Bound<'py, PyAny>> = actions.iter().map(|a| action_to_py(py, a)).collect::<PyResult<_>>()?;
    info.set_item(intern!(py, "legal_actions"), legal)?;
    if let Some(n) = meta.mask {
        let mut mask = vec![0i8; n];
        for a in actions {
            if let Action::Discrete(a) = a
                && let Some(slot) = usize::try_from(*a).ok().and_then(|a| mask.get_mut(a))
            {
                *slot = 1;
            }
        }
        info.set_item(intern!(py, "action_mask"), PyArray1::from_slice(py, &mask))?;
    }
    Ok(info)
}

/// One live environment instance (`wasmgym.make` wraps it in a `gymnasium.Env`).
///
/// Safe to share between Python threads: calls on one `Env` take turns (a lock), and each call
/// into the guest releases the GIL, so envs in different threads step in parallel.
#[pyclass(module = "wasmgym._core", frozen)]
pub struct Env {
    env: Mutex<wasmgym::Env>,
    meta: Arc<Meta>,
}

/// What never changes between an env and its forks.
struct Meta {
    spec_json: String,
    shape: Vec<usize>,
    source: String,
    players: u32,
    /// The size of an action mask: a Discrete action space's `n`, when it is at most 65,536.
    mask: Option<usize>,
    text: bool,
}

impl Env {
    pub fn new(env: wasmgym::Env, source: String) -> PyResult<Env> {
        let spec = env.spec();
        let meta = Meta {
            spec_json: serde_json::to_string(spec).map_err(|e| PyValueError::new_err(e.to_string()))?,
            shape: box_shape(&spec.observation_space),
            source,
            players: spec.players,
            mask: match spec.action_space {
                Space::Discrete { n } if n <= 1 << 16 => Some(n as usize),
                _ => None,
            },
            text: matches!(spec.action_space, Space::Text { .. }),
        };
        Ok(Env { env: Mutex::new(env), meta: Arc::new(meta) })
    }

    /// A step and the actions for the player to move next (none once the episode is over), in
    /// one call into the guest where the module allows (not for text action spaces).
    fn step_and_actions(&self, env: &mut wasmgym::Env, action: Action) -> wasmgym::Result<(Transition, Vec<Action>)> {
        if self.meta.text {
            let transition = env.step(action)?;
            let actions = if transition.done() { Vec::new() } else { env.actions()? };
            return Ok((transition, actions));
        }
        let (transition, legal) = env.step_and_legal_actions(action)?;
        Ok((transition, legal.into_iter().map(Action::Discrete).collect()))
    }

    /// The instance, for one call (a poisoned lock only means another thread panicked between
    /// calls: the instance's own state is guarded by the runtime's poisoning).
    pub fn lock(&self) -> MutexGuard<'_, wasmgym::Env> {
        self.env.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the instance with the GIL released.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut wasmgym::Env) -> wasmgym::Result<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| f(&mut self.lock())).map_err(errors::runtime)
    }
}

#[pymethods]
impl Env {
    /// A new instance of a built-in environment (by name) or of a `.wasm` / `.wat` file, under
    /// the given limits (`fuel_per_call`, `deadline_s`: 0 for none; `memory_mib`).
    #[new]
    #[pyo3(signature = (source, *, fuel_per_call=None, deadline_s=None, memory_mib=None))]
    fn py_new(
        py: Python<'_>,
        source: &str,
        fuel_per_call: Option<u64>,
        deadline_s: Option<f64>,
        memory_mib: Option<u64>,
    ) -> PyResult<Env> {
        let limits = limits(fuel_per_call, deadline_s, memory_mib)?;
        let module = module(source)?;
        let env = py.detach(|| module.instantiate_with(limits)).map_err(errors::runtime)?;
        Env::new(env, source.to_owned())
    }

    /// Where the environment came from: a built-in name or the path given.
    #[getter]
    fn source(&self) -> &str {
        &self.meta.source
    }

    /// The environment's spec as JSON (`name`, `players`, spaces, `reward_range`, ...).
    #[getter]
    fn spec_json(&self) -> &str {
        &self.meta.spec_json
    }

    /// Starts an episode: `seed` seeds the environment's only source of randomness; `options` is
    /// a JSON object the environment reads (or None). Returns `(observation, rewards,
    /// terminated, truncated, info_json, current_player)`.
    #[pyo3(signature = (seed=None, options=None))]
    fn reset<'py>(&self, py: Python<'py>, seed: Option<u64>, options: Option<&str>) -> PyResult<Bound<'py, PyTuple>> {
        let options = options.map(str::to_owned);
        let t = self.with(py, |env| env.reset(seed, options.as_deref()))?;
        transition_to_py(py, &t, &self.meta.shape)
    }

    /// Takes one action (an int, or a str for text action spaces). Returns `(observation,
    /// rewards, terminated, truncated, info_json, current_player)`. An illegal action raises
    /// `IllegalActionError` and changes nothing.
    fn step<'py>(&self, py: Python<'py>, action: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
        let action = self::action(action)?;
        let t = self.with(py, |env| env.step(action))?;
        transition_to_py(py, &t, &self.meta.shape)
    }

    /// `reset` as Gymnasium's wrapper reports it: `(observation, info)` (see `info` in
    /// `wasmgym.make`'s docs: `current_player`, `rewards`, `legal_actions`, `action_mask`).
    #[pyo3(signature = (seed=None, options=None))]
    fn reset_full<'py>(
        &self,
        py: Python<'py>,
        seed: Option<u64>,
        options: Option<&str>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let options = options.map(str::to_owned);
        let (transition, actions) = self.with(py, |env| {
            let transition = env.reset(seed, options.as_deref())?;
            let actions = if transition.done() { Vec::new() } else { env.actions()? };
            Ok((transition, actions))
        })?;
        let observation = observation_to_py(py, &transition.observation, &self.meta.shape)?;
        (observation, info_to_py(py, &transition, &actions, &self.meta)?).into_pyobject(py)
    }

    /// `step` as Gymnasium's wrapper reports it: `(observation, reward of the player who acted,
    /// terminated, truncated, info)`, `info` as for `reset_full`, with the actions for the player
    /// to move next (one call into the guest for both where the module allows).
    fn step_full<'py>(&self, py: Python<'py>, action: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
        let action = self::action(action)?;
        let (reward, transition, actions) = self.with(py, |env| {
            let player = env.current_player().unwrap_or(0);
            let (transition, actions) = self.step_and_actions(env, action)?;
            Ok((transition.reward(player), transition, actions))
        })?;
        let observation = observation_to_py(py, &transition.observation, &self.meta.shape)?;
        let info = info_to_py(py, &transition, &actions, &self.meta)?;
        (observation, reward, transition.terminated, transition.truncated, info).into_pyobject(py)
    }

    /// The legal discrete actions now (every action when the environment restricts none).
    fn legal_actions(&self, py: Python<'_>) -> PyResult<Vec<i64>> {
        self.with(py, |env| env.legal_actions())
    }

    /// The actions a search or an agent may take now: the legal discrete actions, or the valid
    /// commands of a text environment that lists them.
    fn actions<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let actions = self.with(py, |env| env.actions())?;
        actions.iter().map(|a| action_to_py(py, a)).collect()
    }

    /// The valid commands of a text environment now, or None if it lists none.
    fn text_actions(&self, py: Python<'_>) -> PyResult<Option<Vec<String>>> {
        self.with(py, |env| env.text_actions())
    }

    /// The current observation without stepping, or None if the environment does not export it.
    fn observe<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let obs = self.with(py, |env| env.observe())?;
        obs.map(|o| observation_to_py(py, &o, &self.meta.shape)).transpose()
    }

    /// The environment's text picture of the state.
    fn render(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |env| env.render())
    }

    /// Whose turn it is, or None once the episode is over (or before reset).
    #[getter]
    fn current_player(&self) -> Option<u32> {
        self.lock().current_player()
    }

    /// Steps taken in this episode.
    #[getter]
    fn steps(&self) -> u64 {
        self.lock().steps()
    }

    /// Fuel the instance has used in all.
    #[getter]
    fn fuel_consumed(&self) -> u64 {
        self.lock().fuel_consumed()
    }

    /// Bytes of linear memory the instance has.
    #[getter]
    fn memory_bytes(&self) -> u64 {
        self.lock().memory_bytes()
    }

    /// An earlier call stopped the guest mid-way; only `restore` works until a snapshot is restored.
    #[getter]
    fn poisoned(&self) -> bool {
        self.lock().is_poisoned()
    }

    /// The complete state (memories, globals, RNG, clock, step count): restore it here or into
    /// any instance of the same module, in this process or another.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Snapshot> {
        Ok(Snapshot(self.with(py, |env| env.snapshot())?))
    }

    /// Returns the instance to `snapshot`'s state exactly (also un-poisons it).
    fn restore(&self, py: Python<'_>, snapshot: &Snapshot) -> PyResult<()> {
        let snap = snapshot.0.clone();
        self.with(py, move |env| env.restore(&snap))
    }

    /// `snapshot`'s bytes written against this module's initial memory: only the pages that
    /// differ from a fresh instance's (connect_four mid-game: 3.6 KB against 28.8 KB for
    /// `Snapshot.to_bytes`). Read them back with `snapshot_from_bytes` on an env of the same module.
    fn snapshot_to_bytes<'py>(&self, py: Python<'py>, snapshot: &Snapshot) -> PyResult<Bound<'py, PyBytes>> {
        let module = self.lock().module().clone();
        let snap = snapshot.0.clone();
        let bytes = py.detach(move || module.snapshot_to_bytes(&snap)).map_err(errors::runtime)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// A snapshot of this env's module from `snapshot_to_bytes` or `Snapshot.to_bytes` output;
    /// corrupt bytes, or bytes of another module's snapshot, raise `BadSnapshotError`.
    fn snapshot_from_bytes(&self, py: Python<'_>, data: &[u8]) -> PyResult<Snapshot> {
        let module = self.lock().module().clone();
        let data = data.to_vec();
        py.detach(move || module.snapshot_from_bytes(&data)).map(Snapshot).map_err(errors::runtime)
    }

    /// An independent copy of this environment in its current state.
    fn fork(&self, py: Python<'_>) -> PyResult<Env> {
        let child = self.with(py, |env| env.fork())?;
        Ok(Env { env: Mutex::new(child), meta: self.meta.clone() })
    }

    /// BLAKE3 of the complete machine state (32 bytes): equal states hash equal.
    fn state_hash<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let hash = self.with(py, |env| env.state_hash())?;
        Ok(PyBytes::new(py, &hash))
    }

    /// The environment's own key of the game state (equal for transpositions), or None.
    fn state_key<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = self.with(py, |env| env.state_key())?;
        Ok(key.map(|k| PyBytes::new(py, &k)))
    }

    /// Plays a uniformly random game from here inside the guest (`max_steps` at most, the
    /// playout's own generator seeded with `seed`), leaving the env where the game ended.
    /// Returns `(steps, returns, terminated, truncated)`.
    #[pyo3(signature = (seed, max_steps=1000))]
    fn rollout(&self, py: Python<'_>, seed: u64, max_steps: u32) -> PyResult<(u32, Vec<f64>, bool, bool)> {
        let request = wasmgym_abi::wire::RolloutRequest { first: None, seed, max_steps };
        let rollout = self.with(py, |env| env.rollout(&request))?;
        match rollout {
            Some(r) => Ok((r.steps, r.returns, r.terminated, r.truncated)),
            None => Err(errors::runtime(wasmgym::Error::InvalidCall {
                message: "this environment does not export wasmgym_rollout: rebuild it with a wasmgym-sdk that has it"
                    .into(),
            })),
        }
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> PyResult<Env> {
        self.fork(py)
    }

    fn __repr__(&self) -> String {
        let env = self.lock();
        format!("<wasmgym._core.Env {} ({}), {} steps>", env.spec().name, self.meta.source, env.steps())
    }
}

/// The complete state of an environment instance: plain data, shareable, picklable (as its
/// checksummed bytes).
#[pyclass(module = "wasmgym._core", frozen)]
#[derive(Clone)]
pub struct Snapshot(pub wasmgym::Snapshot);

#[pymethods]
impl Snapshot {
    /// The snapshot's checksummed, compressed bytes (format `wasmgym._core.SNAPSHOT_FORMAT`), or,
    /// with `WASMGYM_SNAPSHOT_KEY` set, the same signed with the key (format 5), so that processes
    /// with the key restore them.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let key = runtime()?.config().snapshot_key.clone();
        let bytes = py.detach(|| match &key {
            Some(key) => self.0.to_bytes_signed(key),
            None => self.0.to_bytes(),
        });
        Ok(PyBytes::new(py, &bytes))
    }

    /// A snapshot from `to_bytes` output; corrupt or truncated bytes raise `BadSnapshotError`.
    /// With `WASMGYM_SNAPSHOT_KEY` set, bytes signed with another key are refused, and unsigned
    /// ones are read but do not restore.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Snapshot> {
        let key = runtime()?.config().snapshot_key.clone();
        let data = data.to_vec();
        py.detach(move || match &key {
            Some(key) => wasmgym::Snapshot::from_bytes_signed(&data, key),
            None => wasmgym::Snapshot::from_bytes(&data),
        })
        .map(Snapshot)
        .map_err(errors::runtime)
    }

    /// BLAKE3 of the module it belongs to (hex).
    #[getter]
    fn module_hash(&self) -> String {
        self.0.module_hash().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Steps the episode had taken.
    #[getter]
    fn steps(&self) -> u64 {
        self.0.steps()
    }

    /// Bytes of linear memory it describes.
    #[getter]
    fn memory_bytes(&self) -> usize {
        self.0.memory_bytes()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let py = slf.py();
        let from_bytes = py.get_type::<Snapshot>().getattr("from_bytes")?;
        Ok((from_bytes, (slf.get().to_bytes(py)?,)))
    }

    fn __repr__(&self) -> String {
        format!("<wasmgym._core.Snapshot {} steps, {} bytes of memory>", self.0.steps(), self.0.memory_bytes())
    }
}

/// The names of the built-in environments.
#[pyfunction]
pub fn builtin_envs() -> Vec<&'static str> {
    wasmgym_builtin::names()
}
