//! `wasmgym search <env>`: tree search from a position of any environment, on exact snapshots:
//! MCTS (UCT or PUCT), beam, breadth-first, or an exhaustive solve. On a composite agent episode
//! (`support_desk`, a wiring file), beam and breadth-first search run unchanged over the
//! conversation, trying the tool calls its parts list as valid.

use std::io::{self, Write};
use std::path::PathBuf;

use serde::Serialize;
use wasmgym::{Action, Env, Space};
use wasmgym_search::{
    BeamOptions, Branch, KeyKind, MctsOptions, RolloutEvaluator, SearchError, Tree, TreeSearchResult,
};

use crate::error::{Context, Error, Outcome};
use crate::{load, output, tree_view};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Algo {
    /// Monte Carlo tree search, UCT selection, random rollouts inside the guest.
    Mcts,
    /// MCTS with PUCT selection (uniform priors and rollout values from the command line).
    Puct,
    /// Beam search: the `--width` best states by return at each depth.
    Beam,
    /// Breadth-first search of every state up to `--depth`, transpositions merged.
    Bfs,
    /// Exhaustive minimax of every reachable state (small games only).
    Solve,
}

#[derive(clap::Args)]
pub struct Args {
    /// A built-in name (see `wasmgym envs`), a path to a .wasm or .wat file, or a composite
    /// (support_desk, workshop, a wiring .json file: beam and bfs only).
    pub env: String,
    /// The search.
    #[arg(long, value_enum, default_value_t = Algo::Mcts)]
    pub algo: Algo,
    /// Simulations to run (MCTS, PUCT).
    #[arg(long, default_value_t = MctsOptions::default().simulations, value_parser = crate::at_least_1::<usize>())]
    pub simulations: usize,
    /// The exploration constant (UCT `c`, PUCT `c_puct`).
    #[arg(long, default_value_t = MctsOptions::default().exploration)]
    pub exploration: f64,
    /// Steps a random rollout may take.
    #[arg(long, default_value_t = MctsOptions::default().max_rollout_steps)]
    pub max_rollout_steps: usize,
    /// Independent trees (root parallelism); the result depends on this, not on --threads.
    #[arg(long, default_value_t = 1, value_parser = crate::at_least_1::<usize>())]
    pub trees: usize,
    /// Threads the trees run on (MCTS).
    #[arg(long, default_value_t = 1, value_parser = crate::at_least_1::<usize>())]
    pub threads: usize,
    /// MCTS: merge states reached by different paths into one node (by the environment's state
    /// key, else the machine hash).
    #[arg(long)]
    pub transpositions: bool,
    /// States kept per depth (beam).
    #[arg(long, default_value_t = BeamOptions::default().width, value_parser = crate::at_least_1::<usize>())]
    pub width: usize,
    /// Steps from the position at most (beam, bfs).
    #[arg(long, default_value_t = BeamOptions::default().depth, value_parser = crate::at_least_1::<usize>())]
    pub depth: usize,
    /// States to create at most (beam, bfs: then `complete` is false; default 200,000) or steps
    /// to take (solve: then an error says the game is too large; default 5,000,000).
    #[arg(long, value_parser = crate::at_least_1::<usize>())]
    pub max_nodes: Option<usize>,
    /// Memory the search's instances and snapshots may hold, in MiB: past it the search stops
    /// with an error (`memory_cap`) instead of exhausting the machine.
    #[arg(long, default_value_t = 4096, value_parser = crate::at_least_1::<u64>())]
    pub memory_cap_mib: u64,
    /// Seed of the search (and of the environment's reset).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Reset options: a JSON document the environment reads (game_of_24: `{"numbers":[4,6,1,1]}`).
    #[arg(long)]
    pub options: Option<String>,
    /// Actions to play after the reset, before searching, comma-separated (`0,4,1`; text actions
    /// for text environments: `take key,go north`).
    #[arg(long, value_delimiter = ',')]
    pub moves: Vec<String>,
    /// Draw the search tree to this file: `.svg`, or `.html` (interactive: expand and collapse).
    #[arg(long)]
    pub tree: Option<PathBuf>,
    /// Nodes drawn at most in --tree (the most visited, with their ancestors); default 60 for
    /// .svg (a picture to take in at a glance), 2,000 for .html (expanded by hand).
    #[arg(long, value_parser = crate::at_least_1::<usize>())]
    pub tree_nodes: Option<usize>,
    /// Print one JSON document: `action`, `value`, `nodes`, `distinct_states`, `simulations`,
    /// `seconds`, `simulations_per_second`, and the algorithm's details.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    env: String,
    algo: &'static str,
    action: Option<Action>,
    value: f64,
    nodes: usize,
    distinct_states: usize,
    simulations: usize,
    seconds: f64,
    simulations_per_second: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    children: Option<Vec<wasmgym_search::ChildStats>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trajectories: Option<Vec<wasmgym_search::Trajectory>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    complete: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tree_file: Option<String>,
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    if args.simulations == 0 {
        return Err(Error::Usage("--simulations must be at least 1".into()));
    }
    if let Some(path) = &args.tree
        && !matches!(path.extension().and_then(|e| e.to_str()), Some("svg" | "html"))
    {
        return Err(Error::Usage(format!("--tree {}: name an .svg or .html file", path.display())));
    }
    let config = wasmgym::RuntimeConfig {
        compile_cache: load::cache_dir("modules"),
        memory_cap: Some(args.memory_cap_mib.saturating_mul(1 << 20)),
        ..Default::default()
    };
    let runtime = wasmgym::Runtime::with_config(config).context(|| "starting the WebAssembly runtime".into())?;
    if load::is_composite(&args.env) {
        return run_composite(&runtime, &args);
    }
    let loaded = load::load(&runtime, &args.env)?;
    let mut env = loaded.module.instantiate().context(|| "creating an instance".into())?;
    env.reset(Some(args.seed), args.options.as_deref()).context(|| "resetting".into())?;
    play_moves(&mut env, &args.moves)?;
    let (mut report, tree) = match args.algo {
        Algo::Mcts | Algo::Puct => run_mcts(&mut env, &args)?,
        Algo::Beam | Algo::Bfs => run_tree_search(&mut env, &args)?,
        Algo::Solve => run_solve(&mut env, args.max_nodes.unwrap_or(5_000_000))?,
    };
    report.env = loaded.source;
    finish(report, tree, &args)
}

