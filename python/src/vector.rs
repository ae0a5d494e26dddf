//! `VecEnv`: many instances of one environment stepped together on Rust threads with the GIL
//! released, observations written into one numpy array (no Python object per env), with
//! Gymnasium 1.x's next-step autoreset.

use std::sync::Mutex;

use numpy::{IntoPyArray, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rayon::prelude::*;
use wasmgym::{Action, Observation, Space, Transition};

use crate::env::{box_shape, limits, module};
use crate::errors;

/// Observations of every env, in one buffer of the space's element type.
enum Batch {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Text(Vec<String>),
}

impl Batch {
    fn new(space: &Space, n: usize, per: usize) -> Batch {
        match space {
            Space::Box { dtype: wasmgym::Dtype::F32, .. } => Batch::F32(Vec::with_capacity(n * per)),
            Space::Box { dtype: wasmgym::Dtype::F64, .. } => Batch::F64(Vec::with_capacity(n * per)),
            Space::Box { dtype: wasmgym::Dtype::I32, .. } => Batch::I32(Vec::with_capacity(n * per)),
            Space::Discrete { .. } | Space::MultiDiscrete { .. } => Batch::I64(Vec::with_capacity(n * per)),
            Space::Text { .. } => Batch::Text(Vec::with_capacity(n)),
        }
    }

    /// Appends one env's observation; `false` if it is not of the space's type or size.
    fn push(&mut self, obs: &Observation, per: usize) -> bool {
        match (self, obs) {
            (Batch::F32(b), Observation::F32(v)) if v.len() == per => b.extend_from_slice(v),
            (Batch::F64(b), Observation::F64(v)) if v.len() == per => b.extend_from_slice(v),
            (Batch::I32(b), Observation::I32(v)) if v.len() == per => b.extend_from_slice(v),
            (Batch::I64(b), Observation::Discrete(d)) if per == 1 => b.push(*d),
            (Batch::I64(b), Observation::MultiDiscrete(v)) if v.len() == per => b.extend_from_slice(v),
            (Batch::Text(b), Observation::Text(t)) => b.push(t.clone()),
            _ => return false,
        }
        true
    }

    fn into_py<'py>(self, py: Python<'py>, shape: Vec<usize>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            Batch::F32(v) => v.into_pyarray(py).reshape(shape)?.into_any(),
            Batch::F64(v) => v.into_pyarray(py).reshape(shape)?.into_any(),
            Batch::I32(v) => v.into_pyarray(py).reshape(shape)?.into_any(),
            Batch::I64(v) => v.into_pyarray(py).reshape(shape)?.into_any(),
            Batch::Text(v) => PyTuple::new(py, v)?.into_any(),
        })
    }
}

struct Inner {
    envs: Vec<wasmgym::Env>,
    /// The env's last step ended its episode: its next step resets it instead (Gymnasium's
    /// `AutoresetMode.NEXT_STEP`).
    autoreset: Vec<bool>,
    pool: Option<rayon::ThreadPool>,
}

/// What one env did in a step of the batch.
struct Out {
    transition: Transition,
    /// The reward of the player who acted (0 after an autoreset).
    reward: f64,
    reset: bool,
    mask: Option<Vec<i64>>,
}

/// Many instances of one environment, stepped together on `threads` Rust threads.
#[pyclass(module = "wasmgym._core", frozen)]
pub struct VecEnv {
    inner: Mutex<Inner>,
    spec_json: String,
    space: Space,
    per: usize,
    shape: Vec<usize>,
    players: usize,
    actions_n: Option<u64>,
}

