//! Tree-of-Thoughts search over exact snapshots: breadth-first ([`bfs`]) and beam ([`beam`])
//! search with `propose` and `evaluate` callbacks, merging transpositions, and exhaustive minimax
//! ([`solve`]).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;
use wasmgym::{Checker, Env, Snapshot};
use wasmgym_abi::{Action, Observation};

use crate::{Branch, SearchError, Tree, TreeNode, label};

/// What identifies a state for merging transpositions (states reached by different paths).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyKind {
    /// The environment's own key (`Env::state_key`, an SDK hook), falling back to the machine
    /// hash for environments without one. Exact for environments whose key is (tic-tac-toe,
    /// connect-four, game_of_24, the text adventure).
    #[default]
    Env,
    /// The observation and the player to move. Exact only where the observation is the whole
    /// state (board games); it merges states a partial observation cannot tell apart.
    Observation,
    /// The runtime's machine hash (`Env::state_hash`): never merges different states, but the
    /// same game state reached by another path usually hashes differently (memory depends on the
    /// calls served, and the step counter is part of it).
    Machine,
}

/// How [`bfs`] and [`beam`] search.
#[derive(Clone, Debug)]
pub struct BeamOptions {
    /// States kept at each depth ([`beam`]; [`bfs`] keeps every state).
    pub width: usize,
    /// Steps from the root at most.
    pub depth: usize,
    /// How transpositions are recognised.
    pub key: KeyKind,
    /// Stop (with [`TreeSearchResult::complete`] false) after creating this many states.
    pub max_nodes: usize,
    /// Best trajectories to return.
    pub results: usize,
    /// Keep the tree for [`TreeSearchResult::tree`].
    pub keep_tree: bool,
}

impl Default for BeamOptions {
    fn default() -> Self {
        BeamOptions { width: 5, depth: 10, key: KeyKind::Env, max_nodes: 1_000_000, results: 5, keep_tree: false }
    }
}

/// A state of a breadth-first or beam search, as callbacks see it (`S`: the environment's
/// snapshot type, [`Branch::Snapshot`]).
#[derive(Clone, Debug)]
pub struct Scored<S = Snapshot> {
    /// The actions from the root to here.
    pub actions: Vec<Action>,
    /// The sum of the rewards along them, for the player to move at the root.
    pub return_so_far: f64,
    /// The episode is over here.
    pub terminal: bool,
    /// The state.
    pub snapshot: S,
    /// The observation the last step returned.
    pub observation: Observation,
}

/// Scores the states of a depth together (a value model, an LLM judge, a process reward
/// checker): one value per state, higher is better. `env` is the search's environment, free to
/// restore any state's snapshot into. Closures `FnMut(&mut Env, &[Scored]) -> Result<Vec<f64>,
/// SearchError>` are evaluators (for any [`Branch`] `E`, with its snapshots).
pub trait StateEvaluator<E: Branch = Env> {
    /// One value per state, in order.
    fn evaluate(&mut self, env: &mut E, states: &[Scored<E::Snapshot>]) -> Result<Vec<f64>, SearchError>;
}

impl<E: Branch, F: FnMut(&mut E, &[Scored<E::Snapshot>]) -> Result<Vec<f64>, SearchError>> StateEvaluator<E> for F {
    fn evaluate(&mut self, env: &mut E, states: &[Scored<E::Snapshot>]) -> Result<Vec<f64>, SearchError> {
        self(env, states)
    }
}

/// The default evaluator: the return so far.
struct ReturnSoFar;

impl<E: Branch> StateEvaluator<E> for ReturnSoFar {
    fn evaluate(&mut self, _env: &mut E, states: &[Scored<E::Snapshot>]) -> Result<Vec<f64>, SearchError> {
        Ok(states.iter().map(|s| s.return_so_far).collect())
    }
}

/// Process rewards from a sandboxed reward-checker module: every state is scored by
/// [`Checker::reward`] on a fork of it (the checker may render it and step the fork; nothing it
/// does reaches the search). A checker that fails (a trap, a limit, a score outside [0, 1]) fails
/// the search with the checker's error: never a made-up score.
pub struct CheckerEvaluator {
    checker: Checker,
    input: Vec<u8>,
    expected: Vec<u8>,
}

impl CheckerEvaluator {
    /// Scores with `checker`, which gets `input` and `expected` (the task as the caller knows it)
    /// with every state.
    pub fn new(checker: Checker, input: impl Into<Vec<u8>>, expected: impl Into<Vec<u8>>) -> Self {
        CheckerEvaluator { checker, input: input.into(), expected: expected.into() }
    }
}

