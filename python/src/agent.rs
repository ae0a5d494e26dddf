//! `Composite` and `CompositeSnapshot`: a composite agent episode (environment, simulated user,
//! tools, checker) as Python objects; `pass_hat` and the built-in scripted evaluation. Replies
//! cross as JSON text, which the pure-Python layer (`wasmgym/agents.py`) turns into objects.

use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use wasmgym_agent::{CompositeModule, UserReply};

use crate::env::{limits, runtime};
use crate::errors;

/// Loads `target`: a built-in composite, a wiring `.json` file, wiring JSON text, or an
/// environment on its own.
fn load(target: &str) -> PyResult<CompositeModule> {
    let (wiring, base) = wasmgym_agent::wiring_for(target).map_err(PyValueError::new_err)?;
    let builtin =
        |name: &str| wasmgym_builtin::find(name).or_else(|| wasmgym_builtin::find_program(name)).map(|g| g.bytes);
    let bytes_of = |name: &str| wasmgym_agent::module_bytes(name, base.as_deref(), builtin);
    CompositeModule::load(runtime()?, wiring, &bytes_of).map_err(errors::agent)
}

/// One live composite episode. Calls on one `Composite` take turns; each releases the GIL.
#[pyclass(module = "wasmgym._core", frozen)]
pub struct Composite {
    inner: Mutex<wasmgym_agent::Composite>,
    tools_json: String,
}

impl Composite {
    fn new(inner: wasmgym_agent::Composite) -> Composite {
        let tools_json = serde_json::to_string(&inner.tools()).expect("tools are JSON");
        Composite { inner: Mutex::new(inner), tools_json }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, wasmgym_agent::Composite> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut wasmgym_agent::Composite) -> Result<T, wasmgym_agent::Error> + Send,
    ) -> PyResult<T> {
        py.detach(|| f(&mut self.lock())).map_err(errors::agent)
    }
}

/// A step as JSON: `{"messages": [{"from", "to", "text"}], "observation", "reward", "terminated",
/// "truncated", "score"}`.
fn step_json(step: &wasmgym_agent::Step) -> String {
    serde_json::json!({
        "messages": step.messages,
        "observation": step.observation(),
        "reward": step.reward,
        "terminated": step.terminated,
        "truncated": step.truncated,
        "score": step.score,
    })
    .to_string()
}

#[pymethods]
impl Composite {
    /// A composite from a built-in name, a wiring file or JSON, or an environment on its own;
    /// `user` answers for a part without a module (called with the turn as JSON text, returning
    /// `(text, done)`).
    #[new]
    #[pyo3(signature = (target, *, user=None, fuel_per_call=None, deadline_s=None, memory_mib=None))]
    fn py_new(
        py: Python<'_>,
        target: &str,
        user: Option<Py<PyAny>>,
        fuel_per_call: Option<u64>,
        deadline_s: Option<f64>,
        memory_mib: Option<u64>,
    ) -> PyResult<Composite> {
        let limits = limits(fuel_per_call, deadline_s, memory_mib)?;
        let mut module = load(target)?;
        if let Some(user) = user {
            let part = module.wiring().parts.iter().find(|p| p.module.is_none()).map(|p| p.name.clone());
            let Some(part) = part else {
                return Err(PyValueError::new_err(format!(
                    "user= was given but every part of {} is a module: give a part \"module\": null",
                    module.wiring().name
                )));
            };
            let callback = move |turn: &wasmgym_agent::UserTurn| -> Result<UserReply, String> {
                let json = serde_json::json!({
                    "part": turn.part, "seed": turn.seed, "options": turn.options, "transcript": turn.transcript,
                })
                .to_string();
                Python::attach(|py| {
                    let (text, done): (String, bool) =
                        user.call1(py, (json,)).and_then(|r| r.extract(py)).map_err(|e| e.to_string())?;
                    Ok(UserReply { text, done })
                })
            };
            module.set_user(&part, Arc::new(callback)).map_err(errors::agent)?;
        }
        let inner = py.detach(|| module.instantiate(limits)).map_err(errors::agent)?;
        Ok(Composite::new(inner))
    }

    /// Starts an episode; the opening messages as JSON.
    #[pyo3(signature = (seed=0, options=None))]
    fn reset(&self, py: Python<'_>, seed: u64, options: Option<&str>) -> PyResult<String> {
        self.with(py, |c| c.reset(seed, options)).map(|s| step_json(&s))
    }

    /// Takes the agent's action (a tool call as JSON, or a message); the replies as JSON.
    fn step(&self, py: Python<'_>, action: &str) -> PyResult<String> {
        self.with(py, |c| c.step(action)).map(|s| step_json(&s))
    }

    /// An independent composite in the same state.
    fn fork(&self, py: Python<'_>) -> PyResult<Composite> {
        self.with(py, |c| c.fork()).map(Composite::new)
    }

