//! Tree search on any wasmgym environment, through the runtime's public API only: every node of
//! a tree is an exact [`Snapshot`](wasmgym::Snapshot) of the environment (or is reached from one
//! by a step), so search needs no `Clone()` written by the environment's author.
//!
//! - [`mcts`]: Monte Carlo tree search, UCT with random rollouts run inside the guest (one call
//!   per simulation), chance nodes for stochastic environments, root-parallel trees over threads;
//!   [`puct`]: PUCT with a batched prior and value callback ([`Evaluator`]), Dirichlet noise,
//!   temperature.
//! - [`bfs`] and [`beam`]: Tree-of-Thoughts breadth-first and beam search with `propose` and
//!   `evaluate` callbacks, merging transpositions; [`CheckerEvaluator`] scores states with a
//!   sandboxed reward-checker module (process rewards); [`solve`]: exhaustive minimax.
//! - [`expand`]: forks and steps every child of a state over threads; [`VecEnv`]: N
//!   environments stepped together across threads, with auto-reset.
//! - [`selfplay`]: AlphaZero-style self-play records.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = wasmgym::Runtime::new()?;
//! let mut env = runtime.load_file("tic_tac_toe.wasm")?.instantiate()?;
//! env.reset(Some(0), None)?;
//! let result = wasmgym_search::mcts(&mut env, &wasmgym_search::MctsOptions::default())?;
//! println!("play {} (value {:.2})", result.action, result.value);
//! # Ok(())
//! # }
//! ```
//!
//! Every search is deterministic given its seed and leaves the environment it was given in the
//! state it started from.

#![deny(missing_docs)]

mod beam;
mod branch;
mod mcts;
mod parallel;
mod selfplay;
#[cfg(test)]
mod tests;
mod tree;

pub use beam::{
    BeamOptions, CheckerEvaluator, KeyKind, MAX_SOLVE_DEPTH, Scored, Solution, StateEvaluator, Trajectory,
    TreeSearchResult, beam, bfs, solve,
};
pub use branch::Branch;
pub use mcts::{
    ChildStats, Dirichlet, Evaluation, Evaluator, Leaf, MctsOptions, RolloutEvaluator, SearchResult, mcts, puct,
};
pub use parallel::{Child, VecEnv, VecStep, expand};
pub use selfplay::{Record, SelfPlayOptions, selfplay};
pub use tree::{Tree, TreeNode};

use wasmgym_abi::Action;
use wasmgym_abi::rng::Rng;

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The environment is not at a state where an action can be chosen: reset it first, or the
    /// episode is over, or no action is listed.
    #[error("nothing to search: {0}")]
    NoDecision(String),
    /// The environment failed (a trap, a limit, a refused action) during the search; the
    /// caller's `Env` is restored to the state the search started from when it can be.
    #[error("the environment failed during the search: {0}")]
    Env(#[from] wasmgym::Error),
    /// A callback (evaluator, proposer) answered something the search cannot use.
    #[error("the evaluator's answer cannot be used: {0}")]
    Evaluator(String),
    /// A [`Branch`] other than `Env` failed (for a composite: a part's trap or limit, named).
    #[error("the environment failed during the search: {0}")]
    Branch(String),
}

/// Refuses a search from a state where nothing can be chosen.
fn check_decision<E: Branch>(env: &mut E) -> Result<(), SearchError> {
    if env.current_player().is_none() {
        return Err(SearchError::NoDecision("the episode is over or was never reset: call reset first".into()));
    }
    Ok(())
}

/// A seed derived from `seed` and `index` (SplitMix64 finaliser), for trees, games, workers.
pub(crate) fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1).
pub(crate) fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal number (Box–Muller).
pub(crate) fn normal(rng: &mut Rng) -> f64 {
    let u = unit(rng).max(f64::MIN_POSITIVE);
    let v = unit(rng);
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// An action as a label: the number, or the text itself.
pub(crate) fn label(action: &Action) -> String {
    match action {
        Action::Discrete(a) => a.to_string(),
        Action::Text(t) => t.clone(),
    }
}