impl StateEvaluator for CheckerEvaluator {
    fn evaluate(&mut self, env: &mut Env, states: &[Scored]) -> Result<Vec<f64>, SearchError> {
        let mut values = Vec::with_capacity(states.len());
        for state in states {
            env.restore(&state.snapshot)?;
            values.push(self.checker.reward(env, &self.input, &self.expected)?.score);
        }
        Ok(values)
    }
}

/// A path a [`bfs`] or [`beam`] search found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trajectory {
    /// The actions from the root.
    pub actions: Vec<Action>,
    /// Its return, for the player to move at the root.
    #[serde(rename = "return")]
    pub return_: f64,
    /// The evaluator's value of its last state (the return, for terminal states under the
    /// default evaluator).
    pub score: f64,
    /// It ends the episode.
    pub terminal: bool,
}

/// What [`bfs`] or [`beam`] found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TreeSearchResult {
    /// The best trajectories: terminal ones first by return, then the rest by score.
    pub trajectories: Vec<Trajectory>,
    /// States created (steps taken), merged ones included.
    pub nodes: usize,
    /// Distinct states, by the key.
    pub distinct_states: usize,
    /// States dropped because an equal one was reached first.
    pub merged: usize,
    /// Proposed actions the environment refused.
    pub refused: usize,
    /// Every state within the depth was explored (always false for [`beam`] once it cut one).
    pub complete: bool,
    /// Wall-clock time.
    pub seconds: f64,
    /// The tree, when [`BeamOptions::keep_tree`] asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<Tree>,
}

impl TreeSearchResult {
    /// The best terminal trajectory with a positive return (a solution), if any.
    pub fn solution(&self) -> Option<&Trajectory> {
        self.trajectories.iter().find(|t| t.terminal && t.return_ > 0.0)
    }
}

/// A proposer: the actions to try in the state `env` is in. `None` proposes the environment's
/// own list ([`Branch::actions`]: for an `Env`, [`Env::actions`]).
pub type Propose<'a, E = Env> = Option<&'a mut dyn FnMut(&mut E) -> Result<Vec<Action>, SearchError>>;

/// Breadth-first search: every proposed action of every state, depth by depth, transpositions
/// merged. Solves small puzzles exhaustively (`complete` says whether it did). Runs on any
/// [`Branch`]: an `Env`, or a composite agent episode.
pub fn bfs<E: Branch>(
    env: &mut E,
    propose: Propose<'_, E>,
    evaluate: Option<&mut dyn StateEvaluator<E>>,
    options: &BeamOptions,
) -> Result<TreeSearchResult, SearchError> {
    search(env, propose, evaluate, options, usize::MAX)
}

/// Beam search: at each depth, every proposed action of the kept states, then the `width` best
/// by `evaluate` (default: the return so far) are kept. Runs on any [`Branch`].
pub fn beam<E: Branch>(
    env: &mut E,
    propose: Propose<'_, E>,
    evaluate: Option<&mut dyn StateEvaluator<E>>,
    options: &BeamOptions,
) -> Result<TreeSearchResult, SearchError> {
    search(env, propose, evaluate, options, options.width.max(1))
}

struct Node<S> {
    scored: Scored<S>,
    score: f64,
    tree: usize,
}

