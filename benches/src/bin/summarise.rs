//! Prints the results of `cargo bench -p wasmgym-benches` as the markdown tables of
//! docs/benchmarks.md: for each stage, the sandbox figure, its baseline and their ratio.
//!
//! ```text
//! cargo run -p wasmgym-benches --bin summarise [-- path/to/target/criterion]
//! ```
//!
//! Figures are criterion's median estimates (robust to the odd preempted sample on a busy machine),
//! read from `<criterion dir>/**/new/{benchmark,estimates}.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One row: what is measured, the sandbox benchmark, its baseline benchmark, and what the baseline is.
struct Row {
    case: &'static str,
    sandbox: &'static str,
    baseline: &'static str,
    baseline_label: &'static str,
}

const fn row(case: &'static str, sandbox: &'static str, baseline: &'static str, baseline_label: &'static str) -> Row {
    Row { case, sandbox, baseline, baseline_label }
}

const GROUPS: &[(&str, &[Row])] = &[
    (
        "compile",
        &[
            row(
                "connect_four",
                "compile/connect_four/sandbox",
                "instantiate/connect_four/sandbox",
                "instantiate (sandbox)",
            ),
            row("cart_pole", "compile/cart_pole/sandbox", "instantiate/cart_pole/sandbox", "instantiate (sandbox)"),
        ],
    ),
    (
        "instantiate",
        &[
            row(
                "connect_four",
                "instantiate/connect_four/sandbox",
                "instantiate/connect_four/native",
                "native `Runner::new`",
            ),
            row("cart_pole", "instantiate/cart_pole/sandbox", "instantiate/cart_pole/native", "native `Runner::new`"),
        ],
    ),
    (
        "reset",
        &[
            row("connect_four", "reset/connect_four/sandbox", "reset/connect_four/native", "native `Runner::reset`"),
            row("cart_pole", "reset/cart_pole/sandbox", "reset/cart_pole/native", "native `Runner::reset`"),
        ],
    ),
    (
        "step",
        &[
            row("connect_four step", "step/connect_four/sandbox", "step/connect_four/native", "native `Runner::step`"),
            row("cart_pole step", "step/cart_pole/sandbox", "step/cart_pole/native", "native `Runner::step`"),
            row(
                "connect_four legal_actions",
                "step/connect_four_legal_actions/sandbox",
                "step/connect_four_legal_actions/native",
                "native `Runner::legal_actions`",
            ),
        ],
    ),
    (
        "step_breakdown",
        &[
            row(
                "connect_four: `Env::step`",
                "step/connect_four/sandbox",
                "step_breakdown/connect_four/bare_metered",
                "bare calls, fuel + epochs",
            ),
            row(
                "connect_four: bare calls, fuel + epochs",
                "step_breakdown/connect_four/bare_metered",
                "step_breakdown/connect_four/bare_unmetered",
                "bare calls, no metering",
            ),
            row(
                "connect_four: bare calls, fuel only",
                "step_breakdown/connect_four/bare_fuel_only",
                "step_breakdown/connect_four/bare_unmetered",
                "bare calls, no metering",
            ),
            row(
                "connect_four: bare calls, epochs only",
                "step_breakdown/connect_four/bare_epochs_only",
                "step_breakdown/connect_four/bare_unmetered",
                "bare calls, no metering",
            ),
            row(
                "connect_four: bare calls, no metering",
                "step_breakdown/connect_four/bare_unmetered",
                "step/connect_four/native",
                "native `Runner::step`",
            ),
            row(
                "cart_pole: `Env::step`",
                "step/cart_pole/sandbox",
                "step_breakdown/cart_pole/bare_metered",
                "bare calls, fuel + epochs",
            ),
            row(
                "cart_pole: bare calls, fuel + epochs",
                "step_breakdown/cart_pole/bare_metered",
                "step_breakdown/cart_pole/bare_unmetered",
                "bare calls, no metering",
            ),
            row(
                "cart_pole: bare calls, fuel only",
                "step_breakdown/cart_pole/bare_fuel_only",
                "step_breakdown/cart_pole/bare_unmetered",
                "bare calls, no metering",
            ),
            row(
                "cart_pole: bare calls, epochs only",
                "step_breakdown/cart_pole/bare_epochs_only",
                "step_breakdown/cart_pole/bare_unmetered",
                "bare calls, no metering",
            ),
            row(
                "cart_pole: bare calls, no metering",
                "step_breakdown/cart_pole/bare_unmetered",
                "step/cart_pole/native",
                "native `Runner::step`",
            ),
        ],
    ),
    (
        "snapshot",
        &[
            row(
                "connect_four, move 10",
                "snapshot/connect_four/sandbox",
                "snapshot/connect_four/replay",
                "replay in the sandbox (reset + 10 steps)",
            ),
            row(
                "connect_four, move 10",
                "snapshot/connect_four/sandbox",
                "snapshot/connect_four/replay_native",
                "replay natively (reset + 10 steps)",
            ),
            row(
                "connect_four, move 10",
                "snapshot/connect_four/sandbox",
                "snapshot/connect_four/memcpy",
                "memcpy of the linear memory",
            ),
        ],
    ),
    (
        "restore",
        &[
            row(
                "connect_four, move 10",
                "restore/connect_four/sandbox",
                "restore/connect_four/replay",
                "replay in the sandbox (reset + 10 steps)",
            ),
            row(
                "connect_four, move 10",
                "restore/connect_four/sandbox",
                "restore/connect_four/replay_native",
                "replay natively (reset + 10 steps)",
            ),
        ],
    ),
    (
        "fork",
        &[
            row(
                "connect_four, move 10",
                "fork/connect_four/sandbox",
                "fork/connect_four/replay",
                "instantiate + reset + 10 steps (sandbox)",
            ),
            row(
                "connect_four, move 10",
                "fork/connect_four/sandbox",
                "fork/connect_four/replay_native",
                "`Runner::new` + reset + 10 steps (native)",
            ),
        ],
    ),
    (
        "serialise",
        &[
            row(
                "`Snapshot::to_bytes`",
                "serialise/to_bytes/sandbox",
                "serialise/connect_four/memcpy",
                "`Vec<u8>` clone of as many bytes",
            ),
            row(
                "`Snapshot::from_bytes`",
                "serialise/from_bytes/sandbox",
                "serialise/connect_four/memcpy",
                "`Vec<u8>` clone of as many bytes",
            ),
        ],
    ),
];

