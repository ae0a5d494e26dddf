//! `wasmgym`: list, inspect, run, play, check and demo sandboxed WebAssembly environments; grade
//! untrusted programs in the same sandbox.
//!
//! Exit status: 0 on success, 1 on a failed check or a guest/runtime error, 2 on a usage error (a
//! file named on the command line that cannot be read counts as one).

mod cmd;
mod error;
mod load;
mod output;
mod tree_view;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{Error, Outcome};

/// Run reinforcement-learning environments compiled to WebAssembly, in a sandbox that can
/// snapshot, restore and fork them exactly.
#[derive(Parser)]
#[command(name = "wasmgym", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Compile every module afresh and keep nothing in the compile cache (which is otherwise in
    /// $WASMGYM_CACHE_DIR, else $XDG_CACHE_HOME/wasmgym or ~/.cache/wasmgym; an empty
    /// WASMGYM_CACHE_DIR turns it off too).
    #[arg(long, global = true)]
    no_cache: bool,
}

#[derive(Subcommand)]
enum Command {
    /// List the built-in environments.
    Envs(cmd::envs::Args),
    /// Describe an environment: spec, spaces, ABI version, exports, imports, memory, hash.
    Inspect(cmd::inspect::Args),
    /// Play episodes with a random policy and report returns, lengths and speed.
    Run(cmd::run::Args),
    /// Create a new environment crate, ready to build, test and check.
    New(cmd::new::Args),
    /// Play an environment yourself in the terminal, against a random opponent.
    Play(cmd::play::Args),
    /// Run the conformance suite (determinism, spaces, snapshot/restore/fork exactness).
    Check(cmd::check::Args),
    /// Show the main job: fast rollouts, then forking a game mid-way and verifying every branch.
    Demo(cmd::demo::Args),
    /// Grade an untrusted program (a WASI command) on tests, in the sandbox: a verdict per test.
    Grade(cmd::grade::Args),
    /// Measure: `bench grade` compares the grader with a process per test.
    Bench(cmd::bench::Args),
    /// Choose an action by tree search (MCTS, PUCT, beam, breadth-first, exhaustive) on exact
    /// snapshots of the environment; --tree draws the tree.
    Search(cmd::search::Args),
    /// Write AlphaZero-style self-play data: MCTS plays every side, one JSON line per move.
    Selfplay(cmd::selfplay::Args),
    /// Evaluate an agent on agent environments: pass^k over tasks, or a sequential task suite
    /// beside its i.i.d. baseline.
    Eval(cmd::eval::Args),
    /// Serve environments over OpenEnv's protocol (WebSocket /ws, HTTP) and run code over
    /// SandboxFusion's (/run_code), for trainers that speak them.
    Serve(cmd::serve::Args),
}

impl Command {
    /// Whether the command was asked for JSON output.
    fn json(&self) -> bool {
        match self {
            Command::Envs(a) => a.json,
            Command::Inspect(a) => a.json,
            Command::Run(a) => a.json,
            Command::New(a) => a.json,
            Command::Play(_) => false,
            Command::Check(a) => a.json,
            Command::Demo(a) => a.json,
            Command::Grade(a) => a.json,
            Command::Bench(a) => a.json(),
            Command::Search(a) => a.json,
            Command::Selfplay(a) => a.json,
            Command::Serve(a) => a.json,
            Command::Eval(a) => a.json,
        }
    }

    fn run(self) -> Result<Outcome, Error> {
        match self {
            Command::Envs(a) => cmd::envs::run(a),
            Command::Inspect(a) => cmd::inspect::run(a),
            Command::Run(a) => cmd::run::run(a),
            Command::New(a) => cmd::new::run(a),
            Command::Play(a) => cmd::play::run(a),
            Command::Check(a) => cmd::check::run(a),
            Command::Demo(a) => cmd::demo::run(a),
            Command::Grade(a) => cmd::grade::run(a),
            Command::Bench(a) => cmd::bench::run(a),
            Command::Search(a) => cmd::search::run(a),
            Command::Selfplay(a) => cmd::selfplay::run(a),
            Command::Serve(a) => cmd::serve::run(a),
            Command::Eval(a) => cmd::eval::run(a),
        }
    }
}

/// The parser of every count, size and limit flag: 0 is a usage error naming the flag, the same
/// way in every command.
pub fn at_least_1<T: TryFrom<u64> + Clone + Send + Sync + 'static>() -> clap::builder::RangedU64ValueParser<T> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return error::clap_error(e),
    };
    load::NO_CACHE.store(cli.no_cache, std::sync::atomic::Ordering::Relaxed);
    let json = cli.command.json();
    match cli.command.run() {
        Ok(Outcome::Passed) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) => e.report(json),
    }
}