fn search<E: Branch>(
    env: &mut E,
    mut propose: Propose<'_, E>,
    evaluate: Option<&mut dyn StateEvaluator<E>>,
    options: &BeamOptions,
    width: usize,
) -> Result<TreeSearchResult, SearchError> {
    let started = Instant::now();
    crate::check_decision(env)?;
    let root_player = env.current_player().unwrap_or(0);
    let root = env.snapshot()?;
    let mut default_evaluator = ReturnSoFar;
    let evaluate = evaluate.unwrap_or(&mut default_evaluator);
    let outcome = (|| -> Result<_, SearchError> {
        let mut out = TreeSearchResult {
            trajectories: Vec::new(),
            nodes: 0,
            distinct_states: 1,
            merged: 0,
            refused: 0,
            complete: true,
            seconds: 0.0,
            tree: None,
        };
        let mut tree = vec![tree_node(None, None, env.current_player(), false)];
        let mut seen: HashSet<Vec<u8>> = HashSet::from([key(env, options.key)?]);
        let observation = env.observe()?.unwrap_or(Observation::Text(String::new()));
        let start =
            Scored { actions: Vec::new(), return_so_far: 0.0, terminal: false, snapshot: root.clone(), observation };
        let mut frontier = vec![Node { scored: start, score: 0.0, tree: 0 }];
        let mut finished: Vec<Node<E::Snapshot>> = Vec::new();
        'depths: for _ in 0..options.depth {
            let mut next: Vec<Node<E::Snapshot>> = Vec::new();
            for node in &frontier {
                env.restore(&node.scored.snapshot)?;
                let actions = match propose.as_mut() {
                    Some(propose) => propose(env)?,
                    None => env.actions()?,
                };
                for action in actions {
                    if out.nodes >= options.max_nodes {
                        out.complete = false;
                        break 'depths;
                    }
                    env.restore(&node.scored.snapshot)?;
                    let Some(t) = env.step(&action)? else {
                        out.refused += 1;
                        continue;
                    };
                    out.nodes += 1;
                    if !seen.insert(key(env, options.key)?) {
                        out.merged += 1;
                        continue;
                    }
                    let mut actions = node.scored.actions.clone();
                    actions.push(action.clone());
                    let terminal = t.done();
                    let at = tree.len();
                    tree.push(tree_node(
                        Some(node.tree),
                        Some(&action),
                        t.current_player.filter(|_| !terminal),
                        terminal,
                    ));
                    tree[node.tree].children.push(at);
                    let scored = Scored {
                        actions,
                        return_so_far: node.scored.return_so_far + t.reward(root_player),
                        terminal,
                        snapshot: env.snapshot()?,
                        observation: t.observation,
                    };
                    next.push(Node { scored, score: 0.0, tree: at });
                }
            }
            if next.is_empty() {
                break;
            }
            let states: Vec<Scored<E::Snapshot>> = next.iter().map(|n| n.scored.clone()).collect();
            let values = evaluate.evaluate(env, &states)?;
            if values.len() != next.len() || values.iter().any(|v| !v.is_finite()) {
                return Err(SearchError::Evaluator(format!(
                    "{} values for {} states: give one finite number per state",
                    values.len(),
                    next.len()
                )));
            }
            for (node, value) in next.iter_mut().zip(values) {
                node.score = value;
                tree[node.tree].value = value;
                tree[node.tree].visits = 1;
            }
            let (ended, mut open): (Vec<_>, Vec<_>) = next.into_iter().partition(|n| n.scored.terminal);
            finished.extend(ended);
            // Best first; equal scores keep the order they were found in.
            open.sort_by(|a, b| b.score.total_cmp(&a.score));
            if open.len() > width {
                open.truncate(width);
                out.complete = false;
            }
            frontier = open;
        }
        out.distinct_states = seen.len();
        finished.sort_by(|a, b| {
            b.scored.return_so_far.total_cmp(&a.scored.return_so_far).then(b.score.total_cmp(&a.score))
        });
        frontier.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.trajectories = finished
            .iter()
            .chain(&frontier)
            .filter(|n| !n.scored.actions.is_empty())
            .take(options.results.max(1))
            .map(|n| Trajectory {
                actions: n.scored.actions.clone(),
                return_: n.scored.return_so_far,
                score: n.score,
                terminal: n.scored.terminal,
            })
            .collect();
        if options.keep_tree {
            out.tree = Some(Tree { nodes: tree });
        }
        Ok(out)
    })();
    let back = env.restore(&root);
    let mut out = outcome?;
    back?;
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

fn tree_node(parent: Option<usize>, action: Option<&Action>, player: Option<u32>, terminal: bool) -> TreeNode {
    TreeNode { parent, action: action.map(label), player, visits: 0, value: 0.0, terminal, children: Vec::new() }
}

/// The key of the state `env` is in.
pub(crate) fn key<E: Branch>(env: &mut E, kind: KeyKind) -> Result<Vec<u8>, SearchError> {
    Ok(match kind {
        KeyKind::Env => match env.state_key()? {
            Some(key) => key,
            None => env.state_hash()?.to_vec(),
        },
        KeyKind::Observation => {
            let mut key = format!("{:?}", env.current_player()).into_bytes();
            match env.observe()? {
                Some(observation) => key.extend(format!("{observation:?}").into_bytes()),
                None => key.extend(env.state_hash()?),
            }
            key
        }
        KeyKind::Machine => env.state_hash()?.to_vec(),
    })
}