struct Result {
    median_ns: f64,
    bytes: Option<u64>,
}

fn main() {
    let dir = std::env::args_os().nth(1).map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        target.join("criterion")
    });
    let mut results = BTreeMap::new();
    collect(&dir, &mut results);
    if results.is_empty() {
        eprintln!("no criterion results under {}: run `cargo bench -p wasmgym-benches` first", dir.display());
        std::process::exit(1);
    }
    for (group, rows) in GROUPS {
        println!("### `{group}`\n");
        println!("| case | sandbox | baseline | baseline time | sandbox ÷ baseline |");
        println!("|---|---:|---|---:|---:|");
        for r in rows.iter() {
            let (s, b) = (results.get(r.sandbox), results.get(r.baseline));
            let ratio = match (s, b) {
                (Some(s), Some(b)) => format!("{:.2}×", s.median_ns / b.median_ns),
                _ => "—".into(),
            };
            println!(
                "| {} | {} | {} | {} | {} |",
                r.case,
                s.map_or("—".into(), time),
                r.baseline_label,
                b.map_or("—".into(), time),
                ratio
            );
        }
        println!();
    }
}

/// `median` with the throughput it implies when the benchmark declared a byte count.
fn time(r: &Result) -> String {
    let t = format_ns(r.median_ns);
    match r.bytes {
        Some(bytes) => format!("{t} ({:.2} GiB/s)", bytes as f64 / r.median_ns * 1e9 / (1u64 << 30) as f64),
        None => t,
    }
}

fn format_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Reads every `new/` result under `dir`, keyed by criterion's full id (`group/function/value`).
fn collect(dir: &Path, out: &mut BTreeMap<String, Result>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some((id, result)) = read(&path) {
                out.insert(id, result);
            }
        } else {
            collect(&path, out);
        }
    }
}

fn read(new: &Path) -> Option<(String, Result)> {
    let json = |name: &str| -> Option<Value> { serde_json::from_slice(&std::fs::read(new.join(name)).ok()?).ok() };
    let benchmark = json("benchmark.json")?;
    let estimates = json("estimates.json")?;
    let id = benchmark["full_id"].as_str()?.to_owned();
    let median_ns = estimates["median"]["point_estimate"].as_f64()?;
    let bytes = benchmark["throughput"]["Bytes"].as_u64();
    Some((id, Result { median_ns, bytes }))
}
