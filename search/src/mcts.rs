//! Monte Carlo tree search: UCT with random rollouts ([`mcts`]) and PUCT with a prior and value
//! callback ([`puct`]), over exact snapshots.
//!
//! Each node holds a [`Snapshot`], taken lazily: a new leaf is scored by one `wasmgym_rollout`
//! call that applies the expanding action and plays on at random inside the guest (one crossing
//! per simulation), and is snapshotted only when a later simulation goes through it. A
//! simulation therefore costs one restore, one guest call and, now and then, a step and a
//! snapshot. Stochastic environments get chance nodes: every pass through an action reseeds the
//! environment's generator from the search's, steps, and follows the child of the outcome reached
//! (keyed by the environment's state key, else by the state hash).

use std::time::Instant;

use serde::Serialize;
use wasmgym::{Env, Snapshot};
use wasmgym_abi::rng::Rng;
use wasmgym_abi::wire::{self, PlayoutRequest, RolloutRequest, rollout_pick};
use wasmgym_abi::{Action, Determinism, Observation};

use crate::{SearchError, Tree, TreeNode, label};

/// How [`mcts`] and [`puct`] search. Plain data; `..Default::default()` fills the rest.
#[derive(Clone, Debug)]
pub struct MctsOptions {
    /// Simulations in all (split evenly over [`MctsOptions::trees`]), at least 1.
    pub simulations: usize,
    /// The exploration constant: `c` in UCT's `mean + c·sqrt(ln N / n)`, or `c_puct` in PUCT's
    /// `mean + c·P·sqrt(N) / (1 + n)`.
    pub exploration: f64,
    /// Steps a random rollout may take before it stops (and scores the rewards so far).
    pub max_rollout_steps: usize,
    /// Seed of every random choice the search makes (expansions, rollouts, chance outcomes,
    /// noise, the final pick at a temperature): the same seed gives the same tree.
    pub seed: u64,
    /// Dirichlet noise mixed into the root's priors (PUCT; AlphaZero: alpha 0.3, fraction 0.25).
    pub dirichlet: Option<Dirichlet>,
    /// 0 picks the most visited root action; above 0, an action is drawn with probability
    /// proportional to `visits^(1/temperature)`.
    pub temperature: f64,
    /// Independent trees (root parallelism), each with its own seed and a fork of the
    /// environment, whose root statistics are summed. The result depends on `trees`, never on
    /// `threads`.
    pub trees: usize,
    /// Threads the trees are spread over (UCT only).
    pub threads: usize,
    /// Leaves [`puct`] collects (with a virtual loss on their paths) before one evaluator call.
    pub batch_size: usize,
    /// Keep the tree for [`SearchResult::tree`] (first tree only).
    pub keep_tree: bool,
    /// Count [`SearchResult::distinct_states`] after the search (a key query per state held).
    pub count_distinct: bool,
    /// Merge transpositions: a state reached by another path (the same key, from
    /// [`Env::state_key`], else the machine hash; and the same reward for the step into it) becomes
    /// one node, whose statistics every path to it shares (the tree becomes a graph; a cycle
    /// ends a selection). [`mcts`] on deterministic environments only; one key query per state
    /// taken.
    pub transpositions: bool,
    /// [`mcts`]: replay each simulation's path from the root inside the guest, in the same call
    /// as its rollout (`wasmgym_playout`), instead of keeping a snapshot per node; a simulation is
    /// then one restore of the root and one call. Used where the environment allows it: the module
    /// exports `wasmgym_playout` (every SDK environment does), it is deterministic with discrete
    /// actions, and, when transpositions or distinct states are asked for, it gives state keys.
    /// A step costs more than a restore only in rare environments: switch it off for those.
    pub replay: bool,
    /// With [`MctsOptions::replay`]: the most steps a simulation replays from a state held in a
    /// snapshot (the root's, at first). A node further than that below the nearest one gets a
    /// snapshot of its own, so deep trees (long episodes, few actions) replay a bounded path
    /// instead of one that grows with the tree.
    pub replay_depth: usize,
}

/// Dirichlet noise on the root's priors: `(1 - fraction)·P + fraction·Dir(alpha)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dirichlet {
    /// Concentration of every component.
    pub alpha: f64,
    /// Weight of the noise.
    pub fraction: f64,
}

impl Default for MctsOptions {
    fn default() -> Self {
        MctsOptions {
            simulations: 1000,
            exploration: std::f64::consts::SQRT_2,
            max_rollout_steps: 1000,
            seed: 0,
            dirichlet: None,
            temperature: 0.0,
            trees: 1,
            threads: 1,
            batch_size: 1,
            keep_tree: false,
            count_distinct: false,
            transpositions: false,
            replay: true,
            replay_depth: 16,
        }
    }
}

/// One action at the root, with what the search learned of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChildStats {
    /// The action.
    pub action: Action,
    /// Simulations that went through it.
    pub visits: u64,
    /// Mean return of those simulations for the player to move at the root.
    pub mean_value: f64,
    /// Its prior (uniform for UCT).
    pub prior: f64,
}

/// What a search found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchResult {
    /// The chosen root action: the most visited (ties: the first listed), or drawn at the
    /// temperature.
    pub action: Action,
    /// Its mean value for the player to move.
    pub value: f64,
    /// Every root action, in the order the environment listed them.
    pub children: Vec<ChildStats>,
    /// Simulations run.
    pub simulations: usize,
    /// Nodes in the trees.
    pub nodes: usize,
    /// States the search expanded (listed their actions): the nodes a later simulation went
    /// through; the others were scored by a rollout and never revisited.
    pub states: usize,
    /// Nodes holding a snapshot: the expanded ones, or, when the search replayed paths
    /// ([`MctsOptions::replay`]), only the root of each tree.
    pub snapshots: usize,
    /// Distinct states among those (by the environment's state key, else the machine hash),
    /// when [`MctsOptions::count_distinct`] asked for it: the same state reached by two paths
    /// is two nodes of the tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_states: Option<usize>,
    /// Wall-clock time of the search.
    pub seconds: f64,
    /// The first tree, when [`MctsOptions::keep_tree`] asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<Tree>,
}

