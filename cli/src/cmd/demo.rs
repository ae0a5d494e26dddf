//! `wasmgym demo`: the main job in one minute. Fast random rollouts of connect_four; then one game
//! forked mid-way into branches that each play on with their own random actions, every branch
//! checked bit for bit against replaying the same actions from reset; a snapshot serialised to
//! bytes and back; and the cost of each operation.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmgym::check::{fingerprint, random_action, text_choices};
use wasmgym::{Action, Env, EnvModule, Snapshot};
use wasmgym_abi::rng::Rng;

use crate::cmd::run::{Ending, random_episode};
use crate::error::{Context, Error, Outcome};
use crate::{load, output};

const ENV: &str = "connect_four";
const ROLLOUTS: u32 = 200;
const FORK_AT: usize = 10;
const BRANCHES: u32 = 8;
const REPS: u32 = 1000;
const SEED: u64 = 1;

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    env: &'static str,
    rollouts: Rollouts,
    fork: ForkReport,
    snapshot_round_trip: RoundTrip,
    timings_us: Timings,
    passed: bool,
}

#[derive(Serialize)]
struct Rollouts {
    episodes: u32,
    steps: u64,
    seconds: f64,
    steps_per_second: f64,
    outcomes: BTreeMap<String, u32>,
}

#[derive(Serialize)]
struct ForkReport {
    seed: u64,
    fork_at: usize,
    prefix: Vec<String>,
    branches: Vec<Branch>,
    all_branches_match: bool,
    original_unchanged: bool,
}

#[derive(Serialize)]
struct Branch {
    branch: u32,
    moves: usize,
    outcome: String,
    returns: Vec<f64>,
    matches_replay: bool,
}

#[derive(Serialize)]
struct RoundTrip {
    bytes: usize,
    matches: bool,
}

/// Mean microseconds per operation over `reps` repetitions.
#[derive(Serialize)]
struct Timings {
    reps: u32,
    step: f64,
    snapshot: f64,
    restore: f64,
    fork: f64,
    replay_to_fork_point: f64,
}

/// A branch's play: its actions and the fingerprint of every transition.
struct Trace {
    actions: Vec<Action>,
    prints: Vec<Vec<u8>>,
    returns: Vec<f64>,
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    let module = load::load(&load::runtime()?, ENV)?.module;
    let rollouts = rollouts(&module)?;
    let (seed, prefix, mut root) = game_at_fork_point(&module)?;
    let root_hash = root.state_hash().context(|| "hashing the fork point".into())?;

    let mut branches = Vec::new();
    let mut traces = Vec::new();
    for b in 0..BRANCHES {
        let mut branch = root.fork().context(|| format!("forking branch {b}"))?;
        let trace = play_out(&mut branch, &mut Rng::seed_from_u64(1000 + b as u64))?;
        let mut replay = module.instantiate().context(|| "creating a replay instance".into())?;
        let replayed = replay_from_reset(&mut replay, seed, &prefix, &trace.actions)?;
        branches.push(Branch {
            branch: b,
            moves: trace.actions.len(),
            outcome: Ending::of(&trace.returns, false, false).to_string(),
            returns: trace.returns.clone(),
            matches_replay: replayed == trace.prints,
        });
        traces.push(trace);
    }
    let original_unchanged = root.state_hash().context(|| "hashing the original".into())? == root_hash;
    let all_branches_match = branches.iter().all(|b| b.matches_replay);

    let snapshot = root.snapshot().context(|| "snapshotting the fork point".into())?;
    let snapshot_round_trip = round_trip(&module, &snapshot, root_hash, &traces[0])?;
    let timings_us = timings(&mut root, &snapshot, seed, &prefix, &traces[0].actions[0])?;

    let passed = all_branches_match && original_unchanged && snapshot_round_trip.matches;
    let report = Report {
        env: ENV,
        rollouts,
        fork: ForkReport {
            seed,
            fork_at: FORK_AT,
            prefix: prefix.iter().map(|a| a.to_string()).collect(),
            branches,
            all_branches_match,
            original_unchanged,
        },
        snapshot_round_trip,
        timings_us,
        passed,
    };
    if args.json {
        output::print_json(&report)?;
    } else {
        print_text(&report)?;
    }
    Ok(if passed { Outcome::Passed } else { Outcome::Failed })
}

