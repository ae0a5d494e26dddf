//! The conformance suite every environment must pass, like Gymnasium's `check_env` and OpenSpiel's
//! `basic_tests`: seeded determinism, spaces, legal actions, random rollouts, and exact
//! snapshot/restore/fork/serialise against replay from reset.
//!
//! ```no_run
//! # fn main() -> wasmgym::Result<()> {
//! let module = wasmgym::Runtime::new()?.load_file("tic_tac_toe.wasm")?;
//! let report = wasmgym::check::run(&module, &wasmgym::check::CheckOptions::default());
//! assert!(report.passed, "{report:#?}");
//! # Ok(()) }
//! ```

use serde::Serialize;
use wasmgym_abi::rng::Rng;
use wasmgym_abi::{Action, Space};

use crate::{Env, EnvModule, Error, Result, Snapshot, Transition};

/// How much the suite does.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Random episodes to play; each one exercises every check.
    pub episodes: u32,
    /// Seed of the suite's own choices (actions, branch points) and of the first episode.
    pub seed: u64,
    /// An episode still running after this many steps fails the rollout check.
    pub max_steps: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { episodes: 20, seed: 0, max_steps: 10_000 }
    }
}

/// The outcome of one named check.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    /// What was checked.
    pub name: &'static str,
    /// Whether it held in every episode.
    pub passed: bool,
    /// The first failure, or what was covered.
    pub detail: String,
}

/// The outcome of the whole suite.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// The environment's name.
    pub env: String,
    /// Whether every check passed.
    pub passed: bool,
    /// Each check.
    pub checks: Vec<CheckResult>,
    /// Episodes played.
    pub episodes: u32,
    /// Steps taken across the episodes (not counting replays).
    pub steps: u64,
}

/// Names of the checks, in the order they are reported.
pub const CHECKS: [&str; 10] = [
    "seeded_reset_is_deterministic",
    "observations_lie_in_their_space",
    "legal_actions_nonempty_until_the_end",
    "random_rollouts_end",
    "replay_from_reset_is_identical",
    "restore_matches_replay",
    "fork_matches_replay",
    "forks_are_independent",
    "snapshot_bytes_round_trip",
    "illegal_action_rejected_state_unchanged",
];

/// Runs the suite on `module`. It never panics: every failure, including runtime errors, is a
/// failed check in the report.
pub fn run(module: &EnvModule, options: &CheckOptions) -> CheckReport {
    run_with_progress(module, options, |_| {})
}

/// [`run`], calling `progress(episodes_done)` after each episode.
pub fn run_with_progress(module: &EnvModule, options: &CheckOptions, mut progress: impl FnMut(u32)) -> CheckReport {
    let mut failures: Vec<Option<String>> = vec![None; CHECKS.len()];
    let mut rng = Rng::seed_from_u64(options.seed);
    let mut steps = 0;
    for episode in 0..options.episodes {
        let seed = options.seed.wrapping_add(episode as u64);
        let mut suite = Episode { module, options, rng: &mut rng, failures: &mut failures, seed };
        if let Err(e) = suite.play(&mut steps) {
            let slot = failures.iter_mut().find(|f| f.is_none());
            if let Some(slot) = slot {
                *slot = Some(format!("episode {episode} (seed {seed}) stopped with an error: {e}"));
            }
        }
        progress(episode + 1);
    }
    let checks: Vec<CheckResult> = CHECKS
        .iter()
        .zip(failures)
        .map(|(name, failure)| CheckResult {
            name,
            passed: failure.is_none(),
            detail: failure.unwrap_or_else(|| format!("held in {} episodes", options.episodes)),
        })
        .collect();
    CheckReport {
        env: module.spec().name.clone(),
        passed: checks.iter().all(|c| c.passed),
        checks,
        episodes: options.episodes,
        steps,
    }
}

/// The exact bytes of a transition: observation, rewards, flags, info and player, so trajectories
/// compare bit for bit (NaN included).
pub fn fingerprint(t: &Transition) -> Vec<u8> {
    let mut out = Vec::new();
    t.observation.encode(&mut out);
    for r in &t.rewards {
        out.extend_from_slice(&r.to_bits().to_le_bytes());
    }
    out.push(t.terminated as u8);
    out.push(t.truncated as u8);
    out.extend_from_slice(&t.current_player.map_or(-1, |p| p as i64).to_le_bytes());
    out.extend_from_slice(t.info.as_bytes());
    out
}

/// The commands a text environment lists as valid now ([`Env::text_actions`]); empty for other
/// action spaces and for modules that list none.
pub fn text_choices(env: &mut Env) -> Result<Vec<String>> {
    match env.spec().action_space {
        Space::Text { .. } => Ok(env.text_actions()?.unwrap_or_default()),
        _ => Ok(Vec::new()),
    }
}

