//! A test-only environment whose actions misbehave on purpose, one way each, so the integration
//! tests can check that every limit and every sandbox rule holds against a real Rust guest.

use std::collections::HashMap;
use std::hint::black_box;

use wasmgym_sdk::*;

/// What each action does.
pub mod actions {
    /// Behaves: reward 1.
    pub const OK: i64 = 0;
    /// Loops forever.
    pub const INFINITE_LOOP: i64 = 1;
    /// Allocates memory until something stops it.
    pub const MEMORY_BOMB: i64 = 2;
    /// Recurses without end.
    pub const RECURSE: i64 = 3;
    /// Prints without end.
    pub const FLOOD_STDOUT: i64 = 4;
    /// Panics.
    pub const PANIC: i64 = 5;
    /// Calls `std::process::exit(3)`.
    pub const EXIT: i64 = 6;
    /// Probes the sandbox (files, environment, arguments, clock) and reports in `info`.
    pub const PROBE: i64 = 7;
    /// Writes one line to stdout and one to stderr.
    pub const HELLO: i64 = 8;
    /// Sleeps for an hour.
    pub const SLEEP: i64 = 9;
    /// Fills a `HashMap` (seeded from the host RNG) and reports its iteration order in `info`.
    pub const HASH_ORDER: i64 = 10;
    /// Grows its heap by 8 MiB and keeps it (memory grows between snapshots).
    pub const GROW: i64 = 11;
}

/// The chaos environment: counts steps and keeps what `GROW` allocated.
pub struct Chaos {
    steps: i32,
    ballast: Vec<Vec<u8>>,
    info: serde_json::Value,
}

#[allow(unconditional_recursion)] // the point: recursion without end
fn recurse(depth: u64) -> u64 {
    let buf = black_box([depth; 16]);
    recurse(depth + 1) + buf[3]
}

impl Environment for Chaos {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "chaos".into(),
            version: 1,
            players: 1,
            observation_space: Space::uniform_box(Dtype::I32, &[1], 0.0, 1e6),
            action_space: Space::Discrete { n: 12 },
            reward_range: (0.0, 1.0),
            max_episode_steps: Some(1000),
            determinism: Determinism::Stochastic,
            tools: vec![],
        }
    }

    fn reset(_rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok(Chaos { steps: 0, ballast: Vec::new(), info: Options::Null })
    }

    fn observation(&self) -> Observation {
        Observation::I32(vec![self.steps])
    }

    fn step(&mut self, action: &Action, rng: &mut Rng) -> Result<Transition, EnvError> {
        self.steps += 1;
        self.info = Options::Null;
        match action.discrete() {
            actions::INFINITE_LOOP => {
                let mut x = 0u64;
                loop {
                    x = black_box(x.wrapping_add(1));
                }
            }
            actions::MEMORY_BOMB => {
                let mut hoard = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            actions::RECURSE => {
                black_box(recurse(0));
            }
            actions::FLOOD_STDOUT => loop {
                println!("{}", "flood ".repeat(100));
            },
            actions::PANIC => panic!("chaos asked to panic"),
            actions::EXIT => std::process::exit(3),
            actions::PROBE => {
                let file = std::fs::read("/etc/passwd").map(|b| b.len()).map_err(|e| e.to_string());
                let parent = std::fs::read_dir("..").map(|_| ()).map_err(|e| e.to_string());
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                self.info = serde_json::json!({
                    "file_error": file.err(),
                    "parent_dir_error": parent.err(),
                    "env_vars": std::env::vars().count(),
                    "args": std::env::args().count(),
                    "clock_ns": now,
                });
            }
            actions::HELLO => {
                println!("hello from chaos");
                eprintln!("warning from chaos");
            }
            actions::SLEEP => std::thread::sleep(std::time::Duration::from_secs(3600)),
            actions::HASH_ORDER => {
                let map: HashMap<u32, u32> = (0..32).map(|i| (i, i)).collect();
                let order: Vec<u32> = map.keys().copied().collect();
                self.info = serde_json::json!({ "order": order, "draw": rng.next_u64() });
            }
            actions::GROW => self.ballast.push(vec![self.steps as u8; 8 << 20]),
            _ => {}
        }
        Ok(Transition::reward(1.0))
    }

    fn info(&self) -> Options {
        self.info.clone()
    }
}

export_env!(Chaos);