fn rollouts(module: &EnvModule) -> Result<Rollouts, Error> {
    let mut env = module.instantiate().context(|| "creating an instance".into())?;
    let mut rng = Rng::seed_from_u64(SEED);
    let mut outcomes = BTreeMap::new();
    let mut steps = 0;
    let start = Instant::now();
    for episode in 0..ROLLOUTS {
        let e = random_episode(&mut env, episode, SEED + episode as u64, &mut rng, 1000)?;
        steps += e.length;
        *outcomes.entry(e.outcome).or_insert(0) += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Rollouts { episodes: ROLLOUTS, steps, seconds, steps_per_second: steps as f64 / seconds.max(1e-9), outcomes })
}

/// The first game (by seed) whose random play is still running after `FORK_AT` moves: its seed,
/// those moves, and the instance standing there.
fn game_at_fork_point(module: &EnvModule) -> Result<(u64, Vec<Action>, Env), Error> {
    let mut env = module.instantiate().context(|| "creating an instance".into())?;
    for seed in SEED..SEED + 100 {
        env.reset(Some(seed), None).context(|| format!("resetting with seed {seed}"))?;
        let mut rng = Rng::seed_from_u64(seed);
        let mut prefix = Vec::new();
        while env.is_running() && prefix.len() < FORK_AT {
            let legal = env.legal_actions().context(|| "listing legal actions".into())?;
            let texts = text_choices(&mut env).context(|| "listing valid commands".into())?;
            let Some(action) = random_action(&env.spec().action_space, &legal, &texts, &mut rng) else { break };
            env.step(action.clone()).context(|| format!("playing move {}", prefix.len()))?;
            prefix.push(action);
        }
        if env.is_running() && prefix.len() == FORK_AT {
            return Ok((seed, prefix, env));
        }
    }
    Err(Error::Env {
        context: "finding a game".into(),
        source: wasmgym::Error::InvalidCall {
            message: format!("no random game among 100 seeds lasted {FORK_AT} moves"),
        },
    })
}

/// Plays `env` to the end with random actions from `rng`.
fn play_out(env: &mut Env, rng: &mut Rng) -> Result<Trace, Error> {
    let mut trace = Trace { actions: Vec::new(), prints: Vec::new(), returns: vec![0.0; env.spec().players as usize] };
    while env.is_running() {
        let legal = env.legal_actions().context(|| "listing legal actions in a branch".into())?;
        let texts = text_choices(env).context(|| "listing valid commands in a branch".into())?;
        let Some(action) = random_action(&env.spec().action_space, &legal, &texts, rng) else { break };
        let t = env.step(action.clone()).context(|| format!("stepping a branch with {action}"))?;
        for (p, r) in trace.returns.iter_mut().enumerate() {
            *r += t.reward(p as u32);
        }
        trace.prints.push(fingerprint(&t));
        trace.actions.push(action);
    }
    Ok(trace)
}

/// Fingerprints of the transitions after the prefix, replaying everything from a seeded reset.
fn replay_from_reset(env: &mut Env, seed: u64, prefix: &[Action], actions: &[Action]) -> Result<Vec<Vec<u8>>, Error> {
    env.reset(Some(seed), None).context(|| "replaying: reset".into())?;
    for a in prefix {
        env.step(a.clone()).context(|| format!("replaying the prefix: {a}"))?;
    }
    actions.iter().map(|a| env.step(a.clone()).map(|t| fingerprint(&t)).context(|| format!("replaying {a}"))).collect()
}

/// Snapshot → bytes → snapshot → restore into a fresh instance: same state hash, and the same
/// trajectory as branch 0 under branch 0's actions.
fn round_trip(
    module: &EnvModule,
    snapshot: &Snapshot,
    root_hash: [u8; 32],
    branch: &Trace,
) -> Result<RoundTrip, Error> {
    let bytes = snapshot.to_bytes();
    let decoded = Snapshot::from_bytes(&bytes).context(|| "decoding snapshot bytes".into())?;
    let mut fresh = module.instantiate().context(|| "creating an instance".into())?;
    fresh.restore(&decoded).context(|| "restoring decoded snapshot".into())?;
    let same_state = fresh.state_hash().context(|| "hashing the restored state".into())? == root_hash;
    let mut prints = Vec::new();
    for a in &branch.actions {
        prints.push(fingerprint(&fresh.step(a.clone()).context(|| format!("stepping the restored copy with {a}"))?));
    }
    Ok(RoundTrip { bytes: bytes.len(), matches: same_state && prints == branch.prints })
}

