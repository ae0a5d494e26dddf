//! A test-only simulated user (text in, text out) that misbehaves when the agent's message asks
//! it to, so the tests can show that a user part that traps or exceeds a limit ends a composite
//! episode with a typed error: `trap` panics, `loop` never returns (out of fuel), `grow` takes
//! memory without bound (memory limit). `bye` ends the conversation; anything else is echoed.

use wasmgym_sdk::*;

/// Counts the agent's messages.
pub struct GrumpyUser {
    heard: u32,
    last: String,
}

impl Environment for GrumpyUser {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "grumpy_user".into(),
            version: 1,
            players: 1,
            observation_space: Space::Text { max_length: 1024, charset: None },
            action_space: Space::Text { max_length: 1024, charset: None },
            reward_range: (0.0, 0.0),
            max_episode_steps: Some(100),
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok(GrumpyUser { heard: 0, last: format!("hello, I am user {}", rng.below(1000)) })
    }

    fn observation(&self) -> Observation {
        Observation::Text(self.last.clone())
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        self.heard += 1;
        match action.text().trim() {
            "trap" => panic!("the user was asked to trap"),
            "loop" => loop {
                self.heard = std::hint::black_box(self.heard.wrapping_add(1));
            },
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "bye" => {
                self.last = "bye ###STOP###".into();
                Ok(Transition::reward(0.0).terminal())
            }
            text => {
                self.last = format!("you said {text:?} ({} messages)", self.heard);
                Ok(Transition::reward(0.0))
            }
        }
    }
}

export_env!(GrumpyUser);
