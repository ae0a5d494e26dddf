//! Score an environment's final state with a sandboxed reward checker that queries a fork of it.
//!
//! Run with: `cargo run --release -p wasmgym-builtin --example reward`

use wasmgym::{Limits, Observation, Result, Runtime};

fn main() -> Result<()> {
    let runtime = Runtime::new()?;
    let env_module = runtime.load(wasmgym_builtin::find_program("answer_env").unwrap().bytes)?;
    let checker = runtime.load_checker(wasmgym_builtin::find_program("answer_checker").unwrap().bytes)?;
    let mut checker = checker.instantiate(Limits::default())?; // its own limits, its own store

    for (agent, off_by) in [("right", 0), ("sloppy", 10)] {
        let mut env = env_module.instantiate()?;
        let Observation::Text(question) = env.reset(Some(7), None)?.observation else { unreachable!() };
        let sum: u32 = question.trim_end_matches(" = ").split(" + ").map(|n| n.parse::<u32>().unwrap()).sum();
        // The agent types its answer one digit per action and never submits: the checker will.
        for digit in (sum + off_by).to_string().chars() {
            env.step(digit.to_string().as_str())?;
        }
        let before = env.state_hash()?;
        let score = checker.reward(&mut env, b"", b"")?; // runs on a fork of `env`
        println!("{agent:>6}: {question}{:<5} reward {:.3}  {}", (sum + off_by), score.score, score.message);
        assert_eq!(env.state_hash()?, before, "the real episode is untouched");
        assert!(env.is_running(), "the checker submitted on its fork, not here");
    }
    Ok(())
}