/// Beam or breadth-first search over a composite agent episode.
fn run_composite(runtime: &wasmgym::Runtime, args: &Args) -> Result<Outcome, Error> {
    if !matches!(args.algo, Algo::Beam | Algo::Bfs) {
        return Err(Error::Usage(format!(
            "{} is a composite agent episode: search it with --algo beam or --algo bfs (MCTS and solve take one \
             environment)",
            args.env
        )));
    }
    let module = load::composite(runtime, &args.env)?;
    let mut composite = module.instantiate(wasmgym::Limits::default())?;
    composite.reset(args.seed, args.options.as_deref())?;
    for (i, text) in args.moves.iter().enumerate() {
        if composite.step(text.trim())?.done() && i + 1 < args.moves.len() {
            return Err(Error::Usage(format!("the episode ended at move {} of --moves, before the rest", i + 1)));
        }
    }
    let (mut report, tree) = run_tree_search(&mut composite, args)?;
    report.env = module.wiring().name.clone();
    finish(report, tree, args)
}

/// Draws the tree if asked, and prints the report.
fn finish(mut report: Report, tree: Option<Tree>, args: &Args) -> Result<Outcome, Error> {
    if let (Some(path), Some(tree)) = (&args.tree, &tree) {
        let picture = match path.extension().and_then(|e| e.to_str()) {
            Some("html") => tree_view::html(tree, args.tree_nodes.unwrap_or(2000)),
            _ => tree_view::svg(tree, args.tree_nodes.unwrap_or(60)),
        };
        std::fs::write(path, picture)?;
        report.tree_file = Some(path.display().to_string());
    }
    if args.json {
        output::print_json(&report)?;
        return Ok(Outcome::Passed);
    }
    print(&report)?;
    Ok(Outcome::Passed)
}

fn play_moves(env: &mut Env, moves: &[String]) -> Result<(), Error> {
    let discrete = !matches!(env.spec().action_space, Space::Text { .. });
    for (i, text) in moves.iter().enumerate() {
        let action = if discrete {
            let a = text.trim().parse::<i64>().map_err(|_| {
                Error::Usage(format!(
                    "move {} of --moves, `{text}`, is not a number, which this environment's actions are",
                    i + 1
                ))
            })?;
            Action::Discrete(a)
        } else {
            Action::Text(text.trim().to_owned())
        };
        let transition = env.step(action).context(|| format!("playing move {} (`{text}`) of --moves", i + 1))?;
        if transition.done() && i + 1 < moves.len() {
            return Err(Error::Usage(format!("the episode ended at move {} of --moves, before the rest", i + 1)));
        }
    }
    Ok(())
}

fn search_error(e: SearchError) -> Error {
    match e {
        SearchError::NoDecision(why) => Error::Usage(format!("nothing to search: {why}")),
        SearchError::Env(source @ wasmgym::Error::MemoryCap { .. }) => Error::Env {
            context: "searching (raise --memory-cap-mib, or lower --max-nodes, --depth or --simulations)".into(),
            source,
        },
        SearchError::Env(source) => Error::Env { context: "searching".into(), source },
        e => Error::Usage(e.to_string()),
    }
}

