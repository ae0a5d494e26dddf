//! The compiled core of the `wasmgym` Python package (`wasmgym._core`): environments, snapshots,
//! vector stepping, search and grading on the runtime's public API. The pure-Python layer
//! (`python/wasmgym/`) builds Gymnasium, PettingZoo and the trainer adapters on it.

mod agent;
mod env;
mod errors;
mod grade;
mod search;
mod vector;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<env::Env>()?;
    m.add_class::<env::Snapshot>()?;
    m.add_class::<vector::VecEnv>()?;
    m.add_class::<grade::Checker>()?;
    m.add_class::<agent::Composite>()?;
    m.add_class::<agent::CompositeSnapshot>()?;
    m.add_function(wrap_pyfunction!(agent::pass_hat, m)?)?;
    m.add_function(wrap_pyfunction!(agent::eval_scripted, m)?)?;
    m.add_function(wrap_pyfunction!(env::builtin_envs, m)?)?;
    m.add_function(wrap_pyfunction!(grade::grade, m)?)?;
    m.add_function(wrap_pyfunction!(grade::builtin_program, m)?)?;
    m.add_function(wrap_pyfunction!(search::mcts, m)?)?;
    m.add_function(wrap_pyfunction!(search::puct, m)?)?;
    m.add_function(wrap_pyfunction!(search::tree_search, m)?)?;
    m.add_function(wrap_pyfunction!(search::solve, m)?)?;
    m.add_function(wrap_pyfunction!(search::selfplay, m)?)?;
    m.add("SNAPSHOT_FORMAT", wasmgym::SNAPSHOT_FORMAT)?;
    m.add("ABI_VERSION", wasmgym::ABI_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