impl SearchResult {
    /// Visit counts of the root actions as a distribution (summing to 1 over the listed actions).
    pub fn policy(&self) -> Vec<f64> {
        let total: u64 = self.children.iter().map(|c| c.visits).sum();
        self.children.iter().map(|c| c.visits as f64 / total.max(1) as f64).collect()
    }
}

/// A state [`puct`] asks its [`Evaluator`] about.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The observation in this state.
    pub observation: Observation,
    /// The actions the search may take here (legal actions, or valid text actions).
    pub actions: Vec<Action>,
    /// Who moves here.
    pub player: u32,
}

/// What an [`Evaluator`] says of a [`Leaf`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    /// Prior weights over the leaf's actions (non-negative, normalised by the search); `None`:
    /// uniform.
    pub priors: Option<Vec<f64>>,
    /// The leaf's value for the player to move there (for two players, the other gets its
    /// negation: zero-sum); `None`: a random rollout from the leaf decides.
    pub value: Option<f64>,
}

/// The prior and value callback of [`puct`]: a policy/value network, an LLM, a heuristic. It gets
/// a batch of leaves at once (up to [`MctsOptions::batch_size`]) so a network can evaluate them
/// together. Closures `FnMut(&[Leaf]) -> Vec<Evaluation>` are evaluators.
pub trait Evaluator {
    /// One evaluation per leaf, in order.
    fn evaluate(&mut self, leaves: &[Leaf]) -> Vec<Evaluation>;
}

impl<F: FnMut(&[Leaf]) -> Vec<Evaluation>> Evaluator for F {
    fn evaluate(&mut self, leaves: &[Leaf]) -> Vec<Evaluation> {
        self(leaves)
    }
}

/// An evaluator with uniform priors and random-rollout values: PUCT then searches like UCT.
pub struct RolloutEvaluator;

impl Evaluator for RolloutEvaluator {
    fn evaluate(&mut self, leaves: &[Leaf]) -> Vec<Evaluation> {
        vec![Evaluation::default(); leaves.len()]
    }
}

/// Runs MCTS with UCT selection and random rollouts from `env`'s current state. The environment
/// is left in the state it was in.
pub fn mcts(env: &mut Env, options: &MctsOptions) -> Result<SearchResult, SearchError> {
    run(env, options, None)
}

/// Runs MCTS with PUCT selection, priors and values from `evaluator` (values it leaves out come
/// from random rollouts), Dirichlet noise at the root if asked. One thread; [`MctsOptions::trees`]
/// trees one after another.
pub fn puct(env: &mut Env, evaluator: &mut dyn Evaluator, options: &MctsOptions) -> Result<SearchResult, SearchError> {
    run(env, options, Some(evaluator))
}

