//! A test-only agent given as a module: the environment ABI turned around, as `wasmgym eval
//! --agent` drives it. Its action is what the agent was shown (`from: text` lines); its
//! observation is the agent's next action. It answers the `answer` environment's question
//! (`env: 123 + 456 = `) with the sum and `=`; anything else gets "I do not know".

use wasmgym_sdk::*;

/// The agent's next action.
pub struct AdderAgent {
    next: String,
}

impl Environment for AdderAgent {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "adder_agent".into(),
            version: 1,
            players: 1,
            observation_space: Space::Text { max_length: 64, charset: None },
            action_space: Space::Text { max_length: 1 << 20, charset: None },
            reward_range: (0.0, 0.0),
            max_episode_steps: None,
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    /// Options (the tools, `{"tools": [...]}`) are accepted and not needed.
    fn reset(_rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok(AdderAgent { next: String::new() })
    }

    fn observation(&self) -> Observation {
        Observation::Text(self.next.clone())
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        let question = action.text().lines().rev().find_map(|l| l.strip_prefix("env: ")).unwrap_or_default();
        let numbers: Option<Vec<u32>> =
            question.trim().trim_end_matches('=').split('+').map(|n| n.trim().parse().ok()).collect();
        self.next = match numbers {
            Some(n) if n.len() == 2 => format!("{}=", n[0] + n[1]),
            _ => "I do not know".into(),
        };
        Ok(Transition::reward(0.0))
    }
}

export_env!(AdderAgent);
