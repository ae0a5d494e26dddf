//! Tree search on any wasmgym environment, through the runtime's public API only: every node of
//! the tree is an exact [`Snapshot`] of the environment, so search needs no `Clone()` written by
//! the environment's author.
//!
//! [`mcts`] is Monte Carlo tree search with UCT selection and uniformly random rollouts, for
//! one or more players taking turns (each node is scored for the player who chose the action
//! leading to it), deterministic given [`MctsOptions::seed`]:
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
//! Not here yet (issue 11): PUCT with prior and value callbacks, chance nodes, threads, beam and
//! breadth-first search, transpositions, self-play data.

#![deny(missing_docs)]

use std::time::Instant;

use serde::Serialize;
use wasmgym::{Env, Snapshot};
use wasmgym_abi::rng::Rng;

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The environment is not at a state where an action can be chosen: reset it first, or the
    /// episode is over, or no action is legal.
    #[error("nothing to search: {0}")]
    NoDecision(String),
    /// The environment failed (a trap, a limit) during the search; the caller's `Env` is restored
    /// to the state the search started from when it can be.
    #[error("the environment failed during the search: {0}")]
    Env(#[from] wasmgym::Error),
}

/// How [`mcts`] searches. Plain data.
#[derive(Clone, Debug)]
pub struct MctsOptions {
    /// Simulations (selection, expansion, rollout, backup), at least 1.
    pub simulations: usize,
    /// The UCT exploration constant `c` in `mean + c·sqrt(ln N / n)`.
    pub exploration: f64,
    /// Steps a rollout may take before it stops (and scores the rewards so far).
    pub max_rollout_steps: usize,
    /// Seed of the host RNG that picks expansions and rollout actions.
    pub seed: u64,
}

impl Default for MctsOptions {
    fn default() -> Self {
        MctsOptions { simulations: 1000, exploration: std::f64::consts::SQRT_2, max_rollout_steps: 1000, seed: 0 }
    }
}

/// One action at the root, with what the search learned of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChildStats {
    /// The action.
    pub action: i64,
    /// Simulations that went through it.
    pub visits: u64,
    /// Mean return of those simulations for the player to move at the root.
    pub mean_value: f64,
}

/// What [`mcts`] found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchResult {
    /// The most visited root action (ties: the lower action).
    pub action: i64,
    /// Its mean value for the player to move.
    pub value: f64,
    /// Every legal root action, in the order the environment listed them.
    pub children: Vec<ChildStats>,
    /// Simulations run.
    pub simulations: usize,
    /// Nodes in the tree (each holds a snapshot).
    pub nodes: usize,
    /// Wall-clock time of the search.
    pub seconds: f64,
}

struct Edge {
    action: i64,
    child: Option<usize>,
    visits: u64,
    /// Sum of the returns, for the player who chose this action.
    total: f64,
}

struct Node {
    /// The state (absent for terminal nodes, which are never expanded).
    state: Option<Snapshot>,
    /// Who chooses here.
    player: u32,
    edges: Vec<Edge>,
    visits: u64,
}

/// Runs MCTS (UCT, random rollouts) from `env`'s current state and returns the chosen action. The
/// environment is left in the state it was in (restored from a snapshot taken first).
pub fn mcts(env: &mut Env, options: &MctsOptions) -> Result<SearchResult, SearchError> {
    let started = Instant::now();
    let Some(player) = env.current_player() else {
        return Err(SearchError::NoDecision("the episode is over or was never reset: call reset first".into()));
    };
    let root_state = env.snapshot()?;
    let actions = env.legal_actions()?;
    if actions.is_empty() {
        return Err(SearchError::NoDecision("no action is legal in this state".into()));
    }
    let players = env.spec().players.max(1) as usize;
    let mut nodes = vec![node(root_state.clone(), player, actions)];
    let mut rng = Rng::seed_from_u64(options.seed);
    let outcome =
        (0..options.simulations.max(1)).try_for_each(|_| simulate(env, &mut nodes, &mut rng, options, players));
    env.restore(&root_state)?;
    outcome?;
    let root = &nodes[0];
    let children: Vec<ChildStats> =
        root.edges.iter().map(|e| ChildStats { action: e.action, visits: e.visits, mean_value: mean(e) }).collect();
    let best = children.iter().enumerate().max_by_key(|(i, c)| (c.visits, std::cmp::Reverse(*i))).map(|(_, c)| c);
    let best = best.expect("at least one legal action");
    Ok(SearchResult {
        action: best.action,
        value: best.mean_value,
        simulations: options.simulations.max(1),
        nodes: nodes.len(),
        seconds: started.elapsed().as_secs_f64(),
        children,
    })
}

fn node(state: Snapshot, player: u32, actions: Vec<i64>) -> Node {
    let edges = actions.into_iter().map(|action| Edge { action, child: None, visits: 0, total: 0.0 }).collect();
    Node { state: Some(state), player, edges, visits: 0 }
}

fn mean(edge: &Edge) -> f64 {
    if edge.visits == 0 { 0.0 } else { edge.total / edge.visits as f64 }
}

