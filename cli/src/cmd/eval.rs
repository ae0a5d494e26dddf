//! `wasmgym eval <composite|env>`: an agent (the built-in scripted one, or a module) on agent
//! environments. Tasks run k times each and are reported as pass^k (tau-bench's reliability
//! measure); with `--sequential`, the tasks run as a suite in which each starts where the last
//! one ended, beside the i.i.d. baseline in which each starts fresh.

use std::io::Write;

use serde::Serialize;
use wasmgym::Limits;
use wasmgym_agent::{Agent, EvalOptions, EvalReport, ModuleAgent, SuiteOptions, SuiteReport, Trial};

use crate::error::{Error, Outcome};
use crate::{load, output};

#[derive(clap::Args)]
pub struct Args {
    /// A built-in composite (support_desk, workshop), a wiring .json file, or an environment
    /// (built-in name or .wasm path) on its own.
    pub target: String,
    /// Trials per task (seeds seed..seed+k); with --sequential, suites run in each mode.
    #[arg(long, default_value_t = 4, value_parser = crate::at_least_1::<u32>())]
    pub k: u32,
    /// Tasks 0..N (with --sequential: positions in the suite).
    #[arg(long, default_value_t = 10, value_parser = crate::at_least_1::<u32>())]
    pub tasks: u32,
    /// Run the tasks as a sequential suite (task i+1 starts where task i ended) beside the
    /// i.i.d. baseline (every task starts fresh), and report success by position.
    #[arg(long)]
    pub sequential: bool,
    /// The agent: `scripted` (the built-in rule-based agent of a built-in composite) or a path to
    /// an agent module (text in: what the agent is shown; text out: its action).
    #[arg(long, default_value = "scripted")]
    pub agent: String,
    /// Seed of the first trial (or suite).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads running trials (default: the machine's cores).
    #[arg(long, value_parser = crate::at_least_1::<usize>())]
    pub jobs: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Report {
    Eval(EvalReport),
    Suite(SuiteReport),
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    let runtime = load::runtime()?;
    let module = load::composite(&runtime, &args.target)?;
    let name = module.wiring().name.clone();
    let agent_module = match args.agent.as_str() {
        "scripted" => {
            if wasmgym_agent::scripted::builtin(&name).is_none() {
                return Err(Error::Usage(format!(
                    "there is no built-in scripted agent for {name} (only for {}): pass --agent PATH, an agent module",
                    wasmgym_agent::scripted::NAMES.join(", ")
                )));
            }
            None
        }
        path => Some(load::load(&runtime, path)?.module),
    };
    let agent = || -> Box<dyn Agent> {
        match &agent_module {
            None => wasmgym_agent::scripted::builtin(&name).expect("checked above"),
            Some(module) => Box::new(ModuleAgent::from_module(module)),
        }
    };
    let total = if args.sequential { 2 * args.k * args.tasks } else { args.k * args.tasks };
    let bar = output::progress(u64::from(total), 16, "episodes");
    let on_trial = |_: &Trial| bar.inc(1);
    let limits = Limits::default();
    let report = if args.sequential {
        let options = SuiteOptions { tasks: args.tasks, runs: args.k, seed: args.seed, limits };
        Report::Suite(wasmgym_agent::suite(&module, &agent, &options, &on_trial)?)
    } else {
        let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let tasks = (0..u64::from(args.tasks)).collect();
        let options = EvalOptions { tasks, k: args.k, seed: args.seed, jobs, limits };
        Report::Eval(wasmgym_agent::eval(&module, &agent, &options, &on_trial)?)
    };
    bar.finish_and_clear();
    if args.json {
        output::print_json(&report)?;
        return Ok(Outcome::Passed);
    }
    let mut out = std::io::stdout().lock();
    match &report {
        Report::Eval(r) => print_eval(&mut out, r, &args)?,
        Report::Suite(r) => print_suite(&mut out, r)?,
    }
    Ok(Outcome::Passed)
}

fn print_eval(out: &mut impl Write, r: &EvalReport, args: &Args) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: agent {} on {} tasks, k = {} (seeds {}..{})",
        r.name,
        args.agent,
        r.tasks.len(),
        r.k,
        args.seed,
        args.seed + u64::from(r.k)
    )?;
    for trials in &r.tasks {
        let marks: String = trials.iter().map(|t| if t.success { '✓' } else { '✗' }).collect();
        let task = trials.first().map_or(0, |t| t.task);
        let error = trials.iter().find_map(|t| Some(format!("  (seed {}: {})", t.seed, brief(t.error.as_ref()?))));
        writeln!(out, "  task {task:>3}  {marks}{}", error.unwrap_or_default())?;
    }
    let hats: Vec<String> = r.pass_hat.iter().enumerate().map(|(j, p)| format!("pass^{} {:.3}", j + 1, p)).collect();
    writeln!(out, "{}", hats.join("  "))?;
    writeln!(
        out,
        "pass^{} = {:.3}: the fraction of tasks solved in all {} trials; mean reward {:.3}",
        r.k, r.pass_k, r.k, r.mean_reward
    )
}

fn print_suite(out: &mut impl Write, r: &SuiteReport) -> std::io::Result<()> {
    writeln!(out, "{}: success by position over {} suite(s)", r.name, r.runs)?;
    writeln!(out, "  position  sequential            i.i.d.")?;
    let bar = |p: f64| {
        let n = (p * 10.0).round() as usize;
        format!("{}{} {:>4.0}%", "█".repeat(n), "·".repeat(10 - n.min(10)), p * 100.0)
    };
    for (i, (s, d)) in r.sequential.iter().zip(&r.iid).enumerate() {
        writeln!(out, "  {i:>8}  {}  {}", bar(*s), bar(*d))?;
    }
    let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    writeln!(out, "mean: sequential {:.3}, i.i.d. {:.3}", mean(&r.sequential), mean(&r.iid))?;
    let failed: Vec<&Trial> =
        r.sequential_trials.iter().chain(&r.iid_trials).flatten().filter(|t| t.error.is_some()).collect();
    if let Some(first) = failed.first() {
        let why = brief(first.error.as_deref().unwrap_or_default());
        writeln!(out, "{} episode(s) ended with an error; the first (position {}): {why}", failed.len(), first.task)?;
    }
    Ok(())
}

/// An error on one line, cut to a length a table can carry (`--json` has it whole).
fn brief(error: &str) -> String {
    let line = output::printable(&error.split_whitespace().collect::<Vec<_>>().join(" "));
    match line.char_indices().nth(160) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line,
    }
}
