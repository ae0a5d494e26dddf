//! How `VecEnv` stepping scales with threads (`cargo run --release -p wasmgym-search --example
//! vec_scaling -- cart_pole 1024`).

use std::time::Instant;

use wasmgym::Action;
use wasmgym_search::VecEnv;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "cart_pole".into());
    let n: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let runtime = wasmgym::Runtime::new()?;
    let module = runtime.load(wasmgym_builtin::find(&name).ok_or("unknown env")?.bytes)?;
    for threads in [1, 2, 1, 2] {
        let mut vector = VecEnv::new(&module, n, 0, threads, true)?;
        let started = Instant::now();
        let rounds = 200;
        for step in 0..rounds {
            let actions: Vec<Action> = (0..n).map(|i| Action::Discrete(((step + i) % 2) as i64)).collect();
            vector.step(&actions)?;
        }
        let rate = (rounds * n) as f64 / started.elapsed().as_secs_f64();
        println!("{name}: {n} environments, {threads} threads: {rate:.0} steps/s");
    }
    Ok(())
}
