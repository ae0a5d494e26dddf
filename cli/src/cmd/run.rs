//! `wasmgym run <env>`: episodes under a uniform-random policy, with returns, lengths and speed.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Instant;

use serde::Serialize;
use wasmgym::check::{random_action, text_choices};
use wasmgym::{Env, Space};
use wasmgym_abi::rng::Rng;

use crate::error::{Context, Error, Outcome};
use crate::{load, output};

#[derive(clap::Args)]
pub struct Args {
    /// A built-in name (see `wasmgym envs`) or a path to a .wasm or .wat file.
    pub env: String,
    /// Seed of the policy; episode i is reset with seed + i.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Episodes to play.
    #[arg(long, default_value_t = 10, value_parser = crate::at_least_1::<u32>())]
    pub episodes: u32,
    /// How actions are chosen.
    #[arg(long, value_enum, default_value_t = Policy::Random)]
    pub policy: Policy,
    /// Cut an episode off after this many steps.
    #[arg(long, default_value_t = 100_000, value_parser = crate::at_least_1::<u64>())]
    pub max_steps: u64,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Uniform over the legal actions (random text for text action spaces).
    Random,
}

/// One finished episode.
#[derive(Clone, Debug, Serialize)]
pub struct EpisodeReport {
    pub episode: u32,
    /// The seed it was reset with.
    pub seed: u64,
    /// Sum of rewards, per player.
    pub returns: Vec<f64>,
    /// Steps taken.
    pub length: u64,
    /// `player P wins`, `draw`, `terminated`, `truncated` or `cut off`.
    pub outcome: String,
}

#[derive(Serialize)]
struct Report {
    env: String,
    source: String,
    policy: Policy,
    seed: u64,
    episodes: Vec<EpisodeReport>,
    total_steps: u64,
    seconds: f64,
    steps_per_second: f64,
    mean_return: Vec<f64>,
    mean_length: f64,
    outcomes: BTreeMap<String, u32>,
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    let loaded = load::load(&load::runtime()?, &args.env)?;
    let module = &loaded.module;
    let mut env = module.instantiate().context(|| "creating an instance".into())?;
    let mut rng = Rng::seed_from_u64(args.seed);
    let bar = output::progress(args.episodes as u64, 50, "episodes");
    let mut episodes = Vec::with_capacity(args.episodes as usize);
    let start = Instant::now();
    for episode in 0..args.episodes {
        let seed = args.seed.wrapping_add(episode as u64);
        episodes.push(random_episode(&mut env, episode, seed, &mut rng, args.max_steps)?);
        bar.inc(1);
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let players = module.spec().players as usize;
    let n = episodes.len().max(1) as f64;
    let total_steps: u64 = episodes.iter().map(|e| e.length).sum();
    let mut outcomes = BTreeMap::new();
    for e in &episodes {
        *outcomes.entry(e.outcome.clone()).or_insert(0) += 1;
    }
    let report = Report {
        env: module.spec().name.clone(),
        source: loaded.source,
        policy: args.policy,
        seed: args.seed,
        mean_return: (0..players).map(|p| episodes.iter().map(|e| e.returns[p]).sum::<f64>() / n).collect(),
        mean_length: total_steps as f64 / n,
        episodes,
        total_steps,
        seconds,
        steps_per_second: total_steps as f64 / seconds.max(1e-9),
        outcomes,
    };
    if args.json {
        output::print_json(&report)?;
    } else {
        print_text(&report)?;
    }
    Ok(Outcome::Passed)
}

fn print_text(r: &Report) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{} ({}), random policy, seed {}", r.env, r.source, r.seed)?;
    if r.episodes.len() <= 50 {
        writeln!(out, "{:>7} {:>6} {:>7}  {:<16} returns", "episode", "seed", "length", "outcome")?;
        for e in &r.episodes {
            writeln!(
                out,
                "{:>7} {:>6} {:>7}  {:<16} {}",
                e.episode,
                e.seed,
                e.length,
                e.outcome,
                output::numbers(&e.returns)
            )?;
        }
    } else {
        writeln!(out, "({} episodes; per-episode returns with --json)", r.episodes.len())?;
    }
    writeln!(out, "episodes      {}", r.episodes.len())?;
    writeln!(out, "mean return   {}", output::numbers(&r.mean_return))?;
    writeln!(out, "mean length   {:.1}", r.mean_length)?;
    let outcomes: Vec<String> = r.outcomes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    writeln!(out, "outcomes      {}", outcomes.join(", "))?;
    writeln!(out, "steps         {} in {:.3} s = {:.0} steps/s", r.total_steps, r.seconds, r.steps_per_second)?;
    Ok(())
}

/// Plays one episode on `env` from a reset with `seed`, choosing actions with `random_action`.
pub fn random_episode(
    env: &mut Env,
    episode: u32,
    seed: u64,
    rng: &mut Rng,
    max_steps: u64,
) -> Result<EpisodeReport, Error> {
    let at = |step: u64| move || format!("episode {episode} (seed {seed}), step {step}");
    let space = env.spec().action_space.clone();
    let mut returns = vec![0.0; env.spec().players as usize];
    env.reset(Some(seed), None).context(at(0))?;
    let mut length = 0;
    let mut truncated = false;
    // Discrete spaces: each step also lists the next legal actions (one call into the guest).
    let discrete = matches!(space, Space::Discrete { .. });
    let mut next_legal = None;
    while env.is_running() && length < max_steps {
        let legal = match next_legal.take() {
            Some(legal) => legal,
            None => env.legal_actions().context(at(length))?,
        };
        let texts = text_choices(env).context(at(length))?;
        let Some(action) = random_action(&space, &legal, &texts, rng) else { break };
        let t = match discrete {
            true => {
                let (t, legal) = env.step_and_legal_actions(action).context(at(length))?;
                next_legal = Some(legal);
                t
            }
            false => env.step(action).context(at(length))?,
        };
        for (p, r) in returns.iter_mut().enumerate() {
            *r += t.reward(p as u32);
        }
        length += 1;
        truncated = t.truncated;
    }
    let outcome = Ending::of(&returns, truncated, env.is_running()).to_string();
    Ok(EpisodeReport { episode, seed, returns, length, outcome })
}

/// How an episode ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ending {
    /// A multi-player game with a unique highest return.
    Winner(usize),
    /// A multi-player game whose highest return is shared.
    Draw,
    /// A single-player episode reached a terminal state.
    Terminated,
    /// The environment cut the episode short (`max_episode_steps`).
    Truncated,
    /// The episode was still running when the command stopped it.
    CutOff,
}

impl Ending {
    /// How an episode with these per-player `returns` ended.
    pub fn of(returns: &[f64], truncated: bool, still_running: bool) -> Ending {
        if still_running {
            return Ending::CutOff;
        }
        if truncated {
            return Ending::Truncated;
        }
        if returns.len() < 2 {
            return Ending::Terminated;
        }
        let best = returns.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let winners: Vec<usize> = (0..returns.len()).filter(|&p| returns[p] == best).collect();
        match winners[..] {
            [p] => Ending::Winner(p),
            _ => Ending::Draw,
        }
    }
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Winner(p) => write!(f, "player {p} wins"),
            Ending::Draw => f.write_str("draw"),
            Ending::Terminated => f.write_str("terminated"),
            Ending::Truncated => f.write_str("truncated"),
            Ending::CutOff => f.write_str("cut off"),
        }
    }
}
