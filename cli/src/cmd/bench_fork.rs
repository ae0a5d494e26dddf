//! `wasmgym bench fork`: restore and fork times against memory size and the pages a branch dirties,
//! next to the full copy of the memory that a naive snapshot costs. A quick sweep (well under a
//! minute); the criterion benches in `benches/benches/dirty.rs` measure the same more carefully.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmgym::{Env, Limits, Runtime, Snapshot};

use crate::error::{Context, Error, Outcome};
use crate::output;

const MEMORY_KIB: [u64; 4] = [64, 1024, 16 * 1024, 64 * 1024];
const DIRTY_PAGES: [u64; 4] = [1, 16, 256, 1024];
/// Time spent measuring each figure (at least `MIN_REPS` repetitions).
const BUDGET: Duration = Duration::from_millis(250);
const MIN_REPS: usize = 5;

#[derive(clap::Args)]
pub struct ForkArgs {
    /// Print one JSON document: an array of rows.
    #[arg(long)]
    pub json: bool,
}

/// One measured point; times are medians in nanoseconds.
#[derive(Serialize)]
struct Row {
    memory_bytes: u64,
    dirty_pages: u64,
    restore_ns: u64,
    fork_ns: u64,
    full_copy_ns: u64,
}

pub fn run(args: ForkArgs) -> Result<Outcome, Error> {
    let runtime = Runtime::new().context(|| "starting the WebAssembly runtime".into())?;
    let guest = wasmgym_builtin::find_test_guest("dirty").expect("the dirty guest is built with the CLI");
    let module = runtime.load(guest.bytes).context(|| "loading the dirty guest".into())?;
    let points: Vec<(u64, u64)> = MEMORY_KIB
        .iter()
        .flat_map(|&kib| DIRTY_PAGES.iter().filter(move |&&d| d * 4 <= kib).map(move |&d| (kib, d)))
        .collect();
    let bar = output::progress(points.len() as u64, 1, "points");
    let mut rows = Vec::new();
    for (kib, dirty) in points {
        let limits = Limits { memory_bytes: 1 << 30, ..Limits::default() };
        let mut env = module.instantiate_with(limits).context(|| "instantiating".into())?;
        let options = format!(r#"{{"memory_kib": {kib}, "dirty_pages": {dirty}}}"#);
        env.reset(Some(1), Some(&options)).context(|| "resetting".into())?;
        env.step(0).context(|| "stepping".into())?;
        let snapshot = env.snapshot().context(|| "taking a snapshot".into())?;
        let restore = median(|| after_step(&mut env, &snapshot, |env| env.restore(&snapshot).map(drop)))?;
        let fork = median(|| after_step(&mut env, &snapshot, |env| env.fork().map(|child| drop(black_box(child)))))?;
        let memory = vec![1u8; kib as usize * 1024];
        let mut copy = vec![0u8; memory.len()];
        let full_copy = median(|| {
            let start = Instant::now();
            copy.copy_from_slice(black_box(&memory));
            Ok(start.elapsed())
        })?;
        rows.push(Row {
            memory_bytes: kib * 1024,
            dirty_pages: dirty,
            restore_ns: restore.as_nanos() as u64,
            fork_ns: fork.as_nanos() as u64,
            full_copy_ns: full_copy.as_nanos() as u64,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    if args.json {
        output::print_json(&rows)?;
    } else {
        println!("{:>10} {:>6} {:>12} {:>12} {:>12}", "memory", "dirty", "restore", "fork", "full copy");
        for r in &rows {
            println!(
                "{:>10} {:>6} {:>12} {:>12} {:>12}",
                format!("{} KiB", r.memory_bytes / 1024),
                r.dirty_pages,
                micros(r.restore_ns),
                micros(r.fork_ns),
                micros(r.full_copy_ns)
            );
        }
        println!("(medians; each restore and fork follows an untimed step that dirtied the pages)");
    }
    Ok(Outcome::Passed)
}

/// Restores the snapshot, takes the untimed step that dirties the pages, then times `what`.
fn after_step(
    env: &mut Env,
    snapshot: &Snapshot,
    what: impl FnOnce(&mut Env) -> wasmgym::Result<()>,
) -> Result<Duration, Error> {
    env.restore(snapshot).context(|| "restoring".into())?;
    env.step(0).context(|| "stepping".into())?;
    let start = Instant::now();
    what(env).context(|| "measuring".into())?;
    Ok(start.elapsed())
}

/// The median of repeated measurements, for `BUDGET` or at least `MIN_REPS` times.
fn median(mut measure: impl FnMut() -> Result<Duration, Error>) -> Result<Duration, Error> {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < MIN_REPS || start.elapsed() < BUDGET {
        times.push(measure()?);
    }
    times.sort();
    Ok(times[times.len() / 2])
}

fn micros(ns: u64) -> String {
    format!("{:.2} µs", ns as f64 / 1000.0)
}
