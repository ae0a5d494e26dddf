//! Forks into new instances of every built-in environment: in a pooled slot (the default) against
//! an instance created on demand (`instance_slots: 0`), with no warm instance to reuse
//! (`instance_pool: 0`). Each fork is timed alone and dropped after; medians of 3,000.
//!
//! `cargo run --release -p wasmgym-benches --example fork_new` (docs/branching.md).

use std::time::Instant;

use wasmgym::{Env, Runtime, RuntimeConfig};

const FORKS: usize = 3000;
const MOVES: usize = 3;

/// The median time of a fork of `env` and whether the forks landed in a slot.
fn median_fork(env: &mut Env) -> (f64, bool) {
    let mut times = Vec::with_capacity(FORKS);
    let mut in_slot = true;
    for _ in 0..FORKS {
        let start = Instant::now();
        let fork = env.fork().expect("forking");
        times.push(start.elapsed().as_secs_f64() * 1e6);
        in_slot &= fork.in_slot();
    }
    times.sort_by(f64::total_cmp);
    (times[FORKS / 2], in_slot)
}

fn main() {
    let runtime = |slots| {
        Runtime::with_config(RuntimeConfig { instance_pool: 0, instance_slots: slots, ..Default::default() })
            .expect("starting the runtime")
    };
    let (slotted, on_demand) = (runtime(RuntimeConfig::default().instance_slots), runtime(0));
    println!("{:>16} {:>8} {:>12} {:>12} {:>7}", "env", "memory", "in a slot", "on demand", "ratio");
    for env in wasmgym_builtin::ENVS {
        let mut times = Vec::new();
        let mut memory = 0;
        for runtime in [&slotted, &on_demand] {
            let mut live = runtime.load(env.bytes).expect("loading").instantiate().expect("instantiating");
            live.reset(Some(1), None).expect("resetting");
            for _ in 0..MOVES {
                if let Some(action) = live.legal_actions().ok().and_then(|legal| legal.first().copied()) {
                    live.step(action).expect("stepping");
                }
            }
            memory = live.memory_bytes();
            times.push(median_fork(&mut live));
        }
        let ((slot, in_slot), (demand, _)) = (times[0], times[1]);
        let note = if in_slot { "" } else { " (not in a slot)" };
        println!(
            "{:>16} {:>5} KiB {:>9.2} µs {:>9.2} µs {:>6.1}×{note}",
            env.name,
            memory / 1024,
            slot,
            demand,
            demand / slot
        );
    }
}
