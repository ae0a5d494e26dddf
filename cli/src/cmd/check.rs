//! `wasmgym check <env>`: the runtime's conformance suite, as a table or as JSON.

use std::io::{self, Write};

use wasmgym::check::{CheckOptions, CheckReport, run_with_progress};

use crate::error::{Error, Outcome};
use crate::{load, output};

#[derive(clap::Args)]
pub struct Args {
    /// A built-in name (see `wasmgym envs`) or a path to a .wasm or .wat file.
    pub env: String,
    /// Random episodes to play; each one exercises every check.
    #[arg(long, default_value_t = CheckOptions::default().episodes, value_parser = crate::at_least_1::<u32>())]
    pub episodes: u32,
    /// Seed of the suite's choices and of the first episode.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// An episode still running after this many steps fails the rollout check.
    #[arg(long, default_value_t = CheckOptions::default().max_steps, value_parser = crate::at_least_1::<u64>())]
    pub max_steps: u64,
    /// Show the wasm backtrace of a guest that trapped (by default: its panic message and stderr).
    #[arg(long)]
    pub backtrace: bool,
    /// Print the report as one JSON document (top-level `passed`).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    let loaded = load::load(&load::runtime()?, &args.env)?;
    let options =
        CheckOptions { episodes: args.episodes, seed: args.seed, max_steps: args.max_steps, backtrace: args.backtrace };
    let bar = output::progress(args.episodes as u64, 5, "checking");
    let report = run_with_progress(&loaded.module, &options, |done| bar.set_position(done as u64));
    bar.finish_and_clear();
    if args.json {
        output::print_json(&report)?;
    } else {
        print_table(&report, &loaded.source)?;
    }
    Ok(if report.passed { Outcome::Passed } else { Outcome::Failed })
}

fn print_table(report: &CheckReport, source: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "check {} ({source}): {} episodes, {} steps", report.env, report.episodes, report.steps)?;
    let width = report.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &report.checks {
        let mark = match (c.passed, c.runs) {
            (false, _) => "✗",
            (true, 0) => "–",
            (true, _) => "✓",
        };
        writeln!(out, "  {mark} {:<width$}  {}", c.name, c.detail)?;
    }
    let applied = report.checks.iter().filter(|c| !(c.passed && c.runs == 0)).count();
    let passed = report.checks.iter().filter(|c| c.passed && c.runs > 0).count();
    let verdict = if report.passed { "PASSED" } else { "FAILED" };
    let skipped = report.checks.len() - applied;
    let skipped = if skipped > 0 { format!(" ({skipped} not applicable)") } else { String::new() };
    writeln!(out, "{verdict}: {passed}/{applied} checks hold{skipped}")?;
    Ok(())
}
