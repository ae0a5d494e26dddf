//! Search from Python: MCTS (UCT), PUCT with a Python evaluator called on batches of leaves,
//! breadth-first and beam search with Python proposers and value functions, and `solve`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use wasmgym_search::{BeamOptions, Branch, Dirichlet, Evaluation, KeyKind, Leaf, MctsOptions, Scored, SearchError};

use crate::env::{Env, action, action_to_py, observation_to_py};
use crate::errors;

/// A search result (any `Serialize`) as Python objects, through JSON.
fn to_py<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| PyValueError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

#[allow(clippy::too_many_arguments)]
fn mcts_options(
    simulations: usize,
    exploration: f64,
    max_rollout_steps: usize,
    seed: u64,
    temperature: f64,
    trees: usize,
    threads: usize,
    batch_size: usize,
) -> PyResult<MctsOptions> {
    if simulations == 0 || trees == 0 || threads == 0 || batch_size == 0 {
        return Err(PyValueError::new_err("simulations, trees, threads and batch_size must each be at least 1"));
    }
    if !exploration.is_finite() || exploration < 0.0 || !temperature.is_finite() || temperature < 0.0 {
        return Err(PyValueError::new_err("exploration and temperature must be finite and non-negative"));
    }
    Ok(MctsOptions {
        simulations,
        exploration,
        max_rollout_steps,
        seed,
        temperature,
        trees,
        threads,
        batch_size,
        ..MctsOptions::default()
    })
}

/// UCT Monte Carlo tree search from `env`'s state with random rollouts played inside the guest;
/// `env` is left as it was. Returns the result as a dict (`action`, `value`, `children`, ...).
#[pyfunction]
#[pyo3(signature = (env, *, simulations=1000, exploration=std::f64::consts::SQRT_2, max_rollout_steps=1000, seed=0, temperature=0.0, trees=1, threads=1, transpositions=false))]
#[allow(clippy::too_many_arguments)]
pub fn mcts<'py>(
    py: Python<'py>,
    env: &Env,
    simulations: usize,
    exploration: f64,
    max_rollout_steps: usize,
    seed: u64,
    temperature: f64,
    trees: usize,
    threads: usize,
    transpositions: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let options = MctsOptions {
        transpositions,
        ..mcts_options(simulations, exploration, max_rollout_steps, seed, temperature, trees, threads, 1)?
    };
    let result = py.detach(|| wasmgym_search::mcts(&mut env.lock(), &options)).map_err(errors::search)?;
    to_py(py, &result)
}