/// Mean cost of each operation at the fork point, over `REPS` repetitions each.
fn timings(
    env: &mut Env,
    snapshot: &Snapshot,
    seed: u64,
    prefix: &[Action],
    action: &Action,
) -> Result<Timings, Error> {
    let (mut step, mut restore, mut snap, mut fork, mut replay) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..REPS {
        let t = Instant::now();
        env.step(action.clone()).context(|| "timing step".into())?;
        step += t.elapsed();
        let t = Instant::now();
        env.restore(snapshot).context(|| "timing restore".into())?;
        restore += t.elapsed();
        let t = Instant::now();
        let s = env.snapshot().context(|| "timing snapshot".into())?;
        snap += t.elapsed();
        drop(s);
        let t = Instant::now();
        let f = env.fork().context(|| "timing fork".into())?;
        fork += t.elapsed();
        drop(f);
    }
    let mut other = env.fork().context(|| "forking for replay timing".into())?;
    for _ in 0..REPS {
        let t = Instant::now();
        other.reset(Some(seed), None).context(|| "timing replay: reset".into())?;
        for a in prefix {
            other.step(a.clone()).context(|| "timing replay: step".into())?;
        }
        replay += t.elapsed();
    }
    let mean = |d: Duration| d.as_secs_f64() * 1e6 / REPS as f64;
    Ok(Timings {
        reps: REPS,
        step: mean(step),
        snapshot: mean(snap),
        restore: mean(restore),
        fork: mean(fork),
        replay_to_fork_point: mean(replay),
    })
}

fn print_text(r: &Report) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let ro = &r.rollouts;
    writeln!(out, "1. {} random rollouts of {}", ro.episodes, r.env)?;
    let outcomes: Vec<String> = ro.outcomes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    writeln!(
        out,
        "   {} steps in {:.3} s = {:.0} steps/s ({})",
        ro.steps,
        ro.seconds,
        ro.steps_per_second,
        outcomes.join(", ")
    )?;

    let f = &r.fork;
    writeln!(
        out,
        "2. game with seed {}, forked after {} moves ({}) into {} branches",
        f.seed,
        f.fork_at,
        f.prefix.join(" "),
        f.branches.len()
    )?;
    for b in &f.branches {
        let verdict =
            if b.matches_replay { "✓ matches replay from reset" } else { "✗ DIFFERS from replay from reset" };
        writeln!(out, "   branch {}: {:>2} moves to the end, {:<14} {verdict}", b.branch, b.moves, b.outcome)?;
    }
    let unchanged = if f.original_unchanged { "✓" } else { "✗" };
    writeln!(out, "   {unchanged} the original is unchanged by its forks (same state hash)")?;

    let rt = &r.snapshot_round_trip;
    let mark = if rt.matches { "✓ matches" } else { "✗ DIFFERS" };
    writeln!(out, "3. snapshot → to_bytes ({} bytes) → from_bytes → restore: {mark}", rt.bytes)?;

    let t = &r.timings_us;
    writeln!(out, "4. mean cost at the fork point, over {} repetitions", t.reps)?;
    writeln!(out, "   step                   {:>9.2} µs", t.step)?;
    writeln!(out, "   snapshot               {:>9.2} µs", t.snapshot)?;
    writeln!(out, "   restore                {:>9.2} µs", t.restore)?;
    writeln!(out, "   fork                   {:>9.2} µs", t.fork)?;
    writeln!(out, "   replay from reset      {:>9.2} µs  (reset + {} steps)", t.replay_to_fork_point, f.fork_at)?;
    writeln!(out)?;
    if r.passed {
        writeln!(out, "all {} branches match replay from reset", f.branches.len())?;
    } else {
        let matching = f.branches.iter().filter(|b| b.matches_replay).count();
        writeln!(out, "MISMATCH: {matching} of {} branches match replay from reset", f.branches.len())?;
    }
    Ok(())
}