impl VecEnv {
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl Fn(usize, &mut wasmgym::Env, &mut bool) -> wasmgym::Result<T> + Sync + Send,
    ) -> PyResult<Vec<T>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { envs, autoreset, pool } = &mut *inner;
        let results: Vec<wasmgym::Result<T>> = py.detach(|| {
            let work = || {
                envs.par_iter_mut()
                    .zip(autoreset.par_iter_mut())
                    .enumerate()
                    .with_min_len(8)
                    .map(|(i, (env, reset))| f(i, env, reset))
                    .collect()
            };
            match pool {
                Some(pool) => pool.install(work),
                None => envs.iter_mut().zip(autoreset.iter_mut()).enumerate().map(|(i, (e, r))| f(i, e, r)).collect(),
            }
        });
        let mut out = Vec::with_capacity(results.len());
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(v) => out.push(v),
                Err(e) => {
                    let err = errors::runtime(e);
                    let message = format!("env {i} of the batch: {}", err.value(py));
                    let tagged = err.get_type(py).call1((message,))?;
                    for attr in ["kind", "poisons"] {
                        tagged.setattr(attr, err.value(py).getattr(attr)?)?;
                    }
                    return Err(PyErr::from_value(tagged));
                }
            }
        }
        Ok(out)
    }

    fn batch<'py>(&self, py: Python<'py>, outs: &[&Transition]) -> PyResult<Bound<'py, PyAny>> {
        let mut batch = Batch::new(&self.space, outs.len(), self.per);
        for t in outs {
            if !batch.push(&t.observation, self.per) {
                return Err(errors::runtime(wasmgym::Error::Protocol {
                    message: "an observation does not match the observation space".into(),
                }));
            }
        }
        let mut shape = vec![outs.len()];
        match &self.space {
            Space::Box { .. } => shape.extend(&self.shape),
            Space::MultiDiscrete { nvec } => shape.push(nvec.len()),
            _ => {}
        }
        batch.into_py(py, shape)
    }

    fn masks<'py>(&self, py: Python<'py>, masks: impl Iterator<Item = Option<Vec<i64>>>) -> Option<Bound<'py, PyAny>> {
        let n = self.actions_n? as usize;
        let mut flat = Vec::new();
        let mut rows = 0;
        for legal in masks {
            let start = flat.len();
            flat.resize(start + n, 0i8);
            for a in legal.unwrap_or_default() {
                if let Some(slot) = usize::try_from(a).ok().filter(|&a| a < n) {
                    flat[start + slot] = 1;
                }
            }
            rows += 1;
        }
        flat.into_pyarray(py).reshape(vec![rows, n]).ok().map(Bound::into_any)
    }
}