/// A random legal action: uniform over the legal set for discrete spaces; for text spaces,
/// uniform over `texts` (the commands the environment lists, [`text_choices`]) or, when it lists
/// none, a random short string from the charset.
pub fn random_action(space: &Space, legal: &[i64], texts: &[String], rng: &mut Rng) -> Option<Action> {
    match space {
        Space::Discrete { .. } => {
            (!legal.is_empty()).then(|| Action::Discrete(legal[rng.next_u64() as usize % legal.len()]))
        }
        Space::Text { .. } if !texts.is_empty() => {
            Some(Action::Text(texts[rng.next_u64() as usize % texts.len()].clone()))
        }
        Space::Text { max_length, charset } => {
            let chars: Vec<char> = charset.as_deref().unwrap_or("abcdefghijklmnopqrstuvwxyz ").chars().collect();
            let len = 1 + rng.next_u64() as usize % (*max_length as usize).clamp(1, 16);
            Some(Action::Text((0..len).map(|_| chars[rng.next_u64() as usize % chars.len()]).collect()))
        }
        _ => None,
    }
}

/// One recorded episode: the actions taken and the fingerprint of every transition.
struct Trace {
    actions: Vec<Action>,
    prints: Vec<Vec<u8>>,
}

struct Episode<'a> {
    module: &'a EnvModule,
    options: &'a CheckOptions,
    rng: &'a mut Rng,
    failures: &'a mut Vec<Option<String>>,
    seed: u64,
}

