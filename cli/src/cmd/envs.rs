//! `wasmgym envs`: the built-in environments.

use std::io::{self, Write};

use serde::Serialize;

use crate::error::{Error, Outcome};
use crate::{load, output};

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Row {
    name: &'static str,
    language: &'static str,
    /// Where the build wrote the `.wasm` (its bytes are also embedded in this binary).
    path: &'static str,
    size_bytes: usize,
    /// Source folder, relative to the repository root.
    source: &'static str,
    players: u32,
    action_space: wasmgym::Space,
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    let runtime = load::runtime()?;
    let mut rows = Vec::new();
    for env in wasmgym_builtin::ENVS {
        let spec = load::load(&runtime, env.name)?.module.spec().clone();
        rows.push(Row {
            name: env.name,
            language: env.language,
            path: env.path,
            size_bytes: env.bytes.len(),
            source: env.crate_dir,
            players: spec.players,
            action_space: spec.action_space,
        });
    }
    if args.json {
        let composites: Vec<serde_json::Value> = wasmgym_agent::BUILTIN
            .iter()
            .map(|(name, about)| serde_json::json!({"name": name, "about": about, "wiring": wasmgym_agent::Wiring::builtin(name)}))
            .collect();
        output::print_json(&serde_json::json!({ "envs": rows, "composites": composites }))?;
        return Ok(Outcome::Passed);
    }
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "{:<14} {:<6} {:>9} {:>7}  {:<18} {:<22} path",
        "name", "lang", "size", "players", "source", "actions"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<14} {:<6} {:>8}K {:>7}  {:<18} {:<22} {}",
            r.name,
            r.language,
            r.size_bytes.div_ceil(1024),
            r.players,
            r.source,
            output::space(&r.action_space),
            r.path
        )?;
    }
    writeln!(
        out,
        "\nRun one with `wasmgym run <name>`, play it with `wasmgym play <name>`; a path to a .wasm or .wat file works too."
    )?;
    writeln!(
        out,
        "\nComposite agent environments (`wasmgym play <name>` makes you the agent; `wasmgym eval <name>`):"
    )?;
    for (name, about) in wasmgym_agent::BUILTIN {
        writeln!(out, "  {name:<14} {about}")?;
    }
    Ok(Outcome::Passed)
}