/// One simulation: select down the tree by UCT, expand one untried action, roll out at random,
/// and add each player's return to the edges on the path.
fn simulate(
    env: &mut Env,
    nodes: &mut Vec<Node>,
    rng: &mut Rng,
    options: &MctsOptions,
    players: usize,
) -> Result<(), SearchError> {
    // The path as (node, edge index) and the rewards collected after each of its steps.
    let mut path: Vec<(usize, usize, Vec<f64>)> = Vec::new();
    let mut at = 0;
    env.restore(nodes[0].state.as_ref().expect("the root has a state"))?;
    let mut expanded = false;
    loop {
        if nodes[at].edges.is_empty() {
            break; // a state where no action is legal although the episode goes on
        }
        let here = &nodes[at];
        let untried: Vec<usize> = (0..here.edges.len()).filter(|&i| here.edges[i].child.is_none()).collect();
        let choice = if untried.is_empty() {
            uct(here, options.exploration)
        } else {
            untried[(rng.next_u64() % untried.len() as u64) as usize]
        };
        let action = nodes[at].edges[choice].action;
        let transition = env.step(action)?;
        let rewards: Vec<f64> = (0..players as u32).map(|p| transition.reward(p)).collect();
        path.push((at, choice, rewards));
        let done = transition.done() || transition.current_player.is_none();
        match nodes[at].edges[choice].child {
            Some(child) if !done => at = child,
            Some(_) => break,
            None => {
                let child = nodes.len();
                let new = match (done, transition.current_player) {
                    (false, Some(next)) => node(env.snapshot()?, next, env.legal_actions()?),
                    _ => Node { state: None, player: 0, edges: Vec::new(), visits: 0 },
                };
                nodes.push(new);
                nodes[at].edges[choice].child = Some(child);
                at = child;
                expanded = true;
                if done || nodes[at].edges.is_empty() {
                    break;
                }
            }
        }
        if expanded {
            break;
        }
    }
    // Random rollout from the new node.
    let mut tail = vec![0.0; players];
    if env.is_running() {
        for _ in 0..options.max_rollout_steps {
            let legal = env.legal_actions()?;
            if legal.is_empty() {
                break;
            }
            let transition = env.step(legal[(rng.next_u64() % legal.len() as u64) as usize])?;
            for (p, r) in tail.iter_mut().enumerate() {
                *r += transition.reward(p as u32);
            }
            if transition.done() {
                break;
            }
        }
    }
    // Back up: the return of each edge is the rewards from its step to the end.
    for (at, edge, rewards) in path.into_iter().rev() {
        for (p, r) in tail.iter_mut().enumerate() {
            *r += rewards[p];
        }
        let n = &mut nodes[at];
        let player = n.player as usize;
        n.visits += 1;
        n.edges[edge].visits += 1;
        n.edges[edge].total += tail.get(player).copied().unwrap_or(0.0);
    }
    Ok(())
}

/// The edge UCT picks at a node whose edges have all been tried.
fn uct(node: &Node, c: f64) -> usize {
    let ln_n = (node.visits.max(1) as f64).ln();
    let score = |e: &Edge| mean(e) + c * (ln_n / e.visits.max(1) as f64).sqrt();
    let mut best = 0;
    for (i, edge) in node.edges.iter().enumerate() {
        if score(edge) > score(&node.edges[best]) {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Env {
        let runtime = wasmgym::Runtime::new().unwrap();
        let bytes = wasmgym_builtin::find(name).unwrap().bytes;
        let mut env = runtime.load(bytes).unwrap().instantiate().unwrap();
        env.reset(Some(0), None).unwrap();
        env
    }

    #[test]
    fn it_takes_a_win_and_blocks_a_loss_in_tic_tac_toe() {
        // X: 0, 1 (4 and 8 for O): X to move wins with 2.
        let mut game = env("tic_tac_toe");
        for a in [0, 4, 1, 8] {
            game.step(a).unwrap();
        }
        let before = game.state_hash().unwrap();
        let result = mcts(&mut game, &MctsOptions { simulations: 2000, ..Default::default() }).unwrap();
        assert_eq!(result.action, 2, "{result:?}");
        assert!(result.value > 0.9, "{result:?}");
        assert_eq!(game.state_hash().unwrap(), before, "the search leaves the game where it was");
        // O must block: X has 0 and 1, O has 4; O to move.
        let mut game = env("tic_tac_toe");
        for a in [0, 4, 1] {
            game.step(a).unwrap();
        }
        let result = mcts(&mut game, &MctsOptions { simulations: 3000, ..Default::default() }).unwrap();
        assert_eq!(result.action, 2, "{result:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_search() {
        let options = MctsOptions { simulations: 300, seed: 7, ..Default::default() };
        let mut a = env("connect_four");
        let mut b = env("connect_four");
        let (x, y) = (mcts(&mut a, &options).unwrap(), mcts(&mut b, &options).unwrap());
        assert_eq!((x.action, &x.children, x.nodes), (y.action, &y.children, y.nodes));
        let visits: u64 = x.children.iter().map(|c| c.visits).sum();
        assert_eq!(visits, 300);
        let other = mcts(&mut a, &MctsOptions { seed: 8, ..options }).unwrap();
        assert_ne!(other.children, x.children, "another seed, another search");
    }

    #[test]
    fn an_episode_that_is_over_or_never_started_is_refused() {
        let runtime = wasmgym::Runtime::new().unwrap();
        let bytes = wasmgym_builtin::find("tic_tac_toe").unwrap().bytes;
        let mut fresh = runtime.load(bytes).unwrap().instantiate().unwrap();
        assert!(matches!(mcts(&mut fresh, &MctsOptions::default()), Err(SearchError::NoDecision(_))));
        let mut game = env("tic_tac_toe");
        for a in [0, 3, 1, 4, 2] {
            game.step(a).unwrap();
        }
        let e = mcts(&mut game, &MctsOptions::default()).unwrap_err();
        assert!(e.to_string().contains("reset"), "{e}");
    }
}
