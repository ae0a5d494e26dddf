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
    #[arg(long, default_value_t = CheckOptions::default().episodes)]
    pub episodes: u32,
    /// Seed of the suite's choices and of the first episode.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// An episode still running after this many steps fails the rollout check.
    #[arg(long, default_value_t = CheckOptions::default().max_steps)]
    pub max_steps: u64,
    /// Print the report as one JSON document (top-level `passed`).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    let loaded = load::load(&load::runtime()?, &args.env)?;
    let options = CheckOptions { episodes: args.episodes, seed: args.seed, max_steps: args.max_steps };
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
        let mark = if c.passed { "✓" } else { "✗" };
        writeln!(out, "  {mark} {:<width$}  {}", c.name, c.detail)?;
    }
    let passed = report.checks.iter().filter(|c| c.passed).count();
    let verdict = if report.passed { "PASSED" } else { "FAILED" };
    writeln!(out, "{verdict}: {passed}/{} checks hold", report.checks.len())?;
    Ok(())
}
