//! Where a simulation's time goes: the cost of each runtime call a search makes, on a built-in
//! environment (`cargo run --release -p wasmgym-search --example costs -- connect_four`).

use std::time::Instant;

use wasmgym_abi::wire::{PlayoutRequest, RolloutRequest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "tic_tac_toe".into());
    let runtime = wasmgym::Runtime::new()?;
    let module = runtime.load(wasmgym_builtin::find(&name).ok_or("unknown env")?.bytes)?;
    let mut env = module.instantiate()?;
    env.reset(Some(0), None)?;
    let root = env.snapshot()?;
    println!("{name}: rollout export {}", env.has_rollout());
    let n: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    if let Some(searches) = std::env::var("MCTS").ok().and_then(|s| s.parse::<u64>().ok()) {
        let options = wasmgym_search::MctsOptions { simulations: 1000, exploration: 2.0, ..Default::default() };
        let started = Instant::now();
        for seed in 0..searches {
            wasmgym_search::mcts(&mut env, &wasmgym_search::MctsOptions { seed, ..options.clone() })?;
        }
        let rate = (searches * 1000) as f64 / started.elapsed().as_secs_f64();
        println!("{:>28}: {rate:>8.0} simulations/s", "mcts, 1000 per search");
        return Ok(());
    }
    if std::env::var_os("ONLY_NATIVE").is_some() {
        native(&name, n);
        return Ok(());
    }
    let time = |what: &str, f: &mut dyn FnMut(u64)| {
        let started = Instant::now();
        for i in 0..n {
            f(i);
        }
        println!("{what:>28}: {:>8.2} µs", started.elapsed().as_secs_f64() * 1e6 / n as f64);
    };
    time("restore (clean)", &mut |_| env.restore(&root).unwrap());
    if std::env::var_os("FUEL").is_some() {
        // Guest work per call, in fuel (wasm instructions, the dirty-page marks included).
        for (prefix, max_steps) in [(vec![], 0), (vec![], 1), (vec![], 5), (vec![3], 0), (vec![3, 2], 0)] {
            env.restore(&root)?;
            let before = env.fuel_consumed();
            let request = PlayoutRequest { prefix: prefix.clone(), max_steps, seed: 3, ..Default::default() };
            let steps = env.playout(&request)?.map_or(0, |p| p.rollout.steps);
            let fuel = env.fuel_consumed() - before;
            println!("{:>28}: {fuel} fuel ({steps} random steps)", format!("playout {prefix:?}, max {max_steps}"));
        }
        return Ok(());
    }
    if std::env::var_os("ONLY_ROLLOUT").is_some() {
        time("restore + rollout", &mut |i| {
            env.restore(&root).unwrap();
            env.rollout(&RolloutRequest { first: None, seed: i, max_steps: 1000 }).unwrap();
        });
        return Ok(());
    }
    if std::env::var_os("ONLY_LEGAL").is_some() {
        time("restore + legal_actions", &mut |_| {
            env.restore(&root).unwrap();
            env.legal_actions().unwrap();
        });
        return Ok(());
    }
    time("restore + legal_actions", &mut |_| {
        env.restore(&root).unwrap();
        env.legal_actions().unwrap();
    });
    time("restore + step", &mut |_| {
        env.restore(&root).unwrap();
        env.step(3).unwrap();
    });
    time("restore + rollout", &mut |i| {
        env.restore(&root).unwrap();
        env.rollout(&RolloutRequest { first: None, seed: i, max_steps: 1000 }).unwrap();
    });
    let mut steps = 0u64;
    time("restore + rollout (steps)", &mut |i| {
        env.restore(&root).unwrap();
        steps += env.rollout(&RolloutRequest { first: None, seed: i, max_steps: 1000 }).unwrap().unwrap().steps as u64;
    });
    println!("{:>28}: {:.1}", "steps per rollout", steps as f64 / n as f64);
    env.restore(&root)?;
    env.rollout(&RolloutRequest { first: None, seed: 1, max_steps: 1000 })?;
    println!("{:>28}: {}", "dirty pages after a rollout", env.dirty_pages());
    env.restore(&root)?;
    env.legal_actions()?;
    println!("{:>28}: {}", "after legal_actions", env.dirty_pages());
    native(&name, n);
    time("restore + snapshot", &mut |_| {
        env.restore(&root).unwrap();
        env.step(3).unwrap();
        env.snapshot().unwrap();
    });
    Ok(())
}

/// The same rollouts natively, through the SDK's `Runner` (no sandbox).
fn native(name: &str, n: u64) {
    fn go<E: wasmgym_sdk::Environment>(n: u64) {
        let mut runner = wasmgym_sdk::Runner::<E>::new();
        let started = Instant::now();
        let mut steps = 0u64;
        for i in 0..n {
            runner.reset(Some(0), "").unwrap();
            steps += runner.rollout(&RolloutRequest { first: None, seed: i, max_steps: 1000 }).unwrap().steps as u64;
        }
        let per = started.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("{:>28}: {per:>8.2} µs ({:.1} steps)", "native reset + rollout", steps as f64 / n as f64);
    }
    match name {
        "tic_tac_toe" => go::<tic_tac_toe::TicTacToe>(n),
        "connect_four" => go::<connect_four::ConnectFour>(n),
        _ => {}
    }
}