fn run<'e>(
    env: &mut Env,
    options: &MctsOptions,
    mut evaluator: Option<&mut (dyn Evaluator + 'e)>,
) -> Result<SearchResult, SearchError> {
    let started = Instant::now();
    crate::check_decision(env)?;
    let trees = options.trees.max(1);
    let simulations = options.simulations.max(1);
    let per_tree = |t: usize| simulations / trees + usize::from(t < simulations % trees);
    let seed = |t: usize| if t == 0 { options.seed } else { crate::mix(options.seed, t as u64) };
    let threads = options.threads.clamp(1, trees);
    let mut searches: Vec<Search> = Vec::with_capacity(trees);
    if threads == 1 || evaluator.is_some() {
        for t in 0..trees {
            let mut search = Search::new(env, options, seed(t))?;
            let outcome = search.run(env, per_tree(t), evaluator.as_deref_mut());
            let back = env.restore(&search.nodes[0].state.clone().expect("the root has a state"));
            outcome?;
            back?;
            searches.push(search);
        }
    } else {
        let mut forks: Vec<Env> = (0..threads).map(|_| env.fork()).collect::<Result<_, _>>()?;
        let results: Vec<Result<Vec<(usize, Search)>, SearchError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = forks
                .iter_mut()
                .enumerate()
                .map(|(i, fork)| {
                    let (per_tree, seed) = (&per_tree, &seed);
                    scope.spawn(move || {
                        (i..trees)
                            .step_by(threads)
                            .map(|t| {
                                let mut search = Search::new(fork, options, seed(t))?;
                                search.run(fork, per_tree(t), None)?;
                                fork.restore(search.nodes[0].state.as_ref().expect("the root has a state"))?;
                                Ok((t, search))
                            })
                            .collect::<Result<Vec<_>, SearchError>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a search thread panicked")).collect()
        });
        let mut all = Vec::new();
        for r in results {
            all.extend(r?);
        }
        all.sort_by_key(|(t, _)| *t);
        searches = all.into_iter().map(|(_, s)| s).collect();
    }
    let mut rng = Rng::seed_from_u64(crate::mix(options.seed, u64::MAX));
    let mut result = summarise(&searches, options, &mut rng, simulations, started);
    if options.count_distinct && searches.iter().all(|s| s.replay) {
        let keys: std::collections::HashSet<&Vec<u8>> =
            searches.iter().flat_map(|s| &s.nodes).filter_map(|n| n.key.as_ref()).collect();
        result.distinct_states = Some(keys.len());
    } else if options.count_distinct {
        let root = searches[0].nodes[0].state.clone().expect("the root has a state");
        let mut keys = std::collections::HashSet::new();
        let counted = searches.iter().flat_map(|s| &s.nodes).filter_map(|n| n.state.as_ref()).try_for_each(|state| {
            env.restore(state)?;
            keys.insert(crate::beam::key(env, crate::KeyKind::Env)?);
            Ok::<_, SearchError>(())
        });
        env.restore(&root)?;
        counted?;
        result.distinct_states = Some(keys.len());
    }
    Ok(result)
}

fn summarise(
    searches: &[Search],
    options: &MctsOptions,
    rng: &mut Rng,
    simulations: usize,
    started: Instant,
) -> SearchResult {
    let first = &searches[0];
    let root = &first.nodes[0];
    let mut children: Vec<ChildStats> = root
        .edges
        .iter()
        .map(|e| ChildStats { action: e.action.clone(), visits: 0, mean_value: 0.0, prior: e.prior })
        .collect();
    let mut totals = vec![0.0; children.len()];
    for search in searches {
        for (i, edge) in search.nodes[0].edges.iter().enumerate() {
            children[i].visits += edge.visits;
            totals[i] += edge.total;
        }
    }
    for (child, total) in children.iter_mut().zip(totals) {
        child.mean_value = if child.visits == 0 { 0.0 } else { total / child.visits as f64 };
    }
    let best = pick(&children, options.temperature, rng);
    SearchResult {
        action: children[best].action.clone(),
        value: children[best].mean_value,
        simulations,
        nodes: searches.iter().map(|s| s.nodes.len()).sum(),
        states: searches
            .iter()
            .flat_map(|s| &s.nodes)
            .filter(|n| !n.merged && (n.state.is_some() || n.expanded))
            .count(),
        snapshots: searches.iter().map(|s| s.nodes.iter().filter(|n| n.state.is_some()).count()).sum(),
        distinct_states: None,
        seconds: started.elapsed().as_secs_f64(),
        tree: options.keep_tree.then(|| first.tree()),
        children,
    }
}

/// The root action to play: the most visited (ties: the first), or drawn at `temperature`.
fn pick(children: &[ChildStats], temperature: f64, rng: &mut Rng) -> usize {
    let most = children.iter().enumerate().max_by_key(|(i, c)| (c.visits, std::cmp::Reverse(*i))).map(|(i, _)| i);
    let most = most.expect("at least one action");
    if temperature <= 0.0 {
        return most;
    }
    let max = children[most].visits.max(1) as f64;
    let weights: Vec<f64> = children.iter().map(|c| (c.visits as f64 / max).powf(1.0 / temperature)).collect();
    let total: f64 = weights.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return most;
    }
    let mut x = crate::unit(rng) * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    most
}

struct Edge {
    action: Action,
    prior: f64,
    /// The child (deterministic environments).
    child: Option<usize>,
    /// The children per sampled outcome (stochastic environments), by state key.
    outcomes: Vec<(Vec<u8>, usize)>,
    visits: u64,
    /// Sum of the returns, for the player who chose this action.
    total: f64,
    /// `total / visits` and `1 / sqrt(visits)`, kept by the backup so that UCT's selection, which
    /// scores every edge of every node it passes, divides and takes square roots only once per node.
    mean: f64,
    inv_sqrt: f64,
}

struct Node {
    parent: Option<(usize, usize)>,
    /// The state, once a simulation went through (or for the root).
    state: Option<Snapshot>,
    /// Who chooses here; `None` if the episode is over.
    player: Option<u32>,
    /// The rewards of the step that led here, once known.
    reward_in: Option<Vec<f64>>,
    /// Filled when the state is taken (or, for PUCT, when the leaf is evaluated).
    edges: Vec<Edge>,
    visits: u64,
    /// A PUCT leaf waiting for its evaluation in the current batch.
    pending: bool,
    /// Merged into an equal node reached first (transpositions): no edge leads here any more.
    merged: bool,
    /// Replay mode: the edges are known (the state was reached by a playout that listed them).
    expanded: bool,
    /// Replay mode: the state key, kept for [`MctsOptions::count_distinct`].
    key: Option<Vec<u8>>,
}

impl Node {
    fn new(parent: Option<(usize, usize)>, player: Option<u32>) -> Node {
        Node {
            parent,
            state: None,
            player,
            reward_in: None,
            edges: Vec::new(),
            visits: 0,
            pending: false,
            merged: false,
            expanded: false,
            key: None,
        }
    }
}

struct Search<'o> {
    nodes: Vec<Node>,
    rng: Rng,
    options: &'o MctsOptions,
    players: usize,
    stochastic: bool,
    /// The node whose state the environment holds now (it was just snapshotted there).
    env_at: Option<usize>,
    /// Transpositions: the node of every state key taken.
    table: std::collections::HashMap<Vec<u8>, usize>,
    /// UCT by replay from the root ([`MctsOptions::replay`]).
    replay: bool,
    /// Replay mode: ask each playout that reaches a new state for its key.
    keys: bool,
    /// Replay mode: the request of the next playout and the path it replays (reused buffers).
    request: PlayoutRequest,
    path: Vec<(usize, usize)>,
    /// Replay mode: the answer of the last playout (a reused buffer).
    answer: wire::Playout,
}

/// Where a selection by replay stopped.
#[derive(Clone, Copy)]
enum Stop {
    /// At a terminal node, or one without actions: nothing to play.
    Terminal(usize),
    /// At a node already in the path (a cycle through a transposition): roll out from it.
    Rollout(usize),
    /// At an untried edge: roll out from it, making a new child.
    NewChild { parent: usize, edge: usize, action: i64 },
    /// At a node reached before only by a rollout: expand it and roll out from it.
    Expand(usize),
}

/// The end of a selection: where to score from.
enum Reached {
    /// A new child to score with a rollout from `parent` through `edge`.
    Expand { parent: usize, edge: usize },
    /// A node already scored: terminal, or without actions, or (PUCT) new and evaluated next.
    Node(usize),
}