    /// The complete state (every part and the conversation).
    fn snapshot(&self, py: Python<'_>) -> PyResult<CompositeSnapshot> {
        self.with(py, |c| c.snapshot()).map(CompositeSnapshot)
    }

    /// Returns to `snapshot`.
    fn restore(&self, py: Python<'_>, snapshot: &CompositeSnapshot) -> PyResult<()> {
        self.with(py, |c| c.restore(&snapshot.0))
    }

    /// A hash of the complete state.
    fn state_hash<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let hash = self.with(py, |c| c.state_hash())?;
        Ok(PyBytes::new(py, &hash))
    }

    /// The tools, as JSON (`[{"name", "description", "parameters"}]`).
    #[getter]
    fn tools_json(&self) -> &str {
        &self.tools_json
    }

    /// The conversation so far, as JSON.
    #[getter]
    fn transcript_json(&self) -> String {
        serde_json::to_string(self.lock().transcript()).expect("messages are JSON")
    }

    /// The wiring, as JSON.
    #[getter]
    fn wiring_json(&self) -> String {
        serde_json::to_string(self.lock().module().wiring()).expect("a wiring is JSON")
    }

    /// Agent actions taken in this episode.
    #[getter]
    fn turns(&self) -> u32 {
        self.lock().turns()
    }

    /// Whether an action can be taken.
    #[getter]
    fn running(&self) -> bool {
        self.lock().is_running()
    }

    /// The episode's total reward so far.
    #[getter]
    fn total_reward(&self) -> f64 {
        self.lock().total_reward()
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> PyResult<Composite> {
        self.fork(py)
    }
}

/// A composite's complete state; pickles as its checksummed bytes.
#[pyclass(module = "wasmgym._core", frozen)]
pub struct CompositeSnapshot(wasmgym_agent::CompositeSnapshot);

#[pymethods]
impl CompositeSnapshot {
    /// Self-checking bytes that restore in any process; with `WASMGYM_SNAPSHOT_KEY` set, signed
    /// with the key, so that they restore in processes with the same key.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = match &runtime()?.config().snapshot_key {
            Some(key) => self.0.to_bytes_signed(key),
            None => self.0.to_bytes(),
        };
        Ok(PyBytes::new(py, &bytes))
    }

    /// Reads `to_bytes` output (checksum and lengths checked; with `WASMGYM_SNAPSHOT_KEY` set,
    /// the signature too).
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<CompositeSnapshot> {
        let snapshot = match &runtime()?.config().snapshot_key {
            Some(key) => wasmgym_agent::CompositeSnapshot::from_bytes_signed(data, key),
            None => wasmgym_agent::CompositeSnapshot::from_bytes(data),
        };
        snapshot.map(CompositeSnapshot).map_err(errors::agent)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let py = slf.py();
        let from_bytes = py.get_type::<CompositeSnapshot>().getattr("from_bytes")?;
        Ok((from_bytes, (slf.get().to_bytes(py)?,)))
    }
}

/// tau-bench's pass^j for j in 1..=k from `(trials, successes)` per task.
#[pyfunction]
pub fn pass_hat(successes: Vec<(u32, u32)>, k: u32) -> Vec<f64> {
    wasmgym_agent::pass_hat(&successes, k)
}

/// The built-in scripted agent on a built-in composite: `wasmgym eval`'s report as JSON.
#[pyfunction]
#[pyo3(signature = (target, *, tasks=10, k=4, seed=0, sequential=false, jobs=None))]
pub fn eval_scripted(
    py: Python<'_>,
    target: &str,
    tasks: u32,
    k: u32,
    seed: u64,
    sequential: bool,
    jobs: Option<usize>,
) -> PyResult<String> {
    if tasks == 0 || k == 0 {
        return Err(PyValueError::new_err("tasks and k must be at least 1"));
    }
    let module = load(target)?;
    let name = module.wiring().name.clone();
    if wasmgym_agent::scripted::builtin(&name).is_none() {
        return Err(PyValueError::new_err(format!(
            "there is no built-in scripted agent for {name} (only for {}): run your own agent with \
             wasmgym.agents.evaluate",
            wasmgym_agent::scripted::NAMES.join(", ")
        )));
    }
    let agent = || wasmgym_agent::scripted::builtin(&name).expect("checked above");
    let limits = wasmgym::Limits::default();
    let json = py.detach(|| -> Result<String, wasmgym_agent::Error> {
        Ok(if sequential {
            let options = wasmgym_agent::SuiteOptions { tasks, runs: k, seed, limits };
            serde_json::to_string(&wasmgym_agent::suite(&module, &agent, &options, &|_| {})?)
        } else {
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let options = wasmgym_agent::EvalOptions { tasks: (0..u64::from(tasks)).collect(), k, seed, jobs, limits };
            serde_json::to_string(&wasmgym_agent::eval(&module, &agent, &options, &|_| {})?)
        }
        .expect("reports are JSON"))
    });
    json.map_err(errors::agent)
}
