//! AlphaZero-style self-play: MCTS picks every move of every game and each move becomes a
//! training record.

use serde::Serialize;
use wasmgym::EnvModule;
use wasmgym_abi::{Action, Observation, Space};

use crate::{MctsOptions, SearchError, mcts, mix};

/// How [`selfplay`] plays.
#[derive(Clone, Debug)]
pub struct SelfPlayOptions {
    /// Games to play.
    pub games: usize,
    /// The search for every move (its seed is replaced by one derived from
    /// [`SelfPlayOptions::seed`], the game and the move).
    pub mcts: MctsOptions,
    /// Seed of everything: game `g` is reset with a seed derived from it and `g`.
    pub seed: u64,
    /// Moves of each game played at temperature 1 (drawn in proportion to visits), for variety;
    /// after them, the most visited action.
    pub temperature_moves: usize,
    /// Moves after which a game is cut short.
    pub max_moves: usize,
}

impl Default for SelfPlayOptions {
    fn default() -> Self {
        SelfPlayOptions { games: 10, mcts: MctsOptions::default(), seed: 0, temperature_moves: 0, max_moves: 10_000 }
    }
}

/// One move of a self-play game.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    /// The game's index.
    pub game: usize,
    /// The move's index in its game.
    pub move_index: usize,
    /// The seed the game was reset with (replaying from `reset(seed)` with the recorded actions
    /// reproduces the game).
    pub seed: u64,
    /// The observation before the move.
    pub observation: Observation,
    /// Which actions of the action space were legal.
    pub legal_mask: Vec<bool>,
    /// MCTS visit distribution over the whole action space (0 for illegal actions; sums to 1).
    pub policy: Vec<f64>,
    /// The action played.
    pub action: i64,
    /// Who played it.
    pub player: u32,
    /// That player's return from this move to the end of the game (for games rewarded only at
    /// the end: the final outcome for that player).
    pub outcome: f64,
}

/// Plays `options.games` games of `module` against itself, handing each finished game's records
/// to `on_game` (in game order). Discrete action spaces only.
pub fn selfplay(
    module: &EnvModule,
    options: &SelfPlayOptions,
    mut on_game: impl FnMut(Vec<Record>) -> Result<(), SearchError>,
) -> Result<(), SearchError> {
    let Space::Discrete { n } = module.spec().action_space else {
        return Err(SearchError::NoDecision(
            "self-play records a policy over a Discrete action space; this environment's actions are not discrete"
                .into(),
        ));
    };
    let n = usize::try_from(n).unwrap_or(usize::MAX).min(1 << 20);
    let players = module.spec().players.max(1) as usize;
    for game in 0..options.games {
        let seed = mix(options.seed, game as u64);
        let mut env = module.instantiate()?;
        let mut observation = env.reset(Some(seed), None)?.observation;
        let mut records: Vec<Record> = Vec::new();
        let mut rewards: Vec<Vec<f64>> = Vec::new(); // per move, each player's reward
        while let Some(player) = env.current_player() {
            if records.len() >= options.max_moves {
                break;
            }
            let move_index = records.len();
            let search = MctsOptions {
                seed: mix(seed, move_index as u64 + 1),
                temperature: if move_index < options.temperature_moves { 1.0 } else { 0.0 },
                ..options.mcts.clone()
            };
            let result = mcts(&mut env, &search)?;
            let mut legal_mask = vec![false; n];
            let mut policy = vec![0.0; n];
            for (child, p) in result.children.iter().zip(result.policy()) {
                if let Action::Discrete(a) = child.action
                    && let Some(i) = usize::try_from(a).ok().filter(|&i| i < n)
                {
                    legal_mask[i] = true;
                    policy[i] = p;
                }
            }
            let Action::Discrete(action) = result.action else { unreachable!("discrete action space") };
            let t = env.step(action)?;
            rewards.push((0..players).map(|p| t.reward(p as u32)).collect());
            records.push(Record {
                game,
                move_index,
                seed,
                observation,
                legal_mask,
                policy,
                action,
                player,
                outcome: 0.0,
            });
            observation = t.observation;
        }
        // Each record's outcome: its player's return from that move on.
        let mut tail = vec![0.0; players];
        for (record, r) in records.iter_mut().zip(&rewards).rev() {
            tail.iter_mut().zip(r).for_each(|(t, r)| *t += r);
            record.outcome = tail[record.player as usize];
        }
        on_game(records)?;
    }
    Ok(())
}