#[pymethods]
impl VecEnv {
    /// `num_envs` instances of a built-in environment (by name) or of a `.wasm` / `.wat` file,
    /// stepped on `threads` threads (1: the calling thread), each under the given limits.
    #[new]
    #[pyo3(signature = (source, num_envs, *, threads=1, fuel_per_call=None, deadline_s=None, memory_mib=None))]
    fn py_new(
        py: Python<'_>,
        source: &str,
        num_envs: usize,
        threads: usize,
        fuel_per_call: Option<u64>,
        deadline_s: Option<f64>,
        memory_mib: Option<u64>,
    ) -> PyResult<VecEnv> {
        if num_envs == 0 || num_envs > 1 << 20 {
            return Err(PyValueError::new_err(format!("num_envs = {num_envs}: give 1 to 1048576 environments")));
        }
        if threads == 0 || threads > 1024 {
            return Err(PyValueError::new_err(format!("threads = {threads}: give 1 to 1024 threads")));
        }
        let limits = limits(fuel_per_call, deadline_s, memory_mib)?;
        let module = module(source)?;
        let spec = module.spec().clone();
        let pool = if threads > 1 {
            let builder =
                rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("wasmgym-vec-{i}"));
            Some(builder.build().map_err(|e| PyValueError::new_err(format!("cannot start {threads} threads: {e}")))?)
        } else {
            None
        };
        let space = spec.observation_space.clone();
        let per = match &space {
            Space::Box { shape, .. } => Space::box_elements(shape).unwrap_or(0),
            Space::MultiDiscrete { nvec } => nvec.len(),
            _ => 1,
        };
        // One batch of observations must fit in memory: at most 2^28 elements (2 GiB of f64).
        if num_envs.checked_mul(per).is_none_or(|n| n > 1 << 28) {
            return Err(PyValueError::new_err(format!(
                "{num_envs} environments with {per} observation elements each is more than one batch can hold (2^28 \
                 elements): use fewer environments"
            )));
        }
        let envs = py
            .detach(|| {
                (0..num_envs).map(|_| module.instantiate_with(limits.clone())).collect::<wasmgym::Result<Vec<_>>>()
            })
            .map_err(errors::runtime)?;
        Ok(VecEnv {
            inner: Mutex::new(Inner { autoreset: vec![false; envs.len()], envs, pool }),
            spec_json: serde_json::to_string(&spec).map_err(|e| PyValueError::new_err(e.to_string()))?,
            shape: box_shape(&space),
            space,
            per,
            players: spec.players as usize,
            // Masks for Discrete spaces of at most 65,536 actions, and at most 2^28 mask bytes a batch.
            actions_n: match spec.action_space {
                Space::Discrete { n } if n <= 1 << 16 && n * num_envs as u64 <= 1 << 28 => Some(n),
                _ => None,
            },
        })
    }

    /// The environment's spec as JSON.
    #[getter]
    fn spec_json(&self) -> &str {
        &self.spec_json
    }

    /// Number of environments.
    #[getter]
    fn num_envs(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).envs.len()
    }

    /// Resets every env (env `i` with `seeds[i]`; None continues its generator's stream).
    /// Returns the tuple `step` returns (rewards 0, nothing terminated); the masks are None for
    /// text action spaces or when `masks` is false.
    #[pyo3(signature = (seeds, options=None, masks=false))]
    fn reset<'py>(
        &self,
        py: Python<'py>,
        seeds: Vec<Option<u64>>,
        options: Option<&str>,
        masks: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        if seeds.len() != self.num_envs() {
            return Err(PyValueError::new_err(format!(
                "{} seeds for {} environments: give one seed (or None) per environment",
                seeds.len(),
                self.num_envs()
            )));
        }
        let outs = self.run(py, |i, env, autoreset| {
            *autoreset = false;
            let transition = env.reset(seeds[i], options)?;
            let mask = if masks { Some(env.legal_actions()?) } else { None };
            Ok(Out { transition, reward: 0.0, reset: true, mask })
        })?;
        self.finish(py, outs, masks)
    }

    /// Steps every env with its action (an int64 array, or a list of ints or strs). An env
    /// whose previous step ended its episode is reset instead and its action ignored. Returns
    /// `(observations, rewards, terminated, truncated, current_players, rewards_all, action_masks)`;
    /// `rewards` is the reward of the player who acted, `rewards_all` every player's (`(n,
    /// players)`).
    #[pyo3(signature = (actions, masks=false))]
    fn step<'py>(&self, py: Python<'py>, actions: &Bound<'py, PyAny>, masks: bool) -> PyResult<Bound<'py, PyTuple>> {
        let actions: Vec<Action> = if let Ok(array) = actions.extract::<PyReadonlyArray1<'py, i64>>() {
            array.as_slice()?.iter().map(|&a| Action::Discrete(a)).collect()
        } else if let Ok(list) = actions.extract::<Vec<Bound<'py, PyAny>>>() {
            list.iter().map(|a| crate::env::action(a)).collect::<PyResult<_>>()?
        } else {
            return Err(PyTypeError::new_err(
                "actions are an int64 numpy array or a list (one int or str per environment)",
            ));
        };
        if actions.len() != self.num_envs() {
            return Err(PyValueError::new_err(format!(
                "{} actions for {} environments: give one action per environment",
                actions.len(),
                self.num_envs()
            )));
        }
        let outs = self.run(py, |i, env, autoreset| {
            if *autoreset {
                *autoreset = false;
                let transition = env.reset(None, None)?;
                let mask = if masks { Some(env.legal_actions()?) } else { None };
                return Ok(Out { transition, reward: 0.0, reset: true, mask });
            }
            let player = env.current_player().unwrap_or(0);
            let (transition, mask) = match masks {
                // One call into the guest for the step and the actions after it.
                true => env.step_and_legal_actions(actions[i].clone()).map(|(t, legal)| (t, Some(legal)))?,
                false => (env.step(actions[i].clone())?, None),
            };
            *autoreset = transition.done();
            Ok(Out { reward: transition.reward(player), transition, reset: false, mask })
        })?;
        self.finish(py, outs, masks)
    }
}

impl VecEnv {
    fn finish<'py>(&self, py: Python<'py>, outs: Vec<Out>, masks: bool) -> PyResult<Bound<'py, PyTuple>> {
        let transitions: Vec<&Transition> = outs.iter().map(|o| &o.transition).collect();
        let observations = self.batch(py, &transitions)?;
        let n = outs.len();
        let rewards: Vec<f64> = outs.iter().map(|o| o.reward).collect();
        let terminated: Vec<bool> = outs.iter().map(|o| !o.reset && o.transition.terminated).collect();
        let truncated: Vec<bool> = outs.iter().map(|o| !o.reset && o.transition.truncated).collect();
        let players: Vec<i32> =
            outs.iter().map(|o| o.transition.current_player.map_or(-1, |p| p.min(i32::MAX as u32) as i32)).collect();
        let mut all = vec![0.0f64; n * self.players];
        for (i, o) in outs.iter().enumerate() {
            if !o.reset {
                for (p, r) in o.transition.rewards.iter().take(self.players).enumerate() {
                    all[i * self.players + p] = *r;
                }
            }
        }
        let masks = if masks { self.masks(py, outs.into_iter().map(|o| o.mask)) } else { None };
        (
            observations,
            rewards.into_pyarray(py),
            terminated.into_pyarray(py),
            truncated.into_pyarray(py),
            players.into_pyarray(py),
            all.into_pyarray(py).reshape(vec![n, self.players])?,
            masks,
        )
            .into_pyobject(py)
    }
}
