//! Evaluation: an agent on tasks, k trials each, reported as pass^k ([`eval`]); and sequential
//! task suites beside their i.i.d. baseline ([`suite`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use wasmgym::Limits;

use crate::composite::{Composite, CompositeModule};
use crate::{Agent, Error};

/// A reward at least this is a success (tau-bench counts reward 1 as solved).
pub const SUCCESS_REWARD: f64 = 1.0 - 1e-9;

/// One run of an agent on one task.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trial {
    /// The task (its reset options carry `"task": task`).
    pub task: u64,
    /// The seed the composite was reset with.
    pub seed: u64,
    /// The episode's total reward.
    pub reward: f64,
    /// Whether the reward reached 1.
    pub success: bool,
    /// Agent actions taken.
    pub turns: u32,
    /// Why the episode failed, if a part, the checker or the agent did (the trial is not a success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Options of [`eval`].
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// The tasks to run (each reset with `{"task": t}`).
    pub tasks: Vec<u64>,
    /// Trials per task; trial `j` resets with seed `seed + j`.
    pub k: u32,
    /// The first trial's seed.
    pub seed: u64,
    /// Threads running trials.
    pub jobs: usize,
    /// Limits of every part's instance.
    pub limits: Limits,
}

/// What [`eval`] measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    /// The composite's name.
    pub name: String,
    /// Trials per task.
    pub k: u32,
    /// Per task, its trials in seed order.
    pub tasks: Vec<Vec<Trial>>,
    /// pass^1 .. pass^k: `pass_hat[j - 1]` is the chance that j trials of a task all succeed,
    /// averaged over tasks (tau-bench's estimate from k trials).
    pub pass_hat: Vec<f64>,
    /// pass^k: the fraction of tasks solved in all k trials.
    pub pass_k: f64,
    /// Mean reward over every trial.
    pub mean_reward: f64,
}

/// tau-bench's pass^j for every j in 1..=k: per task with `n` trials of which `c` succeeded,
/// `C(c, j) / C(n, j)`, averaged over tasks. `pass^k` over exactly k trials is the fraction of
/// tasks solved in all of them.
pub fn pass_hat(successes: &[(u32, u32)], k: u32) -> Vec<f64> {
    let choose = |n: u32, r: u32| -> f64 {
        if r > n {
            return 0.0;
        }
        (0..r).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
    };
    (1..=k)
        .map(|j| {
            if successes.is_empty() {
                return 0.0;
            }
            let sum: f64 = successes.iter().map(|&(n, c)| choose(c, j) / choose(n, j)).sum();
            sum / successes.len() as f64
        })
        .collect()
}

/// Runs `agent()` (a fresh agent per trial) on every task `k` times, trials spread over
/// `jobs` threads (each with its own composite); `on_trial` sees each trial as it ends.
/// Results do not depend on `jobs`.
pub fn eval(
    module: &CompositeModule,
    agent: &(dyn Fn() -> Box<dyn Agent> + Sync),
    options: &EvalOptions,
    on_trial: &(dyn Fn(&Trial) + Sync),
) -> Result<EvalReport, Error> {
    let jobs: Vec<(usize, u32)> = (0..options.tasks.len()).flat_map(|t| (0..options.k).map(move |j| (t, j))).collect();
    let results: Mutex<Vec<Option<Trial>>> = Mutex::new(vec![None; jobs.len()]);
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                let mut composite = match module.instantiate(options.limits.clone()) {
                    Ok(c) => c,
                    Err(e) => {
                        first_error.lock().unwrap().get_or_insert(e);
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(t, j)) = jobs.get(i) else { return };
                    let task = options.tasks[t];
                    let seed = options.seed.wrapping_add(u64::from(j));
                    let options = serde_json::json!({"task": task}).to_string();
                    let trial = run_episode(&mut composite, &mut *agent(), task, seed, &options);
                    on_trial(&trial);
                    results.lock().unwrap()[i] = Some(trial);
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    let mut trials = results.into_inner().unwrap().into_iter().map(|t| t.expect("every trial ran"));
    let tasks: Vec<Vec<Trial>> =
        options.tasks.iter().map(|_| trials.by_ref().take(options.k as usize).collect()).collect();
    let counts: Vec<(u32, u32)> =
        tasks.iter().map(|t| (t.len() as u32, t.iter().filter(|t| t.success).count() as u32)).collect();
    let pass_hat = pass_hat(&counts, options.k);
    let all: Vec<&Trial> = tasks.iter().flatten().collect();
    let mean_reward = if all.is_empty() { 0.0 } else { all.iter().map(|t| t.reward).sum::<f64>() / all.len() as f64 };
    Ok(EvalReport {
        name: module.wiring().name.clone(),
        k: options.k,
        pass_k: pass_hat.last().copied().unwrap_or(0.0),
        pass_hat,
        tasks,
        mean_reward,
    })
}

/// One episode of `agent` on `composite` from `reset(seed, options)`; every failure (a part's,
/// the checker's, the agent's) is a trial that did not succeed, with the reason.
pub fn run_episode(composite: &mut Composite, agent: &mut dyn Agent, task: u64, seed: u64, options: &str) -> Trial {
    let mut trial = Trial { task, seed, reward: 0.0, success: false, turns: 0, error: None };
    let result = (|| -> Result<(), String> {
        let mut step = composite.reset(seed, Some(options)).map_err(|e| e.to_string())?;
        agent.start(&composite.tools());
        loop {
            trial.reward += step.reward;
            if step.done() {
                return Ok(());
            }
            let action = agent.act(&step.messages).map_err(|e| format!("agent: {e}"))?;
            step = composite.step(&action).map_err(|e| e.to_string())?;
        }
    })();
    trial.turns = composite.turns();
    trial.error = result.err();
    trial.success = trial.error.is_none() && trial.reward >= SUCCESS_REWARD;
    trial
}

/// Options of [`suite`].
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// Tasks per suite, run at positions 0..tasks.
    pub tasks: u32,
    /// Suites run in each mode; run `r` is the suite `seed + r`.
    pub runs: u32,
    /// The first suite's seed.
    pub seed: u64,
    /// Limits of every part's instance.
    pub limits: Limits,
}

