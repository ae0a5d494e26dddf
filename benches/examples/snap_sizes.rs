//! Snapshot bytes of every built-in environment after up to 10 steps of its first legal action:
//! `Snapshot::to_bytes` (format 2, self-contained) against `EnvModule::snapshot_to_bytes` (format
//! 3, pages equal to the module's initial image by reference), sizes and mean encode / decode
//! times over 2,000 rounds. Baseline: format 2.
//!
//! `cargo run --release -p wasmgym-benches --example snap_sizes` (docs/hardening.md).

use std::time::{Duration, Instant};

const ROUNDS: u32 = 2000;

/// The mean time of `f` over `ROUNDS` calls, and its last result.
fn mean<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let start = Instant::now();
    let mut last = f();
    for _ in 1..ROUNDS {
        last = f();
    }
    (start.elapsed() / ROUNDS, last)
}

fn main() {
    let runtime = wasmgym::Runtime::new().expect("starting the runtime");
    println!("| env | memory | format 2 | format 3 | format 2 time | format 3 time |");
    println!("|---|---:|---:|---:|---:|---:|");
    for env in wasmgym_builtin::ENVS {
        let module = runtime.load(env.bytes).expect("loading");
        let mut live = module.instantiate().expect("instantiating");
        live.reset(Some(1), None).expect("resetting");
        for _ in 0..10 {
            match live.legal_actions().ok().and_then(|legal| legal.first().copied()) {
                Some(action) if live.is_running() => drop(live.step(action).expect("stepping")),
                _ => break,
            }
        }
        let snapshot = live.snapshot().expect("a snapshot");
        let (write_plain, plain) = mean(|| snapshot.to_bytes());
        let (write_compact, compact) = mean(|| module.snapshot_to_bytes(&snapshot).expect("encoding"));
        let (read_plain, _) = mean(|| wasmgym::Snapshot::from_bytes(&plain).expect("decoding"));
        let (read_compact, _) = mean(|| module.snapshot_from_bytes(&compact).expect("decoding"));
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "| {} | {} KiB | {:.1} KB | {:.1} KB | {:.0} / {:.0} µs | {:.0} / {:.0} µs |",
            env.name,
            snapshot.memory_bytes() / 1024,
            plain.len() as f64 / 1000.0,
            compact.len() as f64 / 1000.0,
            us(write_plain),
            us(read_plain),
            us(write_compact),
            us(read_compact)
        );
    }
}
