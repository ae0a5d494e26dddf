//! `wasmgym search <env>`: Monte Carlo tree search (UCT, random rollouts) from a position of any
//! environment, on exact snapshots.

use std::io::{self, Write};

use serde::Serialize;
use wasmgym_search::{MctsOptions, SearchError, SearchResult, mcts};

use crate::error::{Context, Error, Outcome};
use crate::{load, output};

#[derive(clap::Args)]
pub struct Args {
    /// A built-in name (see `wasmgym envs`) or a path to a .wasm or .wat file.
    pub env: String,
    /// Simulations to run.
    #[arg(long, default_value_t = MctsOptions::default().simulations)]
    pub simulations: usize,
    /// The UCT exploration constant.
    #[arg(long, default_value_t = MctsOptions::default().exploration)]
    pub exploration: f64,
    /// Steps a random rollout may take.
    #[arg(long, default_value_t = MctsOptions::default().max_rollout_steps)]
    pub max_rollout_steps: usize,
    /// Seed of the search (and of the environment's reset).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Actions to play after the reset, before searching, comma-separated (`0,4,1`).
    #[arg(long, value_delimiter = ',')]
    pub moves: Vec<i64>,
    /// Print one JSON document: `action`, `value`, `children`, `simulations`, `nodes`, `seconds`,
    /// `simulations_per_second`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    env: &'a str,
    #[serde(flatten)]
    result: &'a SearchResult,
    simulations_per_second: f64,
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    if args.simulations == 0 {
        return Err(Error::Usage("--simulations must be at least 1".into()));
    }
    let loaded = load::load(&load::runtime()?, &args.env)?;
    let mut env = loaded.module.instantiate().context(|| "creating an instance".into())?;
    env.reset(Some(args.seed), None).context(|| "resetting".into())?;
    for (i, &action) in args.moves.iter().enumerate() {
        let transition = env.step(action).context(|| format!("playing move {} (`{action}`) of --moves", i + 1))?;
        if transition.done() && i + 1 < args.moves.len() {
            return Err(Error::Usage(format!("the episode ended at move {} of --moves, before the rest", i + 1)));
        }
    }
    let options = MctsOptions {
        simulations: args.simulations,
        exploration: args.exploration,
        max_rollout_steps: args.max_rollout_steps,
        seed: args.seed,
    };
    let result = match mcts(&mut env, &options) {
        Ok(result) => result,
        Err(SearchError::NoDecision(why)) => return Err(Error::Usage(format!("nothing to search: {why}"))),
        Err(SearchError::Env(source)) => return Err(Error::Env { context: "searching".into(), source }),
        Err(e) => return Err(Error::Usage(e.to_string())),
    };
    let report = Report {
        env: &loaded.source,
        result: &result,
        simulations_per_second: result.simulations as f64 / result.seconds.max(1e-9),
    };
    if args.json {
        output::print_json(&report)?;
        return Ok(Outcome::Passed);
    }
    let mut out = io::stdout().lock();
    writeln!(out, "search {} ({} simulations, seed {})", report.env, result.simulations, args.seed)?;
    writeln!(out, "  {:>8} {:>8} {:>8}", "action", "visits", "value")?;
    for c in &result.children {
        let mark = if c.action == result.action { "*" } else { " " };
        writeln!(out, "{mark} {:>8} {:>8} {:>8.3}", c.action, c.visits, c.mean_value)?;
    }
    writeln!(
        out,
        "play {} (value {:.3}); {} nodes, {:.3} s, {:.0} simulations/s",
        result.action, result.value, result.nodes, result.seconds, report.simulations_per_second
    )?;
    Ok(Outcome::Passed)
}