/// Success by position in a sequential suite and in its i.i.d. baseline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SuiteReport {
    /// The composite's name.
    pub name: String,
    /// Suites run in each mode.
    pub runs: u32,
    /// Per position, the fraction of runs whose task there succeeded when every task starts
    /// where the previous one ended.
    pub sequential: Vec<f64>,
    /// The same when every task starts fresh.
    pub iid: Vec<f64>,
    /// Every trial: `[run][position]`, sequential mode.
    pub sequential_trials: Vec<Vec<Trial>>,
    /// Every trial: `[run][position]`, i.i.d. mode.
    pub iid_trials: Vec<Vec<Trial>>,
}

/// Runs the suite in both modes: sequential (task i+1 is reset with `"carry": true` in the
/// composite task i ended in, so the environment's state carries over) and i.i.d. (every task
/// reset in a composite restored to its state before any task). Task `i` of run `r` has options
/// `{"suite": seed + r, "task": i}` and reset seed `(seed + r) * 1000 + i`, the same in both modes.
pub fn suite(
    module: &CompositeModule,
    agent: &(dyn Fn() -> Box<dyn Agent> + Sync),
    options: &SuiteOptions,
    on_trial: &(dyn Fn(&Trial) + Sync),
) -> Result<SuiteReport, Error> {
    let mut composite = module.instantiate(options.limits.clone())?;
    let fresh = composite.snapshot()?;
    let mut runs = [Vec::new(), Vec::new()];
    for (mode, sequential) in [true, false].into_iter().enumerate() {
        for r in 0..options.runs {
            let suite_seed = options.seed.wrapping_add(u64::from(r));
            composite.restore(&fresh)?;
            let mut trials = Vec::new();
            for i in 0..options.tasks {
                if !sequential {
                    composite.restore(&fresh)?;
                }
                let mut task_options = serde_json::json!({"suite": suite_seed, "task": i});
                if sequential && i > 0 {
                    task_options["carry"] = true.into();
                }
                let seed = suite_seed.wrapping_mul(1000).wrapping_add(u64::from(i));
                let trial = run_episode(&mut composite, &mut *agent(), u64::from(i), seed, &task_options.to_string());
                on_trial(&trial);
                trials.push(trial);
            }
            runs[mode].push(trials);
        }
    }
    let by_position = |runs: &[Vec<Trial>]| -> Vec<f64> {
        (0..options.tasks as usize)
            .map(|i| {
                let wins = runs.iter().filter(|r| r[i].success).count();
                if runs.is_empty() { 0.0 } else { wins as f64 / runs.len() as f64 }
            })
            .collect()
    };
    let [sequential_trials, iid_trials] = runs;
    Ok(SuiteReport {
        name: module.wiring().name.clone(),
        runs: options.runs,
        sequential: by_position(&sequential_trials),
        iid: by_position(&iid_trials),
        sequential_trials,
        iid_trials,
    })
}

#[cfg(test)]
mod tests {
    use super::pass_hat;

    #[test]
    fn pass_hat_is_tau_bench_estimate() {
        // Two tasks, 4 trials: one solved 4/4, one 3/4.
        let p = pass_hat(&[(4, 4), (4, 3)], 4);
        assert_eq!(p[0], (1.0 + 0.75) / 2.0);
        assert_eq!(p[1], (1.0 + 3.0 / 6.0) / 2.0);
        assert_eq!(p[3], 0.5);
        assert_eq!(pass_hat(&[], 3), vec![0.0; 3]);
    }
}