impl Episode<'_> {
    fn fail(&mut self, check: &str, detail: impl FnOnce() -> String) {
        let i = CHECKS.iter().position(|c| *c == check).expect("a known check");
        if self.failures[i].is_none() {
            self.failures[i] = Some(format!("seed {}: {}", self.seed, detail()));
        }
    }

    fn expect(&mut self, check: &str, ok: bool, detail: impl FnOnce() -> String) {
        if !ok {
            self.fail(check, detail);
        }
    }

    fn play(&mut self, steps: &mut u64) -> Result<()> {
        let spec = self.module.spec().clone();
        let mut env = self.module.instantiate()?;
        let first = env.reset(Some(self.seed), None)?;
        let again = self.module.instantiate()?.reset(Some(self.seed), None)?;
        self.expect("seeded_reset_is_deterministic", fingerprint(&first) == fingerprint(&again), || {
            "two resets with the same seed gave different observations".into()
        });
        self.check_transition(&env, &first, &spec.observation_space)?;

        let mut trace = Trace { actions: Vec::new(), prints: vec![fingerprint(&first)] };
        // Branch points: a snapshot, a fork that follows the original, and a fork that diverges.
        let branch_at = self.rng.next_u64() % 8;
        let mut branch: Option<(usize, Snapshot, Env)> = None;
        let mut done = false;
        while !done {
            if trace.actions.len() as u64 == branch_at {
                let snapshot = env.snapshot()?;
                let follower = env.fork()?;
                self.diverge(&mut env.fork()?)?;
                branch = Some((trace.actions.len(), snapshot, follower));
            }
            if trace.actions.len() as u64 >= self.options.max_steps {
                self.fail("random_rollouts_end", || format!("still running after {} steps", self.options.max_steps));
                break;
            }
            let legal = env.legal_actions()?;
            if matches!(spec.action_space, Space::Discrete { .. }) {
                self.expect("legal_actions_nonempty_until_the_end", !legal.is_empty(), || {
                    format!("no legal actions at step {} of a running episode", trace.actions.len())
                });
            }
            if trace.actions.len().is_multiple_of(4) {
                self.check_illegal(&mut env, &legal, &spec.action_space)?;
            }
            let texts = text_choices(&mut env)?;
            let Some(action) = random_action(&spec.action_space, &legal, &texts, self.rng) else { break };
            let t = env.step(action.clone())?;
            *steps += 1;
            self.check_transition(&env, &t, &spec.observation_space)?;
            done = t.done();
            trace.actions.push(action);
            trace.prints.push(fingerprint(&t));
        }
        let after = env.legal_actions()?;
        self.expect("legal_actions_nonempty_until_the_end", after.is_empty(), || {
            format!("{} legal actions after the episode ended", after.len())
        });
        self.expect(
            "random_rollouts_end",
            env.step(trace.actions[0].clone()).is_err_and(|e| matches!(e, Error::InvalidCall { .. })),
            || "a step after the episode ended was not refused".into(),
        );

        // Replay from reset is the reference for every branch.
        let mut replay = self.module.instantiate()?;
        let replayed = self.replay(&mut replay, None, &trace.actions)?;
        self.expect("replay_from_reset_is_identical", replayed == trace.prints, || {
            format!("replay diverged at step {}", first_difference(&replayed, &trace.prints))
        });
        if let Some((at, snapshot, mut follower)) = branch {
            let expected = &trace.prints[at..];
            // Restore into the instance that played on (and into the replay instance, mid-episode).
            env.restore(&snapshot)?;
            let restored = self.replay(&mut env, Some(&trace.prints[at]), &trace.actions[at..])?;
            self.expect("restore_matches_replay", restored == expected, || {
                format!("restore at step {at} diverged {} steps later", first_difference(&restored, expected))
            });
            let forked = self.replay(&mut follower, Some(&trace.prints[at]), &trace.actions[at..])?;
            self.expect("fork_matches_replay", forked == expected, || {
                format!("fork at step {at} diverged {} steps later", first_difference(&forked, expected))
            });
            // The original kept the replayed trajectory although a sibling fork diverged.
            self.expect("forks_are_independent", replayed == trace.prints, || {
                format!("stepping a fork taken at step {at} changed the original")
            });
            let bytes = snapshot.to_bytes();
            let mut fresh = self.module.instantiate()?;
            fresh.restore(&Snapshot::from_bytes(&bytes)?)?;
            let decoded = self.replay(&mut fresh, Some(&trace.prints[at]), &trace.actions[at..])?;
            let reencoded = fresh.snapshot().map(|_| Snapshot::from_bytes(&bytes).map(|s| s.to_bytes()));
            self.expect(
                "snapshot_bytes_round_trip",
                decoded == expected && matches!(reencoded, Ok(Ok(ref b)) if *b == bytes),
                || format!("a snapshot restored from its {} bytes diverged from replay", bytes.len()),
            );
        }
        Ok(())
    }

    /// Steps a fork with its own random actions, then drops it.
    fn diverge(&mut self, fork: &mut Env) -> Result<()> {
        for _ in 0..3 {
            let legal = fork.legal_actions()?;
            let texts = text_choices(fork)?;
            let Some(action) = random_action(&fork.spec().action_space.clone(), &legal, &texts, self.rng) else {
                break;
            };
            if fork.step(action)?.done() {
                break;
            }
        }
        Ok(())
    }

    /// Applies `actions`; the result starts with `start` (the fingerprint at the branch point) or,
    /// without one, with a seeded reset.
    fn replay(&mut self, env: &mut Env, start: Option<&Vec<u8>>, actions: &[Action]) -> Result<Vec<Vec<u8>>> {
        let mut prints = vec![match start {
            Some(print) => print.clone(),
            None => fingerprint(&env.reset(Some(self.seed), None)?),
        }];
        for action in actions {
            prints.push(fingerprint(&env.step(action.clone())?));
        }
        Ok(prints)
    }

    fn check_transition(&mut self, env: &Env, t: &Transition, space: &Space) -> Result<()> {
        if let Err(why) = t.observation.check_in(space) {
            self.fail("observations_lie_in_their_space", || format!("at step {}: {why}", env.steps()));
        }
        if let Some(p) = t.current_player {
            let players = env.spec().players;
            self.expect("legal_actions_nonempty_until_the_end", p < players, || {
                format!("current player {p} is not one of {players} players")
            });
        }
        Ok(())
    }

    /// An illegal action must be refused and leave the state as it was.
    fn check_illegal(&mut self, env: &mut Env, legal: &[i64], space: &Space) -> Result<()> {
        let illegal = match space {
            Space::Discrete { n } => Action::Discrete((0..*n as i64).find(|a| !legal.contains(a)).unwrap_or(*n as i64)),
            Space::Text { max_length, .. } => Action::Text("x".repeat(*max_length as usize + 1)),
            _ => return Ok(()),
        };
        let texts = text_choices(env)?;
        let Some(probe) = random_action(space, legal, &texts, self.rng) else { return Ok(()) };
        let mut reference = env.fork()?;
        match env.step(illegal.clone()) {
            Err(Error::IllegalAction { .. }) => {}
            other => {
                let got = match other {
                    Ok(_) => "it was accepted".to_string(),
                    Err(e) => e.to_string(),
                };
                self.fail("illegal_action_rejected_state_unchanged", || format!("illegal action {illegal}: {got}"));
                return Ok(());
            }
        }
        // Same legal actions and the same next transition as an untouched fork.
        let (mut a, mut b) = (env.fork()?, reference.fork()?);
        let same = a.legal_actions()? == reference.legal_actions()?
            && fingerprint(&a.step(probe.clone())?) == fingerprint(&b.step(probe)?);
        self.expect("illegal_action_rejected_state_unchanged", same, || {
            format!("refusing illegal action {illegal} changed the state")
        });
        Ok(())
    }
}

fn first_difference(a: &[Vec<u8>], b: &[Vec<u8>]) -> usize {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()))
}