/// What a Python evaluator answered for one leaf: `(priors, value)`, a dict with `priors` and
/// `value`, or a bare value; None for either part leaves it to the search.
fn evaluation(item: &Bound<'_, PyAny>) -> PyResult<Evaluation> {
    if item.is_none() {
        return Ok(Evaluation::default());
    }
    if let Ok(value) = item.extract::<f64>() {
        return Ok(Evaluation { priors: None, value: Some(value) });
    }
    if let Ok(dict) = item.cast::<PyDict>() {
        let priors = dict.get_item("priors")?.filter(|p| !p.is_none()).map(|p| p.extract()).transpose()?;
        let value = dict.get_item("value")?.filter(|v| !v.is_none()).map(|v| v.extract()).transpose()?;
        return Ok(Evaluation { priors, value });
    }
    let (priors, value): (Option<Vec<f64>>, Option<f64>) = item.extract().map_err(|_| {
        PyValueError::new_err(format!(
            "an evaluation is (priors, value), a dict with `priors` and `value`, a float value or None; got {}",
            item.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })?;
    Ok(Evaluation { priors, value })
}

/// PUCT (AlphaZero's selection) with priors and values from `evaluate`, a Python callable given a
/// list of leaves (dicts with `observation`, `actions`, `player`) and answering one evaluation per
/// leaf: `(priors, value)` with priors over the leaf's actions (or None: uniform) and the value for
/// the player to move (or None: a random rollout decides). Up to `batch_size` leaves per call.
#[pyfunction]
#[pyo3(signature = (env, evaluate, *, simulations=800, exploration=1.25, batch_size=8, max_rollout_steps=1000, seed=0, temperature=0.0, trees=1, dirichlet_alpha=None, dirichlet_fraction=0.25))]
#[allow(clippy::too_many_arguments)]
pub fn puct<'py>(
    py: Python<'py>,
    env: &Env,
    evaluate: Bound<'py, PyAny>,
    simulations: usize,
    exploration: f64,
    batch_size: usize,
    max_rollout_steps: usize,
    seed: u64,
    temperature: f64,
    trees: usize,
    dirichlet_alpha: Option<f64>,
    dirichlet_fraction: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let mut options =
        mcts_options(simulations, exploration, max_rollout_steps, seed, temperature, trees, 1, batch_size)?;
    if let Some(alpha) = dirichlet_alpha {
        if !(alpha.is_finite() && alpha > 0.0 && (0.0..=1.0).contains(&dirichlet_fraction)) {
            return Err(PyValueError::new_err("dirichlet_alpha must be positive and dirichlet_fraction in [0, 1]"));
        }
        options.dirichlet = Some(Dirichlet { alpha, fraction: dirichlet_fraction });
    }
    let shape = crate::env::box_shape(&env.lock().spec().observation_space);
    let mut failure: Option<PyErr> = None;
    let mut evaluator = |leaves: &[Leaf]| -> Vec<Evaluation> {
        let answer = (|| -> PyResult<Vec<Evaluation>> {
            let batch = PyList::empty(py);
            for leaf in leaves {
                let d = PyDict::new(py);
                d.set_item("observation", observation_to_py(py, &leaf.observation, &shape)?)?;
                let actions: Vec<Bound<'py, PyAny>> =
                    leaf.actions.iter().map(|a| action_to_py(py, a)).collect::<PyResult<_>>()?;
                d.set_item("actions", actions)?;
                d.set_item("player", leaf.player)?;
                batch.append(d)?;
            }
            let answer = evaluate.call1((batch,))?;
            answer.try_iter()?.map(|item| evaluation(&item?)).collect()
        })();
        answer.unwrap_or_else(|e| {
            failure = Some(e);
            Vec::new() // refused by the search (one evaluation per leaf), which then stops
        })
    };
    let result = wasmgym_search::puct(&mut env.lock(), &mut evaluator, &options);
    if let Some(e) = failure {
        return Err(e);
    }
    to_py(py, &result.map_err(errors::search)?)
}

fn key_kind(key: &str) -> PyResult<KeyKind> {
    match key {
        "env" => Ok(KeyKind::Env),
        "observation" => Ok(KeyKind::Observation),
        "machine" => Ok(KeyKind::Machine),
        _ => Err(PyValueError::new_err(format!("key = {key:?}: use \"env\", \"observation\" or \"machine\""))),
    }
}

/// Breadth-first (`width` None) or beam search, on an `Env` or a `Composite` (an agent episode).
/// `propose(state)` (optional) gets a dict with the `observation` and the env's `actions` and
/// returns the actions to try; `evaluate(states)` (optional) gets the states of a depth (dicts
/// with `actions`, `return`, `terminal`, `observation`) and returns one value per state, higher
/// is better.
#[pyfunction]
#[pyo3(signature = (env, *, width=None, depth=10, propose=None, evaluate=None, key="env", max_nodes=200_000, results=5))]
#[allow(clippy::too_many_arguments)]
pub fn tree_search<'py>(
    py: Python<'py>,
    env: &Bound<'py, PyAny>,
    width: Option<usize>,
    depth: usize,
    propose: Option<Bound<'py, PyAny>>,
    evaluate: Option<Bound<'py, PyAny>>,
    key: &str,
    max_nodes: usize,
    results: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let options = BeamOptions {
        width: width.unwrap_or(1).max(1),
        depth,
        key: key_kind(key)?,
        max_nodes,
        results,
        keep_tree: false,
    };
    let callbacks = Callbacks { propose, evaluate };
    if let Ok(env) = env.cast::<Env>() {
        let env = env.get();
        let shape = crate::env::box_shape(&env.lock().spec().observation_space);
        return callbacks.run(py, &mut *env.lock(), &shape, width, &options);
    }
    if let Ok(composite) = env.cast::<crate::agent::Composite>() {
        return callbacks.run(py, &mut *composite.get().lock(), &[], width, &options);
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "search needs a wasmgym Env or an agents.Composite, not {}",
        env.get_type().name()?
    )))
}

/// The Python proposer and evaluator of a tree search.
struct Callbacks<'py> {
    propose: Option<Bound<'py, PyAny>>,
    evaluate: Option<Bound<'py, PyAny>>,
}

