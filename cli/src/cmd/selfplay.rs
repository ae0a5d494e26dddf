//! `wasmgym selfplay <env>`: AlphaZero-style self-play data: MCTS plays both sides, every move is a
//! JSON line (observation, legal-action mask, visit distribution, action, player, outcome).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use serde::Serialize;
use wasmgym_search::{MctsOptions, SearchError, SelfPlayOptions};

use crate::error::{Error, Outcome};
use crate::{load, output};

#[derive(clap::Args)]
pub struct Args {
    /// A built-in name (see `wasmgym envs`) or a path to a .wasm or .wat file (discrete actions).
    pub env: String,
    /// Games to play.
    #[arg(long, default_value_t = 10, value_parser = crate::at_least_1::<usize>())]
    pub games: usize,
    /// MCTS simulations per move.
    #[arg(long, default_value_t = 200, value_parser = crate::at_least_1::<usize>())]
    pub simulations: usize,
    /// The UCT exploration constant.
    #[arg(long, default_value_t = MctsOptions::default().exploration)]
    pub exploration: f64,
    /// Moves of each game drawn in proportion to visit counts (then the most visited).
    #[arg(long, default_value_t = 2)]
    pub temperature_moves: usize,
    /// Seed of everything; the same seed writes the same file.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the records, one JSON object per line.
    #[arg(long)]
    pub out: PathBuf,
    /// Print the summary as one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Summary {
    env: String,
    games: usize,
    records: usize,
    /// Games by the final return of player 0: won (> 0), drawn (0), lost (< 0).
    player0_won: usize,
    drawn: usize,
    player0_lost: usize,
    seconds: f64,
    out: String,
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    if args.simulations == 0 || args.games == 0 {
        return Err(Error::Usage("--games and --simulations must be at least 1".into()));
    }
    let loaded = load::load(&load::runtime()?, &args.env)?;
    let file = File::create(&args.out).map_err(|e| {
        Error::Usage(format!(
            "cannot write --out {}: {e}; name a file in a directory you can write",
            args.out.display()
        ))
    })?;
    let mut out = BufWriter::new(file);
    let options = SelfPlayOptions {
        games: args.games,
        mcts: MctsOptions { simulations: args.simulations, exploration: args.exploration, ..Default::default() },
        seed: args.seed,
        temperature_moves: args.temperature_moves,
        ..Default::default()
    };
    let bar = output::progress(args.games as u64, 2, "games");
    let started = std::time::Instant::now();
    let mut summary = Summary {
        env: loaded.source.clone(),
        games: 0,
        records: 0,
        player0_won: 0,
        drawn: 0,
        player0_lost: 0,
        seconds: 0.0,
        out: args.out.display().to_string(),
    };
    let mut write_error = None;
    let played = wasmgym_search::selfplay(&loaded.module, &options, |records| {
        let first = records.iter().find(|r| r.player == 0).map(|r| r.outcome).unwrap_or(0.0);
        match first.partial_cmp(&0.0) {
            Some(std::cmp::Ordering::Greater) => summary.player0_won += 1,
            Some(std::cmp::Ordering::Less) => summary.player0_lost += 1,
            _ => summary.drawn += 1,
        }
        summary.games += 1;
        summary.records += records.len();
        for record in &records {
            let line = serde_json::to_string(record).expect("records serialise");
            if let Err(e) = writeln!(out, "{line}") {
                write_error = Some(e);
                return Err(SearchError::NoDecision("writing the records failed".into()));
            }
        }
        bar.inc(1);
        Ok(())
    });
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(Error::Io(e));
    }
    match played {
        Ok(()) => {}
        Err(SearchError::NoDecision(why)) => return Err(Error::Usage(format!("cannot self-play: {why}"))),
        Err(SearchError::Env(source)) => return Err(Error::Env { context: "self-play".into(), source }),
        Err(e) => return Err(Error::Usage(e.to_string())),
    }
    out.flush()?;
    summary.seconds = started.elapsed().as_secs_f64();
    if args.json {
        output::print_json(&summary)?;
    } else {
        let mut stdout = io::stdout().lock();
        writeln!(
            stdout,
            "{} games of {} ({} moves) in {:.1} s: player 0 won {}, drew {}, lost {}; records in {}",
            summary.games,
            summary.env,
            summary.records,
            summary.seconds,
            summary.player0_won,
            summary.drawn,
            summary.player0_lost,
            summary.out
        )?;
    }
    Ok(Outcome::Passed)
}
