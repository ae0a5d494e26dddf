//! A test-only environment with `Text` actions and observations, as language agents use them: the
//! observation is a word, the action must be that word reversed. Three words per episode.

use wasmgym_sdk::*;

const WORDS: [&str; 6] = ["snapshot", "fork", "wasm", "replay", "sandbox", "reward"];
const ROUNDS: u32 = 3;

/// The current word and how many rounds were played.
pub struct Reverse {
    word: &'static str,
    round: u32,
    score: u32,
}

impl Environment for Reverse {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "reverse".into(),
            version: 1,
            players: 1,
            observation_space: Space::Text { max_length: 16, charset: Some("abcdefghijklmnopqrstuvwxyz".into()) },
            action_space: Space::Text { max_length: 16, charset: Some("abcdefghijklmnopqrstuvwxyz".into()) },
            reward_range: (0.0, 1.0),
            max_episode_steps: None,
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok(Reverse { word: WORDS[rng.below(WORDS.len() as u64) as usize], round: 0, score: 0 })
    }

    fn observation(&self) -> Observation {
        Observation::Text(self.word.into())
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        let right = action.text().chars().eq(self.word.chars().rev());
        self.score += right as u32;
        self.round += 1;
        // Deterministic: the next word follows from the answer's length.
        self.word = WORDS[(self.round as usize + action.text().len()) % WORDS.len()];
        Ok(Transition::reward(if right { 1.0 } else { 0.0 }).terminated_if(self.round == ROUNDS))
    }

    fn render(&self) -> String {
        format!("round {} of {ROUNDS}, score {}: reverse {:?}", self.round + 1, self.score, self.word)
    }

    fn info(&self) -> Options {
        serde_json::json!({ "score": self.score })
    }
}

export_env!(Reverse);