impl<'py> Callbacks<'py> {
    fn run<E: Branch>(
        self,
        py: Python<'py>,
        branch: &mut E,
        shape: &[usize],
        width: Option<usize>,
        options: &BeamOptions,
    ) -> PyResult<Bound<'py, PyAny>> {
        // A callback's exception stops the search and is raised as it is, after it.
        let raised: std::cell::RefCell<Option<PyErr>> = std::cell::RefCell::new(None);
        let failed = |e: PyErr| {
            let message = format!("the Python callback raised {e}");
            raised.borrow_mut().get_or_insert(e);
            SearchError::Evaluator(message)
        };
        let mut proposer = self.propose.map(|propose| {
            move |env: &mut E| -> Result<Vec<wasmgym::Action>, SearchError> {
                let actions = env.actions()?;
                let observation = env.observe()?;
                (|| -> PyResult<Vec<wasmgym::Action>> {
                    let d = PyDict::new(py);
                    d.set_item("observation", observation.map(|o| observation_to_py(py, &o, shape)).transpose()?)?;
                    let actions: Vec<Bound<'py, PyAny>> =
                        actions.iter().map(|a| action_to_py(py, a)).collect::<PyResult<_>>()?;
                    d.set_item("actions", actions)?;
                    propose.call1((d,))?.try_iter()?.map(|a| action(&a?)).collect()
                })()
                .map_err(failed)
            }
        });
        let mut evaluator = self.evaluate.map(|evaluate| {
            move |_env: &mut E, states: &[Scored<E::Snapshot>]| -> Result<Vec<f64>, SearchError> {
                (|| -> PyResult<Vec<f64>> {
                    let batch = PyList::empty(py);
                    for s in states {
                        let d = PyDict::new(py);
                        let actions: Vec<Bound<'py, PyAny>> =
                            s.actions.iter().map(|a| action_to_py(py, a)).collect::<PyResult<_>>()?;
                        d.set_item("actions", actions)?;
                        d.set_item("return", s.return_so_far)?;
                        d.set_item("terminal", s.terminal)?;
                        d.set_item("observation", observation_to_py(py, &s.observation, shape)?)?;
                        batch.append(d)?;
                    }
                    evaluate.call1((batch,))?.extract()
                })()
                .map_err(failed)
            }
        });
        let propose = proposer.as_mut().map(|p| p as &mut dyn FnMut(&mut E) -> _);
        let evaluate = evaluator.as_mut().map(|e| e as &mut dyn wasmgym_search::StateEvaluator<E>);
        let result = match width {
            None => wasmgym_search::bfs(branch, propose, evaluate, options),
            Some(_) => wasmgym_search::beam(branch, propose, evaluate, options),
        };
        drop((proposer, evaluator));
        if let Some(e) = raised.into_inner() {
            return Err(e);
        }
        to_py(py, &result.map_err(errors::search)?)
    }
}

/// Exhaustive search of every state reachable from `env`'s (each distinct state once): each
/// player's value under perfect play and a best action. For games small enough to enumerate.
#[pyfunction]
#[pyo3(signature = (env, *, key="env", max_nodes=5_000_000))]
pub fn solve<'py>(py: Python<'py>, env: &Env, key: &str, max_nodes: usize) -> PyResult<Bound<'py, PyAny>> {
    let key = key_kind(key)?;
    let solution = py.detach(|| wasmgym_search::solve(&mut env.lock(), key, max_nodes)).map_err(errors::search)?;
    to_py(py, &solution)
}

/// AlphaZero-style self-play: `games` games of an environment (by name or path) against itself,
/// each move chosen by UCT MCTS. Returns one tuple per move: `(game, move_index, seed,
/// observation, legal_mask, policy, action, player, outcome)`; `python/wasmgym/search.py` stacks
/// them into arrays.
#[pyfunction]
#[pyo3(signature = (source, *, games=10, simulations=200, exploration=std::f64::consts::SQRT_2, temperature_moves=0, seed=0, max_moves=10_000, trees=1, threads=1))]
#[allow(clippy::too_many_arguments)]
pub fn selfplay<'py>(
    py: Python<'py>,
    source: &str,
    games: usize,
    simulations: usize,
    exploration: f64,
    temperature_moves: usize,
    seed: u64,
    max_moves: usize,
    trees: usize,
    threads: usize,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let module = crate::env::module(source)?;
    let mcts = mcts_options(simulations, exploration, 1000, seed, 0.0, trees, threads, 1)?;
    let options = wasmgym_search::SelfPlayOptions { games, mcts, seed, temperature_moves, max_moves };
    let mut records = Vec::new();
    py.detach(|| {
        wasmgym_search::selfplay(&module, &options, |game| {
            records.extend(game);
            Ok(())
        })
    })
    .map_err(errors::search)?;
    let shape = crate::env::box_shape(&module.spec().observation_space);
    records
        .iter()
        .map(|r| {
            let observation = observation_to_py(py, &r.observation, &shape)?;
            let item = (
                r.game,
                r.move_index,
                r.seed,
                observation,
                r.legal_mask.clone(),
                r.policy.clone(),
                r.action,
                r.player,
                r.outcome,
            );
            Ok(item.into_pyobject(py)?.into_any())
        })
        .collect()
}
