//! Drive a built-in environment from Rust: play, snapshot, fork, restore, and check exactness.
//!
//! Run with: `cargo run --release -p wasmgym-builtin --example drive`

use wasmgym::{Result, Runtime};

fn main() -> Result<()> {
    let runtime = Runtime::new()?; // one per process
    let module = runtime.load(wasmgym_builtin::find("connect_four").unwrap().bytes)?; // compiled once
    let mut env = module.instantiate()?; // a live instance (owns its store)

    env.reset(Some(42), None)?;
    for column in [3, 3, 4] {
        env.step(column)?;
    }
    let branch_point = env.snapshot()?; // complete state, plain data
    let mut fork = env.fork()?; // an independent copy, right now

    let a = env.step(2)?; // play on in the original...
    let b = fork.step(2)?; // ...and the same move in the fork
    assert_eq!(a, b, "forks are exact");

    fork.step(5)?; // the fork goes its own way; the original is untouched
    env.restore(&branch_point)?; // back to the branch point
    println!("legal after restore: {:?}, player {:?}", env.legal_actions()?, env.current_player());
    println!("{}", env.render()?);
    Ok(())
}
