//! A test-only environment that panics at its fourth step, so the conformance suite can show that
//! it reports the guest's own message (`boom at step 4`) rather than a wasm backtrace, and charges
//! the failure to the check that was running.

use wasmgym_sdk::*;

/// Counts steps.
pub struct Panicky {
    steps: i64,
}

impl Environment for Panicky {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "panicky".into(),
            version: 1,
            players: 1,
            observation_space: Space::Discrete { n: 100 },
            action_space: Space::Discrete { n: 2 },
            reward_range: (0.0, 1.0),
            max_episode_steps: Some(50),
            determinism: Determinism::Stochastic,
            tools: vec![],
        }
    }

    fn reset(_rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok(Panicky { steps: 0 })
    }

    fn observation(&self) -> Observation {
        Observation::Discrete(self.steps)
    }

    fn step(&mut self, _action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        self.steps += 1;
        if self.steps == 4 {
            panic!("boom at step 4");
        }
        Ok(Transition::reward(0.0))
    }
}

export_env!(Panicky);
