//! An example environment for reward checkers: the agent is asked an addition and types its
//! answer piece by piece with text actions; `=` submits it. The environment itself pays no reward:
//! a reward checker (`programs/answer_checker`) scores the answer from a fork of the final state.

use wasmgym_sdk::*;

/// The question and the answer built so far.
pub struct Answer {
    a: u32,
    b: u32,
    answer: String,
    submitted: bool,
}

impl Environment for Answer {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "answer".into(),
            version: 1,
            players: 1,
            observation_space: Space::Text { max_length: 64, charset: None },
            action_space: Space::Text { max_length: 8, charset: Some("0123456789-=".into()) },
            reward_range: (0.0, 0.0),
            max_episode_steps: Some(16),
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok(Answer { a: rng.below(1000) as u32, b: rng.below(1000) as u32, answer: String::new(), submitted: false })
    }

    fn observation(&self) -> Observation {
        Observation::Text(format!("{} + {} = {}", self.a, self.b, self.answer))
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        for c in action.text().chars() {
            if c == '=' {
                self.submitted = true;
                break;
            }
            self.answer.push(c);
        }
        Ok(Transition::reward(0.0).terminated_if(self.submitted))
    }

    /// `question=A+B;answer=TEXT;submitted=BOOL`: what a reward checker reads from the fork.
    fn render(&self) -> String {
        format!("question={}+{};answer={};submitted={}", self.a, self.b, self.answer, self.submitted)
    }
}

export_env!(Answer);