fn run_mcts(env: &mut Env, args: &Args) -> Result<(Report, Option<Tree>), Error> {
    let options = MctsOptions {
        simulations: args.simulations,
        exploration: args.exploration,
        max_rollout_steps: args.max_rollout_steps,
        seed: args.seed,
        trees: args.trees.max(1),
        threads: args.threads.max(1),
        keep_tree: true,
        count_distinct: true,
        transpositions: args.transpositions,
        ..Default::default()
    };
    let result = match args.algo {
        Algo::Puct => wasmgym_search::puct(env, &mut RolloutEvaluator, &options),
        _ => wasmgym_search::mcts(env, &options),
    }
    .map_err(search_error)?;
    let report = Report {
        env: String::new(),
        algo: if args.algo == Algo::Puct { "puct" } else { "mcts" },
        action: Some(result.action.clone()),
        value: result.value,
        nodes: result.nodes,
        distinct_states: result.distinct_states.unwrap_or(result.states),
        simulations: result.simulations,
        seconds: result.seconds,
        simulations_per_second: result.simulations as f64 / result.seconds.max(1e-9),
        children: Some(result.children),
        trajectories: None,
        complete: None,
        tree_file: None,
    };
    Ok((report, result.tree))
}

fn run_tree_search<E: Branch>(env: &mut E, args: &Args) -> Result<(Report, Option<Tree>), Error> {
    let options = BeamOptions {
        width: args.width.max(1),
        depth: args.depth,
        key: KeyKind::Env,
        max_nodes: args.max_nodes.unwrap_or(200_000),
        keep_tree: true,
        ..Default::default()
    };
    let result: TreeSearchResult = match args.algo {
        Algo::Beam => wasmgym_search::beam(env, None, None, &options),
        _ => wasmgym_search::bfs(env, None, None, &options),
    }
    .map_err(search_error)?;
    let best = result.trajectories.first();
    let report = Report {
        env: String::new(),
        algo: if args.algo == Algo::Beam { "beam" } else { "bfs" },
        action: best.and_then(|t| t.actions.first().cloned()),
        value: best.map_or(0.0, |t| t.return_),
        nodes: result.nodes,
        distinct_states: result.distinct_states,
        simulations: result.nodes,
        seconds: result.seconds,
        simulations_per_second: result.nodes as f64 / result.seconds.max(1e-9),
        children: None,
        trajectories: Some(result.trajectories),
        complete: Some(result.complete),
        tree_file: None,
    };
    Ok((report, result.tree))
}

fn run_solve(env: &mut Env, max_nodes: usize) -> Result<(Report, Option<Tree>), Error> {
    let player = env.current_player().unwrap_or(0) as usize;
    let solution = wasmgym_search::solve(env, KeyKind::Env, max_nodes).map_err(search_error)?;
    let report = Report {
        env: String::new(),
        algo: "solve",
        action: Some(solution.action.clone()),
        value: solution.values.get(player).copied().unwrap_or(0.0),
        nodes: solution.nodes,
        distinct_states: solution.distinct_states,
        simulations: solution.nodes,
        seconds: solution.seconds,
        simulations_per_second: solution.nodes as f64 / solution.seconds.max(1e-9),
        children: None,
        trajectories: None,
        complete: Some(true),
        tree_file: None,
    };
    Ok((report, None))
}

fn print(report: &Report) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "{} {} ({} nodes, {} distinct states)",
        report.algo, report.env, report.nodes, report.distinct_states
    )?;
    if let Some(children) = &report.children {
        writeln!(out, "  {:>12} {:>8} {:>8}", "action", "visits", "value")?;
        for c in children {
            let mark = if Some(&c.action) == report.action.as_ref() { "*" } else { " " };
            writeln!(out, "{mark} {:>12} {:>8} {:>8.3}", c.action.to_string(), c.visits, c.mean_value)?;
        }
    }
    if let Some(trajectories) = &report.trajectories {
        for t in trajectories {
            let path: Vec<String> = t.actions.iter().map(|a| a.to_string()).collect();
            let end = if t.terminal { "end" } else { "open" };
            writeln!(out, "  return {:>6.3}  score {:>6.3}  {end:4}  {}", t.return_, t.score, path.join(", "))?;
        }
        if report.complete == Some(true) && !trajectories.iter().any(|t| t.terminal && t.return_ > 0.0) {
            writeln!(out, "  no trajectory with a positive return exists within the depth")?;
        }
    }
    match &report.action {
        Some(action) => writeln!(out, "play {action} (value {:.3})", report.value)?,
        None => writeln!(out, "no action found")?,
    }
    writeln!(out, "{:.3} s, {:.0} simulations/s", report.seconds, report.simulations_per_second)?;
    if let Some(file) = &report.tree_file {
        writeln!(out, "tree drawn to {file}")?;
    }
    Ok(())
}