impl<'o> Search<'o> {
    fn new(env: &mut Env, options: &'o MctsOptions, seed: u64) -> Result<Search<'o>, SearchError> {
        let player = env.current_player();
        let mut root = Node::new(None, player);
        root.state = Some(env.snapshot()?);
        root.edges = edges(env.actions()?);
        if root.edges.is_empty() {
            return Err(SearchError::NoDecision("no action is legal in this state".into()));
        }
        let stochastic = env.spec().determinism == Determinism::Stochastic;
        let players = env.spec().players.max(1) as usize;
        let mut table = std::collections::HashMap::new();
        if options.transpositions && !stochastic {
            table.insert(crate::beam::key(env, crate::KeyKind::Env)?, 0);
        }
        let keys = options.transpositions || options.count_distinct;
        let replay = options.replay
            && env.has_playout()
            && !stochastic
            && root.edges.iter().all(|e| matches!(e.action, Action::Discrete(_)))
            && (!keys || env.state_key()?.is_some());
        root.expanded = true;
        if replay && keys {
            root.key = env.state_key()?;
        }
        let rng = Rng::seed_from_u64(seed);
        let request = PlayoutRequest::default();
        Ok(Search {
            nodes: vec![root],
            rng,
            options,
            players,
            stochastic,
            env_at: Some(0),
            table,
            replay,
            keys,
            request,
            path: Vec::new(),
            answer: wire::Playout::default(),
        })
    }

    fn run<'e>(
        &mut self,
        env: &mut Env,
        simulations: usize,
        evaluator: Option<&mut (dyn Evaluator + 'e)>,
    ) -> Result<(), SearchError> {
        match evaluator {
            None if self.replay => (0..simulations).try_for_each(|_| self.simulate_replay(env)),
            None => (0..simulations).try_for_each(|_| self.simulate_uct(env)),
            Some(evaluator) => self.run_puct(env, simulations, evaluator),
        }
    }

    /// One UCT simulation: select, expand one untried action by a rollout, back up.
    fn simulate_uct(&mut self, env: &mut Env) -> Result<(), SearchError> {
        let mut path = Vec::new();
        let leaf = self.select(env, &mut path, false)?;
        let (tail, leaf) = match leaf {
            Reached::Expand { parent, edge } => (self.expand_by_rollout(env, parent, edge)?, None),
            Reached::Node(at) => (self.rollout_from(env, at)?, Some(at)),
        };
        self.backup(&path, tail, leaf);
        Ok(())
    }

    /// One UCT simulation by replay: select down the known nodes, then restore the root and, in
    /// one `wasmgym_playout`, replay the path and roll out from its end. A path that ends at an
    /// untried edge rolls out from that edge (a new child, as [`Search::simulate_uct`]); one that
    /// ends at a node reached before only by a rollout expands it (its legal actions and key come
    /// with the playout) and rolls out from it, the rollout's first step making its first child.
    fn simulate_replay(&mut self, env: &mut Env) -> Result<(), SearchError> {
        let mut path = std::mem::take(&mut self.path);
        let mut request = std::mem::take(&mut self.request);
        path.clear();
        let prefix = &mut request.prefix;
        prefix.clear();
        let mut at = 0;
        let stop = loop {
            let node = &self.nodes[at];
            if node.player.is_none() || (node.expanded && node.edges.is_empty()) {
                break Stop::Terminal(at);
            }
            if !node.expanded {
                break Stop::Expand(at);
            }
            let edge = self.uct_edge(at);
            path.push((at, edge));
            let Action::Discrete(action) = self.nodes[at].edges[edge].action else { unreachable!("checked in new") };
            match self.nodes[at].edges[edge].child {
                Some(child) if self.options.transpositions && path.iter().any(|&(n, _)| n == child) => {
                    prefix.push(action);
                    break Stop::Rollout(child); // a cycle through a transposition
                }
                Some(child) => {
                    prefix.push(action);
                    at = child;
                }
                None => break Stop::NewChild { parent: at, edge, action },
            }
        };
        let outcome = self.replay(env, &mut path, &mut request, stop);
        (self.path, self.request) = (path, request);
        outcome
    }

    /// The playout and the backup of a [`Search::simulate_replay`] that stopped at `stop`.
    fn replay(
        &mut self,
        env: &mut Env,
        path: &mut Vec<(usize, usize)>,
        request: &mut PlayoutRequest,
        stop: Stop,
    ) -> Result<(), SearchError> {
        let (first, expand) = match stop {
            Stop::Terminal(at) => {
                self.backup(path, vec![0.0; self.players], Some(at));
                return Ok(());
            }
            Stop::Rollout(_) => (None, false),
            Stop::NewChild { action, .. } => (Some(action), false),
            Stop::Expand(_) => (None, true),
        };
        request.listed = true; // every action of the path was listed on it: the environment is deterministic
        request.legal_actions = expand;
        request.state_key = expand && self.keys;
        // Replay from the deepest node of the path that holds a snapshot, first giving one to a node
        // every `replay_depth` steps below it.
        let mut anchor = (0..path.len()).rev().find(|&i| self.nodes[path[i].0].state.is_some()).unwrap_or(0);
        let depth = self.options.replay_depth.max(1);
        while request.prefix.len() - anchor > depth && anchor + depth < path.len() {
            let (from, to) = (path[anchor].0, path[anchor + depth].0);
            env.restore(self.nodes[from].state.as_ref().expect("anchors hold a state"))?;
            let steps = PlayoutRequest {
                prefix: request.prefix[anchor..anchor + depth].to_vec(),
                listed: true,
                ..Default::default()
            };
            env.playout_into(&steps, &mut self.answer)?;
            self.nodes[to].state = Some(env.snapshot()?);
            anchor += depth;
        }
        request.prefix.drain(..anchor);
        request.first = first;
        request.seed = self.rng.next_u64();
        request.max_steps = self.options.max_rollout_steps.try_into().unwrap_or(u32::MAX);
        env.restore(self.nodes[path.get(anchor).map_or(0, |p| p.0)].state.as_ref().expect("anchors hold a state"))?;
        self.env_at = None;
        let mut playout = std::mem::take(&mut self.answer);
        let played = env.playout_into(request, &mut playout);
        let outcome = played.map_err(SearchError::from).and_then(|played| {
            assert!(played, "replay mode needs wasmgym_playout, checked in new");
            self.back_up_playout(path, &playout, stop)
        });
        self.answer = playout;
        outcome
    }

    /// Grows the tree by what `playout` found and backs its returns up `path`.
    fn back_up_playout(
        &mut self,
        path: &mut Vec<(usize, usize)>,
        playout: &wire::Playout,
        stop: Stop,
    ) -> Result<(), SearchError> {
        let tail = playout.rollout.returns.clone();
        match stop {
            Stop::Terminal(_) => unreachable!("answered above"),
            Stop::Rollout(at) => self.backup(path, tail, Some(at)),
            Stop::NewChild { parent, edge, .. } => {
                self.add_rolled_child(parent, edge, playout);
                self.backup(path, tail, None);
            }
            Stop::Expand(mut at) => {
                let node = &mut self.nodes[at];
                node.reward_in = Some(rewards(&playout.prefix_rewards, self.players));
                let legal = playout.legal_actions.as_deref().unwrap_or_default();
                node.edges = edges(legal.iter().map(|&a| Action::Discrete(a)).collect());
                node.expanded = true;
                node.key = playout.state_key.clone().flatten();
                if let (true, Some(key)) = (self.options.transpositions, self.nodes[at].key.clone()) {
                    match self.table.get(&key) {
                        Some(&other) if self.nodes[other].reward_in == self.nodes[at].reward_in => {
                            let (parent, edge) = self.nodes[at].parent.expect("the root is expanded from the start");
                            self.nodes[parent].edges[edge].child = Some(other);
                            self.nodes[at].merged = true;
                            self.nodes[at].key = None;
                            if path.iter().any(|&(n, _)| n == other) {
                                self.backup(path, tail, Some(other)); // a cycle through a transposition
                                return Ok(());
                            }
                            at = other;
                        }
                        Some(_) => {}
                        None => {
                            self.table.insert(key, at);
                        }
                    }
                }
                let Some(first) = playout.first else {
                    self.backup(path, tail, Some(at)); // no step: no actions, or no rollout steps
                    return Ok(());
                };
                let edge = self.nodes[at].edges.iter().position(|e| e.action == Action::Discrete(first));
                let edge = edge.ok_or_else(|| {
                    SearchError::Env(wasmgym::Error::Protocol {
                        message: format!("playout's first action {first} is not among the legal actions it listed"),
                    })
                })?;
                path.push((at, edge));
                if self.nodes[at].edges[edge].child.is_none() {
                    self.add_rolled_child(at, edge, playout);
                }
                self.backup(path, tail, None);
            }
        }
        Ok(())
    }

    /// A new child of `parent` through `edge`, the playout's rollout's first step: who moves there,
    /// and, if that step ended the episode, its reward (the whole rollout's return).
    fn add_rolled_child(&mut self, parent: usize, edge: usize, playout: &wire::Playout) {
        let child = self.nodes.len();
        let mut node = Node::new(Some((parent, edge)), playout.rollout.after_first);
        if node.player.is_none() {
            node.reward_in = Some(playout.rollout.returns.clone());
        }
        self.nodes.push(node);
        self.nodes[parent].edges[edge].child = Some(child);
    }

    /// Walks down from the root, taking states as it goes, to a leaf; `path` gets the edges.
    fn select(&mut self, env: &mut Env, path: &mut Vec<(usize, usize)>, puct: bool) -> Result<Reached, SearchError> {
        let mut at = 0;
        loop {
            if self.nodes[at].player.is_none() || self.nodes[at].pending {
                return Ok(Reached::Node(at));
            }
            if self.nodes[at].state.is_none()
                && let Some(other) = self.take_state(env, at)?
            {
                at = other;
                if path.iter().any(|&(n, _)| n == at) {
                    return Ok(Reached::Node(at)); // a cycle through a transposition
                }
                continue;
            }
            if self.nodes[at].edges.is_empty() {
                return Ok(Reached::Node(at));
            }
            let edge = if puct { self.puct_edge(at) } else { self.uct_edge(at) };
            path.push((at, edge));
            if self.stochastic {
                match self.sample_outcome(env, at, edge)? {
                    Some(child) => at = child,
                    None => return Ok(Reached::Node(self.nodes.len() - 1)),
                }
                continue;
            }
            match self.nodes[at].edges[edge].child {
                Some(child) if self.options.transpositions && path.iter().any(|&(n, _)| n == child) => {
                    return Ok(Reached::Node(child)); // a cycle through a transposition
                }
                Some(child) => at = child,
                None if puct => {
                    let child = self.step_to_new_child(env, at, edge)?;
                    return Ok(Reached::Node(child));
                }
                None => return Ok(Reached::Expand { parent: at, edge }),
            }
        }
    }

    /// UCT's edge: an untried one at random, else the best `mean + c·sqrt(ln N / n)`.
    fn uct_edge(&mut self, at: usize) -> usize {
        let node = &self.nodes[at];
        let untried = node.edges.iter().filter(|e| e.visits == 0).count();
        if untried > 0 {
            let k = rollout_pick(&mut self.rng, untried);
            return node.edges.iter().enumerate().filter(|(_, e)| e.visits == 0).nth(k).map(|(i, _)| i).unwrap_or(0);
        }
        // mean + c·sqrt(ln N / n), as mean + (c·sqrt(ln N))·(1 / sqrt(n)).
        let c_sqrt_ln_n = self.options.exploration * (node.visits.max(1) as f64).ln().sqrt();
        argmax(node.edges.iter().map(|e| e.mean + c_sqrt_ln_n * e.inv_sqrt))
    }

    /// PUCT's edge: the best `mean + c·P·sqrt(N) / (1 + n)` (unvisited edges count a mean of 0).
    fn puct_edge(&self, at: usize) -> usize {
        let node = &self.nodes[at];
        let sqrt_n = (node.visits.max(1) as f64).sqrt();
        let c = self.options.exploration;
        let score = |e: &Edge| {
            let mean = if e.visits == 0 { 0.0 } else { e.total / e.visits as f64 };
            mean + c * e.prior * sqrt_n / (1.0 + e.visits as f64)
        };
        argmax(node.edges.iter().map(score))
    }

    /// Takes the state of a node that has none yet: restore its parent, step, snapshot. With
    /// transpositions, a state already in the graph merges: the edge is redirected to the node
    /// reached first, which is returned.
    fn take_state(&mut self, env: &mut Env, at: usize) -> Result<Option<usize>, SearchError> {
        let (parent, edge) = self.nodes[at].parent.expect("the root always has a state");
        self.go_to(env, parent)?;
        let (player, reward) = step_quietly(env, self.nodes[parent].edges[edge].action.clone(), self.players)?;
        let node = &mut self.nodes[at];
        node.reward_in = Some(reward);
        node.player = player;
        if player.is_some() && self.options.transpositions && !self.stochastic {
            let key = crate::beam::key(env, crate::KeyKind::Env)?;
            match self.table.get(&key) {
                Some(&other) if self.nodes[other].reward_in == self.nodes[at].reward_in => {
                    self.nodes[parent].edges[edge].child = Some(other);
                    self.nodes[at].merged = true;
                    self.env_at = None;
                    return Ok(Some(other));
                }
                Some(_) => {}
                None => {
                    self.table.insert(key, at);
                }
            }
        }
        let node = &mut self.nodes[at];
        if node.player.is_some() {
            node.edges = edges(env.actions()?);
            node.state = Some(env.snapshot()?);
            self.env_at = Some(at);
        } else {
            self.env_at = None;
        }
        Ok(None)
    }

    /// Puts the environment in `node`'s state (a no-op if it is there already).
    fn go_to(&mut self, env: &mut Env, node: usize) -> Result<(), SearchError> {
        if self.env_at != Some(node) {
            env.restore(self.nodes[node].state.as_ref().expect("only nodes with a state are restored"))?;
            self.env_at = Some(node);
        }
        Ok(())
    }

    /// A new child of `parent` through `edge`, scored by one rollout that applies the edge's
    /// action first; returns each player's return from that step on.
    fn expand_by_rollout(&mut self, env: &mut Env, parent: usize, edge: usize) -> Result<Vec<f64>, SearchError> {
        self.go_to(env, parent)?;
        let action = self.nodes[parent].edges[edge].action.clone();
        let seed = self.rng.next_u64();
        let max_steps = self.options.max_rollout_steps;
        self.env_at = None;
        let Playout { after_first, returns, first_rewards } =
            rollout(env, Some(action), seed, max_steps, self.players)?;
        let child = self.nodes.len();
        let mut node = Node::new(Some((parent, edge)), after_first);
        if after_first.is_none() {
            node.reward_in = Some(first_rewards.unwrap_or_else(|| returns.clone()));
        }
        self.nodes.push(node);
        self.nodes[parent].edges[edge].child = Some(child);
        Ok(returns)
    }

    /// A rollout from a node already in the tree (terminal: nothing to add).
    fn rollout_from(&mut self, env: &mut Env, at: usize) -> Result<Vec<f64>, SearchError> {
        if self.nodes[at].player.is_none() || self.nodes[at].state.is_none() {
            return Ok(vec![0.0; self.players]);
        }
        self.go_to(env, at)?;
        self.env_at = None;
        let seed = self.rng.next_u64();
        if self.stochastic {
            env.reseed(self.rng.next_u64());
        }
        Ok(rollout(env, None, seed, self.options.max_rollout_steps, self.players)?.returns)
    }

    /// Stochastic environments: reseeds, steps through `edge`, and returns the child of the
    /// outcome reached, or `None` after adding a new child (the last node) for a new outcome.
    fn sample_outcome(&mut self, env: &mut Env, at: usize, edge: usize) -> Result<Option<usize>, SearchError> {
        env.restore(self.nodes[at].state.as_ref().expect("selection takes states first"))?;
        env.reseed(self.rng.next_u64());
        let transition = env.step(self.nodes[at].edges[edge].action.clone())?;
        env.reseed(0); // the key must not depend on the generator, which is reseeded before every use
        let key = match env.state_key()? {
            Some(key) => key,
            None => env.state_hash()?.to_vec(),
        };
        if let Some(&(_, child)) = self.nodes[at].edges[edge].outcomes.iter().find(|(k, _)| *k == key) {
            self.env_at = None;
            return Ok(Some(child));
        }
        let child = self.nodes.len();
        let mut node = Node::new(Some((at, edge)), transition.current_player.filter(|_| !transition.done()));
        node.reward_in = Some(rewards(&transition.rewards, self.players));
        if node.player.is_some() {
            node.edges = edges(env.actions()?);
            node.state = Some(env.snapshot()?);
        }
        self.nodes.push(node);
        self.nodes[at].edges[edge].outcomes.push((key, child));
        self.env_at = Some(child).filter(|&c| self.nodes[c].state.is_some());
        Ok(None)
    }

    /// PUCT: steps `edge` from `at` into a new child with its state taken (edges filled later,
    /// from the evaluation).
    fn step_to_new_child(&mut self, env: &mut Env, at: usize, edge: usize) -> Result<usize, SearchError> {
        self.go_to(env, at)?;
        let transition = env.step(self.nodes[at].edges[edge].action.clone())?;
        let child = self.nodes.len();
        let mut node = Node::new(Some((at, edge)), transition.current_player.filter(|_| !transition.done()));
        node.reward_in = Some(rewards(&transition.rewards, self.players));
        if node.player.is_some() {
            node.state = Some(env.snapshot()?);
            self.env_at = Some(child);
        } else {
            self.env_at = None;
        }
        self.nodes.push(node);
        self.nodes[at].edges[edge].child = Some(child);
        Ok(child)
    }

    /// Adds `tail` (each player's return from the leaf on) and the rewards along `path` to the
    /// path's edges, each scored for the player who chose it. `leaf`: the node the last edge led
    /// to, whose reward joins the tail; `None` when the last edge was expanded by a rollout, which
    /// counted its reward already.
    fn backup(&mut self, path: &[(usize, usize)], mut tail: Vec<f64>, leaf: Option<usize>) {
        for (i, &(at, edge)) in path.iter().enumerate().rev() {
            let child = path.get(i + 1).map(|p| p.0).or(leaf);
            if let Some(reward) = child.and_then(|c| self.nodes[c].reward_in.as_ref()) {
                tail.iter_mut().zip(reward).for_each(|(t, r)| *t += r);
            }
            let node = &mut self.nodes[at];
            let player = node.player.unwrap_or(0) as usize;
            node.visits += 1;
            let e = &mut node.edges[edge];
            e.visits += 1;
            e.total += tail.get(player).copied().unwrap_or(0.0);
            e.mean = e.total / e.visits as f64;
            e.inv_sqrt = 1.0 / (e.visits as f64).sqrt();
        }
    }

    fn run_puct(
        &mut self,
        env: &mut Env,
        simulations: usize,
        evaluator: &mut dyn Evaluator,
    ) -> Result<(), SearchError> {
        // The root is evaluated first, for its priors (and noise).
        let root_eval = self.evaluate(env, &[0], evaluator)?;
        self.apply_priors(0, root_eval[0].priors.as_deref());
        if let Some(noise) = self.options.dirichlet {
            let sample = dirichlet(&mut self.rng, noise.alpha, self.nodes[0].edges.len());
            for (edge, n) in self.nodes[0].edges.iter_mut().zip(sample) {
                edge.prior = (1.0 - noise.fraction) * edge.prior + noise.fraction * n;
            }
        }
        let mut done = 0;
        while done < simulations {
            let batch = self.options.batch_size.clamp(1, simulations - done);
            let mut leaves: Vec<(Vec<(usize, usize)>, usize)> = Vec::new();
            for _ in 0..batch {
                let mut path = Vec::new();
                let Reached::Node(leaf) = self.select(env, &mut path, true)? else {
                    unreachable!("PUCT never expands by rollout")
                };
                let fresh =
                    self.nodes[leaf].player.is_some() && self.nodes[leaf].edges.is_empty() && !self.nodes[leaf].pending;
                if fresh {
                    self.nodes[leaf].pending = true;
                }
                self.virtual_loss(&path, 1.0);
                leaves.push((path, leaf));
                if !fresh && self.nodes[leaf].pending {
                    break; // a leaf already waiting: evaluate what we have
                }
            }
            let fresh: Vec<usize> = leaves
                .iter()
                .map(|l| l.1)
                .filter(|&n| self.nodes[n].pending)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let evaluations = if fresh.is_empty() { Vec::new() } else { self.evaluate(env, &fresh, evaluator)? };
            let mut values = std::collections::HashMap::new();
            for (&leaf, evaluation) in fresh.iter().zip(&evaluations) {
                self.nodes[leaf].pending = false;
                self.apply_priors(leaf, evaluation.priors.as_deref());
                let value = match evaluation.value {
                    Some(v) => self.spread(leaf, v),
                    None => self.rollout_from(env, leaf)?,
                };
                values.insert(leaf, value);
            }
            for (path, leaf) in leaves {
                self.virtual_loss(&path, -1.0);
                let tail = match values.get(&leaf) {
                    Some(v) => v.clone(),
                    None => self.rollout_from(env, leaf)?,
                };
                self.backup(&path, tail, Some(leaf));
                done += 1;
            }
        }
        Ok(())
    }

    /// A value for the player to move at `leaf`, as returns for every player (zero-sum for two).
    fn spread(&self, leaf: usize, value: f64) -> Vec<f64> {
        let player = self.nodes[leaf].player.unwrap_or(0) as usize;
        (0..self.players)
            .map(|p| {
                if p == player {
                    value
                } else if self.players == 2 {
                    -value
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Counts a visit and a loss on every edge of `path` (`sign` -1 takes them back), so a batch
    /// spreads over different leaves.
    fn virtual_loss(&mut self, path: &[(usize, usize)], sign: f64) {
        for &(at, edge) in path {
            let node = &mut self.nodes[at];
            node.visits = (node.visits as f64 + sign) as u64;
            let e = &mut node.edges[edge];
            e.visits = (e.visits as f64 + sign) as u64;
            e.total -= sign;
        }
    }

    /// Asks the evaluator about `leaves` (nodes with a state), listing their actions.
    fn evaluate(
        &mut self,
        env: &mut Env,
        leaves: &[usize],
        evaluator: &mut dyn Evaluator,
    ) -> Result<Vec<Evaluation>, SearchError> {
        let mut batch = Vec::with_capacity(leaves.len());
        for &leaf in leaves {
            self.go_to(env, leaf)?;
            let actions = env.actions()?;
            let observation = observe(env)?;
            self.env_at = None; // the queries wrote to the guest's memory
            if self.nodes[leaf].edges.is_empty() {
                self.nodes[leaf].edges = edges(actions.clone());
            }
            batch.push(Leaf { observation, actions, player: self.nodes[leaf].player.unwrap_or(0) });
        }
        let evaluations = evaluator.evaluate(&batch);
        if evaluations.len() != batch.len() {
            return Err(SearchError::Evaluator(format!(
                "{} evaluations for {} leaves: return one per leaf",
                evaluations.len(),
                batch.len()
            )));
        }
        for (leaf, e) in batch.iter().zip(&evaluations) {
            if let Some(p) = &e.priors
                && (p.len() != leaf.actions.len() || p.iter().any(|x| !(x.is_finite() && *x >= 0.0)))
            {
                return Err(SearchError::Evaluator(format!(
                    "priors {p:?} for {} actions: give one finite, non-negative weight per action",
                    leaf.actions.len()
                )));
            }
            if let Some(v) = e.value
                && !v.is_finite()
            {
                return Err(SearchError::Evaluator(format!("value {v} is not a finite number")));
            }
        }
        Ok(evaluations)
    }

    fn apply_priors(&mut self, at: usize, priors: Option<&[f64]>) {
        let edges = &mut self.nodes[at].edges;
        let n = edges.len() as f64;
        let total: f64 = priors.map_or(0.0, |p| p.iter().sum());
        for (i, edge) in edges.iter_mut().enumerate() {
            edge.prior = match priors {
                Some(p) if total > 0.0 => p[i] / total,
                _ => 1.0 / n,
            };
        }
    }

    fn tree(&self) -> Tree {
        let mut tree = Tree { nodes: Vec::with_capacity(self.nodes.len()) };
        for node in &self.nodes {
            let (visits, value, action) = match node.parent {
                Some((p, e)) => {
                    let edge = &self.nodes[p].edges[e];
                    let mean = if edge.visits == 0 { 0.0 } else { edge.total / edge.visits as f64 };
                    (edge.visits, mean, Some(label(&edge.action)))
                }
                None => (node.visits, 0.0, None),
            };
            tree.nodes.push(TreeNode {
                parent: node.parent.map(|p| p.0),
                action,
                player: node.player,
                visits,
                value,
                terminal: node.player.is_none(),
                children: Vec::new(),
            });
        }
        for i in 1..tree.nodes.len() {
            let parent = tree.nodes[i].parent.expect("every node but the root has a parent");
            if !self.nodes[i].merged {
                tree.nodes[parent].children.push(i);
            }
        }
        if let Some(root) = tree.nodes.first_mut() {
            let edges = &self.nodes[0].edges;
            let visits: u64 = edges.iter().map(|e| e.visits).sum();
            let best = edges.iter().max_by_key(|e| e.visits);
            root.value = best.map_or(0.0, |e| if e.visits == 0 { 0.0 } else { e.total / e.visits as f64 });
            root.visits = visits;
        }
        tree
    }
}

fn argmax(scores: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, s) in scores.enumerate() {
        if s > best.1 {
            best = (i, s);
        }
    }
    best.0
}

/// One edge per action, with uniform priors (PUCT sets its evaluator's later).
fn edges(actions: Vec<Action>) -> Vec<Edge> {
    let n = actions.len().max(1) as f64;
    actions
        .into_iter()
        .map(|action| Edge {
            action,
            prior: 1.0 / n,
            child: None,
            outcomes: Vec::new(),
            visits: 0,
            total: 0.0,
            mean: 0.0,
            inv_sqrt: 0.0,
        })
        .collect()
}

fn rewards(rewards: &[f64], players: usize) -> Vec<f64> {
    (0..players).map(|p| rewards.get(p).copied().unwrap_or(0.0)).collect()
}

/// The observation in the environment's current state.
fn observe(env: &mut Env) -> Result<Observation, SearchError> {
    env.observe()?.ok_or_else(|| {
        SearchError::Evaluator(
            "the module does not export wasmgym_observe, which an evaluator needs: rebuild it with the current SDK"
                .into(),
        )
    })
}

/// Applies `action` and returns who moves next (`None`: the episode is over) and the step's
/// rewards. Through `wasmgym_rollout` with no random steps when the module has it: one call that
/// encodes no observation.
fn step_quietly(env: &mut Env, action: Action, players: usize) -> Result<(Option<u32>, Vec<f64>), SearchError> {
    if env.has_rollout() && matches!(action, Action::Discrete(_)) {
        let request = RolloutRequest { first: Some(action.clone()), seed: 0, max_steps: 0 };
        if let Some(r) = env.rollout(&request)? {
            return Ok((r.after_first, rewards(&r.returns, players)));
        }
    }
    let t = env.step(action)?;
    Ok((t.current_player.filter(|_| !t.done()), rewards(&t.rewards, players)))
}

/// What a rollout reports: who moves after its first action (`None`: the episode ended there),
/// each player's return, and the first action's own rewards when the host drove it.
pub(crate) struct Playout {
    pub after_first: Option<u32>,
    pub returns: Vec<f64>,
    pub first_rewards: Option<Vec<f64>>,
}

/// A uniformly random playout: applies `first` (if any), then up to `max_steps` actions picked
/// by [`rollout_pick`] from `seed`. In one guest call when the module exports
/// `wasmgym_rollout`, else step by step from the host, picking the same way. Returns who moves
/// after `first`, each player's return, and the rewards of `first` alone when the host drove it.
pub(crate) fn rollout(
    env: &mut Env,
    first: Option<Action>,
    seed: u64,
    max_steps: usize,
    players: usize,
) -> Result<Playout, SearchError> {
    let request =
        RolloutRequest { first: first.clone(), seed, max_steps: u32::try_from(max_steps).unwrap_or(u32::MAX) };
    if let Some(r) = env.rollout(&request)? {
        return Ok(Playout { after_first: r.after_first, returns: rewards(&r.returns, players), first_rewards: None });
    }
    host_rollout(env, first, seed, max_steps, players)
}

/// [`rollout`] driven from the host, step by step, picking the same actions.
pub(crate) fn host_rollout(
    env: &mut Env,
    first: Option<Action>,
    seed: u64,
    max_steps: usize,
    players: usize,
) -> Result<Playout, SearchError> {
    let mut returns = vec![0.0; players];
    let mut first_rewards = None;
    if let Some(action) = first {
        let t = env.step(action)?;
        first_rewards = Some(rewards(&t.rewards, players));
        returns.iter_mut().zip(&t.rewards).for_each(|(s, r)| *s += r);
    }
    let after_first = env.current_player();
    let mut rng = Rng::seed_from_u64(seed);
    for _ in 0..max_steps {
        if !env.is_running() {
            break;
        }
        let mut actions = env.actions()?;
        if actions.is_empty() {
            break;
        }
        let t = env.step(actions.swap_remove(rollout_pick(&mut rng, actions.len())))?;
        returns.iter_mut().zip(&t.rewards).for_each(|(s, r)| *s += r);
    }
    Ok(Playout { after_first, returns, first_rewards })
}

/// A sample of the symmetric Dirichlet distribution with `n` components.
fn dirichlet(rng: &mut Rng, alpha: f64, n: usize) -> Vec<f64> {
    let draws: Vec<f64> = (0..n).map(|_| gamma(rng, alpha.max(1e-3))).collect();
    let total: f64 = draws.iter().sum();
    if total > 0.0 { draws.iter().map(|d| d / total).collect() } else { vec![1.0 / n as f64; n] }
}

/// A Gamma(alpha, 1) sample (Marsaglia and Tsang; boosted for alpha < 1).
fn gamma(rng: &mut Rng, alpha: f64) -> f64 {
    if alpha < 1.0 {
        let u = crate::unit(rng).max(f64::MIN_POSITIVE);
        return gamma(rng, alpha + 1.0) * u.powf(1.0 / alpha);
    }
    let d = alpha - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = crate::normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = crate::unit(rng);
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}
