//! `wasmgym inspect <env>`: what a module is and what it asks of the host.

use std::io::{self, Write};

use crate::error::{Error, Outcome};
use crate::{load, output};

#[derive(clap::Args)]
pub struct Args {
    /// A built-in name (see `wasmgym envs`) or a path to a .wasm or .wat file.
    pub env: String,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    let loaded = load::load(&load::runtime()?, &args.env)?;
    let info = loaded.module.info();
    if args.json {
        let mut doc = serde_json::to_value(&info).map_err(io::Error::from)?;
        doc["source"] = loaded.source.into();
        output::print_json(&doc)?;
        return Ok(Outcome::Passed);
    }
    let spec = &info.spec;
    let mut out = io::stdout().lock();
    let (low, high) = spec.reward_range;
    writeln!(out, "{} v{}  ({})", spec.name, spec.version, loaded.source)?;
    writeln!(out, "  players             {}", spec.players)?;
    writeln!(out, "  observation space   {}", output::space(&spec.observation_space))?;
    writeln!(out, "  action space        {}", output::space(&spec.action_space))?;
    writeln!(out, "  reward range        {low} .. {high}")?;
    let max_steps = spec.max_episode_steps.map_or("none".to_string(), |n| n.to_string());
    writeln!(out, "  max episode steps   {max_steps}")?;
    writeln!(out, "  determinism         {:?}", spec.determinism)?;
    writeln!(out, "module")?;
    writeln!(out, "  ABI version         {}", info.abi_version)?;
    writeln!(out, "  size                {} bytes", info.size_bytes)?;
    writeln!(out, "  BLAKE3 hash         {}", info.hash)?;
    let memory: Vec<String> = info.initial_memory_bytes.iter().map(|b| format!("{} KiB", b / 1024)).collect();
    writeln!(out, "  initial memory      {}", memory.join(", "))?;
    writeln!(out, "  mutable globals     {}", info.mutable_globals)?;
    writeln!(out, "  exports             {}: {}", info.exports.len(), info.exports.join(", "))?;
    writeln!(out, "  imports             {}: {}", info.imports.len(), info.imports.join(", "))?;
    Ok(Outcome::Passed)
}
