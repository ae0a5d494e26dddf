//! Fixtures shared by wasmgym's benchmarks (`benches/lifecycle.rs`) and their sanity tests.
//!
//! Every benchmark compares the sandbox with a baseline doing the same work: the native baseline is
//! [`wasmgym_sdk::Runner`], which runs the very same environment code (the `connect_four` and
//! `cart_pole` crates, linked here as ordinary Rust libraries) with the same bookkeeping and the same
//! byte encoding as the guest. The action sequences are generated once, natively, from fixed seeds,
//! so both sides play exactly the same legal moves and reach exactly the same states.

#![deny(missing_docs)]

use std::hint::black_box;
use std::sync::OnceLock;

pub mod raw;

pub use cart_pole::CartPole;
pub use connect_four::ConnectFour;
use wasmgym::{Env, EnvModule, Runtime};
use wasmgym_sdk::{Action, Environment, Runner};

/// Recorded episodes per environment in the step benchmarks (and in the tests that check them).
pub const EPISODES: usize = 32;

/// Number of moves into a connect_four game at which the snapshot, restore and fork benchmarks
/// branch.
pub const OPENING_MOVES: usize = 10;

/// The runtime and the built-in modules the benchmarks use, compiled once per process.
pub struct Modules {
    /// The runtime (one per process, as in production).
    pub runtime: Runtime,
    /// `connect_four`, compiled.
    pub connect_four: EnvModule,
    /// `cart_pole`, compiled.
    pub cart_pole: EnvModule,
}

/// The shared [`Modules`], compiled on first use.
pub fn modules() -> &'static Modules {
    static MODULES: OnceLock<Modules> = OnceLock::new();
    MODULES.get_or_init(|| {
        let runtime = Runtime::new().expect("creating the runtime");
        let load = |name| runtime.load(wasm(name)).unwrap_or_else(|e| panic!("loading {name}: {e}"));
        Modules { connect_four: load("connect_four"), cart_pole: load("cart_pole"), runtime: runtime.clone() }
    })
}

/// The bytes of the built-in module `name`, as `wasmgym_builtin` embeds them.
pub fn wasm(name: &str) -> &'static [u8] {
    wasmgym_builtin::find(name).unwrap_or_else(|| panic!("{name} is not a built-in environment")).bytes
}

/// One recorded episode: the seed it was reset with and the legal actions played until it ended
/// (terminated or truncated) on the last one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Episode {
    /// The `reset` seed.
    pub seed: u64,
    /// The actions, each legal where it is played; the last one ends the episode.
    pub actions: Vec<i64>,
}

/// SplitMix64: the move chooser of the recorded episodes (independent of the environments' RNG).
struct Chooser(u64);

impl Chooser {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// `count` connect_four games of uniformly random legal moves, seeds `0..count`.
pub fn connect_four_episodes(count: usize) -> Vec<Episode> {
    let mut chooser = Chooser(0xc4);
    (0..count as u64)
        .map(|seed| {
            let mut runner = Runner::<ConnectFour>::new();
            runner.reset(Some(seed), "").expect("connect_four resets");
            let mut actions = Vec::new();
            loop {
                let action = chooser.pick(&runner.legal_actions());
                actions.push(action);
                let t = runner.step(&Action::Discrete(action)).expect("a legal move is accepted");
                if t.terminated || t.truncated {
                    break Episode { seed, actions };
                }
            }
        })
        .collect()
}

/// `count` cart_pole episodes, seeds `0..count`, under a noisy balancing policy (push towards the
/// pole's lean, a random push one time in four), so episodes last tens to hundreds of steps and
/// some reach the 500-step truncation.
pub fn cart_pole_episodes(count: usize) -> Vec<Episode> {
    let mut chooser = Chooser(0xca);
    (0..count as u64)
        .map(|seed| {
            let mut runner = Runner::<CartPole>::new();
            runner.reset(Some(seed), "").expect("cart_pole resets");
            let mut actions = Vec::new();
            loop {
                let [_, _, theta, theta_dot] = runner.env().expect("an episode is running").state;
                let action = if chooser.next().is_multiple_of(4) {
                    chooser.pick(&[0, 1])
                } else {
                    i64::from(theta + 0.5 * theta_dot > 0.0)
                };
                actions.push(action);
                let t = runner.step(&Action::Discrete(action)).expect("cart_pole accepts 0 and 1");
                if t.terminated || t.truncated {
                    break Episode { seed, actions };
                }
            }
        })
        .collect()
}

/// The branch point of the snapshot, restore and fork benchmarks: the seed and first
/// [`OPENING_MOVES`] moves of the first recorded connect_four game long enough not to end there.
pub fn opening() -> Episode {
    let game = connect_four_episodes(64)
        .into_iter()
        .find(|e| e.actions.len() > OPENING_MOVES + 4)
        .expect("some random game lasts beyond the opening");
    Episode { seed: game.seed, actions: game.actions[..OPENING_MOVES].to_vec() }
}

/// Something that plays recorded episodes: the sandboxed [`Env`] or the native [`Runner`], driven
/// through the same two calls so that the step benchmark treats both identically.
pub trait Player {
    /// Starts an episode with `seed`.
    fn reset(&mut self, seed: u64);
    /// Plays `action` (which must be legal); returns whether the episode ended.
    fn step(&mut self, action: i64) -> bool;
}

impl Player for Env {
    fn reset(&mut self, seed: u64) {
        black_box(Env::reset(self, Some(seed), None).expect("reset"));
    }