/// What [`solve`] found: the value of the game from a state under perfect play.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Solution {
    /// Each player's return under perfect play (each player maximising their own return; for two
    /// players with opposite rewards this is minimax).
    pub values: Vec<f64>,
    /// A best action for the player to move.
    pub action: Action,
    /// Distinct states reached (the root and terminal states included), by the key.
    pub distinct_states: usize,
    /// Steps taken (each distinct state's moves are expanded once).
    pub nodes: usize,
    /// Wall-clock time.
    pub seconds: f64,
}

/// Exhaustive search of every state reachable from `env`'s state, each distinct state (by `key`)
/// solved once: the value under perfect play. For games small enough to enumerate (tic-tac-toe:
/// 5,478 states); `max_nodes` bounds the steps and [`MAX_SOLVE_DEPTH`] the length of a line of
/// play (both refused with a message). A step back to a state on the current line (a cycle, as in
/// the text adventure) counts as a repetition worth 0, so values of games with cycles are those of
/// that rule.
pub fn solve(env: &mut Env, key_kind: KeyKind, max_nodes: usize) -> Result<Solution, SearchError> {
    let started = Instant::now();
    crate::check_decision(env)?;
    let players = env.spec().players.max(1) as usize;
    let root = env.snapshot()?;
    let mut solver = Solver { memo: HashMap::new(), on_path: HashSet::new(), nodes: 0, max_nodes, players, key_kind };
    let outcome = (|| -> Result<_, SearchError> {
        let root_key = key(env, key_kind)?;
        solver.on_path.insert(root_key.clone());
        let (values, action) = solver.solve(env, &root)?;
        solver.memo.insert(root_key, values.clone());
        Ok((values, action))
    })();
    let back = env.restore(&root);
    let (values, action) = outcome?;
    back?;
    Ok(Solution {
        values,
        action: action.expect("a state with a decision has an action"),
        distinct_states: solver.memo.len(),
        nodes: solver.nodes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// How deep [`solve`] recurses before it refuses: each level is a frame on the caller's stack.
pub const MAX_SOLVE_DEPTH: usize = 1_000;

struct Solver {
    /// The solved states: each player's return from there.
    memo: HashMap<Vec<u8>, Vec<f64>>,
    /// The states on the current path (a step back to one is a repetition, worth 0).
    on_path: HashSet<Vec<u8>>,
    nodes: usize,
    max_nodes: usize,
    players: usize,
    key_kind: KeyKind,
}

impl Solver {
    /// The values of the state `at` (whose player is to move) and its best action.
    fn solve(&mut self, env: &mut Env, at: &Snapshot) -> Result<(Vec<f64>, Option<Action>), SearchError> {
        env.restore(at)?;
        let Some(player) = env.current_player() else { return Ok((vec![0.0; self.players], None)) };
        let actions = env.actions()?;
        let mut best: Option<(Vec<f64>, Action)> = None;
        for action in actions {
            if self.nodes >= self.max_nodes {
                return Err(SearchError::NoDecision(format!(
                    "the game has more than {} states to step through: raise max_nodes (--max-nodes) or search it with mcts, beam or bfs",
                    self.max_nodes
                )));
            }
            env.restore(at)?;
            let t = env.step(action.clone())?;
            self.nodes += 1;
            let child_key = key(env, self.key_kind)?;
            let future = match self.memo.get(&child_key) {
                Some(values) => values.clone(),
                None if self.on_path.contains(&child_key) => vec![0.0; self.players],
                None => {
                    let values = if t.done() {
                        vec![0.0; self.players]
                    } else {
                        if self.on_path.len() >= MAX_SOLVE_DEPTH {
                            return Err(SearchError::NoDecision(format!(
                                "the game goes deeper than {MAX_SOLVE_DEPTH} moves without ending: \
                                 search it with mcts, beam or bfs instead"
                            )));
                        }
                        let child = env.snapshot()?;
                        self.on_path.insert(child_key.clone());
                        let solved = self.solve(env, &child);
                        self.on_path.remove(&child_key);
                        solved?.0
                    };
                    self.memo.insert(child_key, values.clone());
                    values
                }
            };
            let values: Vec<f64> = (0..self.players).map(|p| t.reward(p as u32) + future[p]).collect();
            let better = best.as_ref().is_none_or(|(b, _)| values[player as usize] > b[player as usize]);
            if better {
                best = Some((values, action));
            }
        }
        match best {
            Some((values, action)) => Ok((values, Some(action))),
            None => Ok((vec![0.0; self.players], None)),
        }
    }
}