    fn step(&mut self, action: i64) -> bool {
        let t = Env::step(self, action).expect("a recorded action is legal");
        black_box(&t);
        t.done()
    }
}

impl<E: Environment> Player for Runner<E> {
    fn reset(&mut self, seed: u64) {
        black_box(Runner::reset(self, Some(seed), "").expect("reset"));
    }

    fn step(&mut self, action: i64) -> bool {
        let t = Runner::step(self, &Action::Discrete(action)).expect("a recorded action is legal");
        black_box(&t);
        t.terminated || t.truncated
    }
}

/// Resets `player` with the episode's seed and plays all its actions: how a system without
/// snapshots gets back to a state.
pub fn replay(player: &mut impl Player, episode: &Episode) {
    player.reset(episode.seed);
    for &action in &episode.actions {
        player.step(action);
    }
}

/// A position in a list of recorded episodes, played round and round: the step benchmark's cursor.
pub struct Tape {
    episodes: Vec<Episode>,
    episode: usize,
    next: usize,
}

impl Tape {
    /// A tape at the start of the first episode (the player must be reset with [`Tape::seed`]).
    pub fn new(episodes: Vec<Episode>) -> Tape {
        assert!(episodes.iter().all(|e| !e.actions.is_empty()));
        Tape { episodes, episode: 0, next: 0 }
    }

    /// The seed of the current episode.
    pub fn seed(&self) -> u64 {
        self.episodes[self.episode].seed
    }

    /// The actions left in the current episode.
    pub fn remaining(&self) -> &[i64] {
        &self.episodes[self.episode].actions[self.next..]
    }

    /// Records that `n` of the remaining actions were played; returns whether that ended the
    /// episode, in which case the tape moves to the next one (and the player must be reset).
    pub fn advance(&mut self, n: usize) -> bool {
        self.next += n;
        let ended = self.next == self.episodes[self.episode].actions.len();
        if ended {
            self.episode = (self.episode + 1) % self.episodes.len();
            self.next = 0;
        }
        ended
    }

    /// Mean episode length in steps.
    pub fn mean_length(&self) -> f64 {
        self.episodes.iter().map(|e| e.actions.len()).sum::<usize>() as f64 / self.episodes.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgym_sdk::Observation;

    /// The sandbox and the native runner go through identical transitions on the recorded
    /// episodes, and each episode ends exactly on its last action: the baselines do the same work.
    fn same_trajectories<E: Environment>(module: &EnvModule, episodes: &[Episode]) {
        let mut env = module.instantiate().unwrap();
        let mut runner = Runner::<E>::new();
        let space = &module.spec().observation_space;
        for episode in episodes {
            let (a, b) = (env.reset(Some(episode.seed), None).unwrap(), runner.reset(Some(episode.seed), "").unwrap());
            assert_eq!(a.observation, Observation::decode(space, &b.observation).unwrap());
            for (i, &action) in episode.actions.iter().enumerate() {
                let a = env.step(action).unwrap();
                let b = runner.step(&Action::Discrete(action)).unwrap();
                assert_eq!(a.observation, Observation::decode(space, &b.observation).unwrap());
                assert_eq!((&a.rewards, a.terminated, a.truncated), (&b.rewards, b.terminated, b.truncated));
                assert_eq!(
                    a.done(),
                    i + 1 == episode.actions.len(),
                    "episode {} ends on its last action",
                    episode.seed
                );
            }
        }
    }

    #[test]
    fn connect_four_sandbox_matches_native() {
        same_trajectories::<ConnectFour>(&modules().connect_four, &connect_four_episodes(EPISODES));
    }

    #[test]
    fn cart_pole_sandbox_matches_native() {
        same_trajectories::<CartPole>(&modules().cart_pole, &cart_pole_episodes(EPISODES));
    }

    #[test]
    fn recorded_episodes_are_reproducible() {
        assert_eq!(connect_four_episodes(8), connect_four_episodes(8));
        assert_eq!(cart_pole_episodes(8), cart_pole_episodes(8));
    }

    /// The bare guests accept every recorded call (`RawGuest` asserts each status) and end each
    /// episode exactly on its last action.
    #[test]
    fn raw_guests_play_the_recorded_episodes() {
        for metering in [raw::Metering::NONE, raw::Metering::RUNTIME] {
            for (name, episodes) in [("connect_four", connect_four_episodes(8)), ("cart_pole", cart_pole_episodes(8))] {
                let mut guest = raw::RawModule::new(wasm(name), metering).instantiate();
                for episode in &episodes {
                    guest.reset(episode.seed);
                    for (i, &action) in episode.actions.iter().enumerate() {
                        assert_eq!(
                            guest.step(action),
                            i + 1 == episode.actions.len(),
                            "{name} episode {}",
                            episode.seed
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn opening_is_mid_game() {
        let opening = opening();
        let mut env = modules().connect_four.instantiate().unwrap();
        replay(&mut env, &opening);
        assert!(env.is_running());
        assert_eq!(env.steps(), OPENING_MOVES as u64);
    }
}
