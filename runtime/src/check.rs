//! The conformance suite every environment must pass, like Gymnasium's `check_env` and OpenSpiel's
//! `basic_tests`: seeded determinism, resets that forget, spaces and reward ranges, legal actions,
//! players, random rollouts and `max_episode_steps`, randomness only where the spec allows it,
//! render, and exact snapshot/restore/fork/serialise against replay from reset ([`CHECKS`]).
//!
//! An error stops its episode and fails the check that was running, quoting the guest (a Rust
//! panic's message from its stderr) before the runtime's error; a check that never ran fails, one
//! the spec makes moot (no `max_episode_steps`, a stochastic spec) passes with 0 runs.
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
use wasmgym_abi::{Action, Determinism, Space, wire};

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
    /// Show the wasm backtrace of a guest that trapped (by default only its own message and the
    /// tail of its stderr, where a Rust panic's message is).
    pub backtrace: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { episodes: 20, seed: 0, max_steps: 10_000, backtrace: false }
    }
}

/// The outcome of one named check.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    /// What was checked.
    pub name: &'static str,
    /// Whether it held every time it ran. A check that never ran has not passed; one that does
    /// not apply to the environment (its spec promises nothing there) has, with 0 runs.
    pub passed: bool,
    /// How many times it was evaluated.
    pub runs: u64,
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
pub const CHECKS: [&str; 18] = [
    "seeded_reset_is_deterministic",
    "reset_forgets_the_last_episode",
    "observations_lie_in_their_space",
    "rewards_lie_in_their_range",
    "legal_actions_nonempty_until_the_end",
    "no_player_to_move_after_the_end",
    "random_rollouts_end",
    "max_episode_steps_is_enforced",
    "deterministic_steps_draw_no_randomness",
    "render_works",
    "replay_from_reset_is_identical",
    "restore_matches_replay",
    "fork_matches_replay",
    "forks_are_independent",
    "snapshot_bytes_round_trip",
    "illegal_action_rejected_state_unchanged",
    "step_actions_is_step_then_legal_actions",
    "playout_is_steps_then_a_rollout",
];

/// Runs the suite on `module`. It never panics: every failure, including runtime errors, is a
/// failed check in the report.
pub fn run(module: &EnvModule, options: &CheckOptions) -> CheckReport {
    run_with_progress(module, options, |_| {})
}

/// [`run`], calling `progress(episodes_done)` after each episode.
pub fn run_with_progress(module: &EnvModule, options: &CheckOptions, mut progress: impl FnMut(u32)) -> CheckReport {
    let mut tally = Tally { failures: vec![None; CHECKS.len()], runs: vec![0; CHECKS.len()] };
    let mut rng = Rng::seed_from_u64(options.seed);
    let mut steps = 0;
    let mut stopped = 0;
    for episode in 0..options.episodes {
        let seed = options.seed.wrapping_add(episode as u64);
        // Every other episode branches at its start, so the branch checks run however short
        // episodes are; the others at a random step of the first eight.
        let branch_at = if episode % 2 == 0 { 0 } else { rng.next_u64() % 8 };
        let mut suite =
            Episode { module, options, rng: &mut rng, tally: &mut tally, seed, check: CHECKS[0], branch_at };
        if let Err(stop) = suite.play(&mut steps) {
            // Charged to the check that was running, with the guest's own words first.
            let check = suite.check;
            suite.fail(check, || format!("episode {episode} stopped with an error: {}", stop.0));
            stopped += 1;
        }
        progress(episode + 1);
    }
    let spec = module.spec();
    let has_playout = module.instantiate().is_ok_and(|env| env.has_playout());
    let checks: Vec<CheckResult> = CHECKS
        .iter()
        .enumerate()
        .map(|(i, &name)| {
            let runs = tally.runs[i];
            let (passed, detail) = match (tally.failures[i].take(), not_applicable(name, spec, has_playout)) {
                (Some(failure), _) => (false, failure),
                (None, Some(why)) if runs == 0 => (true, format!("not applicable: {why}")),
                (None, _) if runs == 0 && stopped > 0 => (
                    false,
                    format!("not reached: {stopped} of {} episodes stopped with an error first", options.episodes),
                ),
                (None, _) if runs == 0 => {
                    (false, format!("never ran ({} episodes played): nothing was checked", options.episodes))
                }
                (None, _) => (true, format!("held {runs} times in {} episodes", options.episodes)),
            };
            CheckResult { name, passed, runs, detail }
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

/// Why a check has nothing to check in an environment, if so.
fn not_applicable(check: &str, spec: &wasmgym_abi::EnvSpec, has_playout: bool) -> Option<&'static str> {
    match check {
        "playout_is_steps_then_a_rollout" if !matches!(spec.action_space, Space::Discrete { .. }) => {
            Some("playouts take discrete actions")
        }
        "playout_is_steps_then_a_rollout" if !has_playout => Some("the module does not export wasmgym_playout"),
        "max_episode_steps_is_enforced" if spec.max_episode_steps.is_none() => {
            Some("the spec sets no max_episode_steps")
        }
        "deterministic_steps_draw_no_randomness" if spec.determinism != Determinism::Deterministic => {
            Some("the spec says steps are stochastic")
        }
        "step_actions_is_step_then_legal_actions" if !matches!(spec.action_space, Space::Discrete { .. }) => {
            Some("a text action space has no legal-action list")
        }
        _ => None,
    }
}

/// Failures and run counts, one per check.
struct Tally {
    failures: Vec<Option<String>>,
    runs: Vec<u64>,
}

/// Why an episode stopped: a call failed, described for the author.
struct Stop(String);

/// `error` of a call into `env`, with the guest's own last words (a Rust panic's message is on its
/// stderr) before the runtime's; the wasm backtrace only when asked for.
fn describe(env: &Env, error: &Error, backtrace: bool) -> String {
    let stderr = String::from_utf8_lossy(env.stderr());
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("note: ")).collect();
    let from = lines.iter().rposition(|l| l.contains("panicked at")).unwrap_or(lines.len().saturating_sub(2));
    let words = lines[from..].join(" ");
    let message = error.to_string();
    let summary = match message.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().as_slice() {
        _ if backtrace => message.clone(),
        [one] => one.to_string(),
        // A trap: what trapped, without the frames.
        [first, .., last] => match message.rsplit_once("wasm trap: ") {
            Some((_, cause)) => format!("{} ({})", error.kind(), cause.trim()),
            None => format!("{} ({})", first.trim_end_matches(':'), last.trim()),
        },
        [] => error.kind().to_owned(),
    };
    match words.is_empty() {
        true => summary,
        false => format!("the guest said \"{}\"; {summary}", words.chars().take(400).collect::<String>()),
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
    /// The legal actions listed before each action (and, when the loop stopped early, once more).
    legal: Vec<Vec<i64>>,
}

struct Episode<'a> {
    module: &'a EnvModule,
    options: &'a CheckOptions,
    rng: &'a mut Rng,
    tally: &'a mut Tally,
    seed: u64,
    /// The check the suite is working on: an error stops the episode and fails this one.
    check: &'static str,
    branch_at: u64,
}

/// Calls `f` on `env`; an error becomes a [`Stop`] that quotes the guest.
fn call<T>(env: &mut Env, backtrace: bool, f: impl FnOnce(&mut Env) -> Result<T>) -> Result<T, Stop> {
    let result = f(env);
    result.map_err(|e| Stop(describe(env, &e, backtrace)))
}

impl Episode<'_> {
    fn slot(check: &str) -> usize {
        CHECKS.iter().position(|c| *c == check).expect("a known check")
    }

    fn fail(&mut self, check: &str, detail: impl FnOnce() -> String) {
        let i = Self::slot(check);
        self.tally.runs[i] += 1;
        if self.tally.failures[i].is_none() {
            self.tally.failures[i] = Some(format!("seed {}: {}", self.seed, detail()));
        }
    }

    fn expect(&mut self, check: &str, ok: bool, detail: impl FnOnce() -> String) {
        match ok {
            true => self.tally.runs[Self::slot(check)] += 1,
            false => self.fail(check, detail),
        }
    }

    /// Calls `f` on `env` while working on `check`.
    fn on<T>(&mut self, check: &'static str, env: &mut Env, f: impl FnOnce(&mut Env) -> Result<T>) -> Result<T, Stop> {
        self.check = check;
        call(env, self.options.backtrace, f)
    }

    fn instantiate(&mut self, check: &'static str) -> Result<Env, Stop> {
        self.check = check;
        self.module.instantiate().map_err(|e| Stop(e.to_string()))
    }

    fn play(&mut self, steps: &mut u64) -> Result<(), Stop> {
        let spec = self.module.spec().clone();
        let seed = self.seed;
        let mut env = self.instantiate("seeded_reset_is_deterministic")?;
        let first = self.on("seeded_reset_is_deterministic", &mut env, |e| e.reset(Some(seed), None))?;
        let mut other = self.instantiate("seeded_reset_is_deterministic")?;
        let again = self.on("seeded_reset_is_deterministic", &mut other, |e| e.reset(Some(seed), None))?;
        self.expect("seeded_reset_is_deterministic", fingerprint(&first) == fingerprint(&again), || {
            "two resets with the same seed gave different observations".into()
        });
        self.check_transition(&mut env, &first, &spec)?;

        let mut trace = Trace { actions: Vec::new(), prints: vec![fingerprint(&first)], legal: Vec::new() };
        // Branch points: a snapshot, a fork that follows the original, and a fork that diverges.
        let mut branch: Option<(usize, Snapshot, Env)> = None;
        let mut done = false;
        while !done {
            if trace.actions.len() as u64 == self.branch_at {
                let snapshot = self.on("restore_matches_replay", &mut env, |e| e.snapshot())?;
                let follower = self.on("fork_matches_replay", &mut env, |e| e.fork())?;
                let mut sibling = self.on("forks_are_independent", &mut env, |e| e.fork())?;
                self.diverge(&mut sibling)?;
                branch = Some((trace.actions.len(), snapshot, follower));
            }
            if trace.actions.len() as u64 >= self.options.max_steps {
                self.fail("random_rollouts_end", || format!("still running after {} steps", self.options.max_steps));
                break;
            }
            let legal = self.on("legal_actions_nonempty_until_the_end", &mut env, |e| e.legal_actions())?;
            trace.legal.push(legal.clone());
            if matches!(spec.action_space, Space::Discrete { .. }) {
                self.expect("legal_actions_nonempty_until_the_end", !legal.is_empty(), || {
                    format!("no legal actions at step {} of a running episode", trace.actions.len())
                });
            }
            if trace.actions.len().is_multiple_of(4) {
                self.check_illegal(&mut env, &legal, &spec.action_space)?;
            }
            let texts = self.on("random_rollouts_end", &mut env, text_choices)?;
            let Some(action) = random_action(&spec.action_space, &legal, &texts, self.rng) else { break };
            if spec.determinism == Determinism::Deterministic && trace.actions.len().is_multiple_of(3) {
                self.check_no_randomness(&mut env, &action)?;
            }
            let stepped = action.clone();
            let t = self.on("random_rollouts_end", &mut env, |e| e.step(stepped))?;
            *steps += 1;
            self.check_transition(&mut env, &t, &spec)?;
            let n = spec.players as usize;
            self.expect("rewards_lie_in_their_range", t.rewards.len() == n, || {
                format!("step {} gave {} rewards for {n} players", trace.actions.len() + 1, t.rewards.len())
            });
            done = t.done();
            trace.actions.push(action);
            trace.prints.push(fingerprint(&t));
            if let Some(max) = spec.max_episode_steps
                && trace.actions.len() as u64 >= max
                && !done
            {
                self.fail("max_episode_steps_is_enforced", || {
                    format!("still running after max_episode_steps = {max} steps")
                });
                break; // the suite goes no further than the spec allows
            } else if let Some(max) = spec.max_episode_steps {
                self.expect("max_episode_steps_is_enforced", trace.actions.len() as u64 <= max, || {
                    format!("the episode went past max_episode_steps = {max}")
                });
            }
        }
        if done {
            let after = self.on("legal_actions_nonempty_until_the_end", &mut env, |e| e.legal_actions())?;
            self.expect("legal_actions_nonempty_until_the_end", after.is_empty(), || {
                format!("{} legal actions after the episode ended", after.len())
            });
            if let Some(last) = trace.actions.first().cloned() {
                let refused = env.step(last).is_err_and(|e| matches!(e, Error::InvalidCall { .. }));
                self.expect("random_rollouts_end", refused, || "a step after the episode ended was not refused".into());
            }
        }

        if matches!(spec.action_space, Space::Discrete { .. }) {
            self.check_step_actions(&trace, done)?;
            self.check_playout(&trace)?;
        }

        // Replay from reset is the reference for every branch.
        let mut replay = self.instantiate("replay_from_reset_is_identical")?;
        let replayed = self.replay("replay_from_reset_is_identical", &mut replay, None, &trace.actions)?;
        self.expect("replay_from_reset_is_identical", replayed == trace.prints, || {
            format!("replay diverged at step {}", first_difference(&replayed, &trace.prints))
        });
        // The instance that played, reset and replayed, plays the same: no state survives a reset.
        let reused = self.replay("reset_forgets_the_last_episode", &mut env, None, &trace.actions)?;
        self.expect("reset_forgets_the_last_episode", reused == trace.prints, || {
            let at = first_difference(&reused, &trace.prints);
            format!(
                "the same seed and actions on the instance that played before diverged at step {at} from a fresh \
                 instance: state kept outside the episode (a `static`?) survives reset"
            )
        });
        if let Some((at, snapshot, mut follower)) = branch {
            let expected = &trace.prints[at..];
            // Restore into the instance that played on (and into the replay instance, mid-episode).
            self.on("restore_matches_replay", &mut env, |e| e.restore(&snapshot))?;
            let restored =
                self.replay("restore_matches_replay", &mut env, Some(&trace.prints[at]), &trace.actions[at..])?;
            self.expect("restore_matches_replay", restored == expected, || {
                format!("restore at step {at} diverged {} steps later", first_difference(&restored, expected))
            });
            let forked =
                self.replay("fork_matches_replay", &mut follower, Some(&trace.prints[at]), &trace.actions[at..])?;
            self.expect("fork_matches_replay", forked == expected, || {
                format!("fork at step {at} diverged {} steps later", first_difference(&forked, expected))
            });
            // The original kept the replayed trajectory although a sibling fork diverged.
            self.expect("forks_are_independent", replayed == trace.prints, || {
                format!("stepping a fork taken at step {at} changed the original")
            });
            let bytes = snapshot.to_bytes();
            let mut fresh = self.instantiate("snapshot_bytes_round_trip")?;
            let decoded = Snapshot::from_bytes(&bytes).map_err(|e| Stop(e.to_string()))?;
            self.on("snapshot_bytes_round_trip", &mut fresh, |e| e.restore(&decoded))?;
            let decoded =
                self.replay("snapshot_bytes_round_trip", &mut fresh, Some(&trace.prints[at]), &trace.actions[at..])?;
            let reencoded = Snapshot::from_bytes(&bytes).map(|s| s.to_bytes());
            self.expect(
                "snapshot_bytes_round_trip",
                decoded == expected && matches!(reencoded, Ok(ref b) if *b == bytes),
                || format!("a snapshot restored from its {} bytes diverged from replay", bytes.len()),
            );
        }
        Ok(())
    }

    /// `step_and_legal_actions` (one call through `wasmgym_step_actions` where the module has it)
    /// on a fresh instance gives the episode's transitions and the legal actions that
    /// `legal_actions` listed after each step (none after the end).
    fn check_step_actions(&mut self, trace: &Trace, done: bool) -> Result<(), Stop> {
        let check = "step_actions_is_step_then_legal_actions";
        let seed = self.seed;
        let mut env = self.instantiate(check)?;
        self.on(check, &mut env, |e| e.reset(Some(seed), None))?;
        for (i, action) in trace.actions.iter().enumerate() {
            let action = action.clone();
            let (t, legal) = self.on(check, &mut env, |e| e.step_and_legal_actions(action))?;
            let last = i + 1 == trace.actions.len();
            let want = match trace.legal.get(i + 1) {
                Some(listed) => Some(listed.clone()),
                None if last && done => Some(Vec::new()),
                None => None, // the episode was cut off here: nothing was listed after this step
            };
            let same_step = fingerprint(&t) == trace.prints[i + 1];
            self.expect(check, same_step && want.as_ref().is_none_or(|want| *want == legal), || match same_step {
                false => format!("step {} through step_actions gave another transition than step", i + 1),
                true => format!(
                    "after step {}, step_actions listed {legal:?} but legal_actions {:?}",
                    i + 1,
                    want.unwrap_or_default()
                ),
            });
        }
        Ok(())
    }

    /// `wasmgym_playout` from a fresh instance (a prefix of the episode's actions, then a random
    /// rollout) reports what stepping that prefix and then playing the same rollout from the host
    /// gives: the player and last rewards after the prefix, the legal actions and state key
    /// there, the rollout's first action, steps, returns and ending.
    fn check_playout(&mut self, trace: &Trace) -> Result<(), Stop> {
        let check = "playout_is_steps_then_a_rollout";
        let (seed, rollout_seed) = (self.seed, self.rng.next_u64());
        let mut played = self.instantiate(check)?;
        if !played.has_playout() {
            return Ok(());
        }
        let discrete = |a: &Action| match a {
            Action::Discrete(a) => Some(*a),
            Action::Text(_) => None,
        };
        let cut = (self.rng.next_u64() % (trace.actions.len() as u64 + 1)) as usize;
        let prefix: Vec<i64> = trace.actions[..cut].iter().filter_map(discrete).collect();
        let max_steps = (self.rng.next_u64() % 12) as u32;
        let request = wire::PlayoutRequest {
            prefix: prefix.clone(),
            legal_actions: true,
            state_key: true,
            first: None,
            listed: cut % 2 == 1, // the episode's actions were listed: both ways must agree
            seed: rollout_seed,
            max_steps,
        };
        self.on(check, &mut played, |e| e.reset(Some(seed), None))?;
        let got = self.on(check, &mut played, |e| e.playout(&request))?.expect("checked above");
        // The reference: the same prefix stepped, then the rollout played from the host.
        let mut env = self.instantiate(check)?;
        self.on(check, &mut env, |e| e.reset(Some(seed), None))?;
        let players = self.module.spec().players as usize;
        let mut want = wire::Playout { prefix_rewards: vec![0.0; players], ..Default::default() };
        for &a in &prefix {
            let t = self.on(check, &mut env, |e| e.step(a))?;
            want.prefix_rewards = (0..players).map(|p| t.reward(p as u32)).collect();
        }
        want.player = env.current_player();
        want.legal_actions = Some(self.on(check, &mut env, |e| e.legal_actions())?);
        want.state_key = Some(self.on(check, &mut env, |e| e.state_key())?);
        let mut rollout = wire::Rollout { returns: vec![0.0; players], after_first: want.player, ..Default::default() };
        let mut rng = Rng::seed_from_u64(rollout_seed);
        for _ in 0..max_steps {
            let legal = self.on(check, &mut env, |e| e.legal_actions())?;
            if env.current_player().is_none() || legal.is_empty() {
                break;
            }
            let a = legal[wire::rollout_pick(&mut rng, legal.len())];
            let t = self.on(check, &mut env, |e| e.step(a))?;
            rollout.steps += 1;
            (0..players).for_each(|p| rollout.returns[p] += t.reward(p as u32));
            (rollout.terminated, rollout.truncated) = (t.terminated, t.truncated);
            if want.first.is_none() {
                want.first = Some(a);
                rollout.after_first = t.current_player;
            }
        }
        rollout.current_player = env.current_player();
        want.rollout = rollout;
        self.expect(check, got == want, || {
            format!(
                "playout of the first {cut} actions and {max_steps} random steps (seed {rollout_seed}) reported \
                 {got:?}; stepping them gives {want:?}"
            )
        });
        Ok(())
    }

    /// Steps a fork with its own random actions, then drops it.
    fn diverge(&mut self, fork: &mut Env) -> Result<(), Stop> {
        for _ in 0..3 {
            let legal = self.on("forks_are_independent", fork, |e| e.legal_actions())?;
            let texts = self.on("forks_are_independent", fork, text_choices)?;
            let space = fork.spec().action_space.clone();
            let Some(action) = random_action(&space, &legal, &texts, self.rng) else { break };
            if self.on("forks_are_independent", fork, |e| e.step(action))?.done() {
                break;
            }
        }
        Ok(())
    }

    /// Applies `actions`; the result starts with `start` (the fingerprint at the branch point) or,
    /// without one, with a seeded reset.
    fn replay(
        &mut self,
        check: &'static str,
        env: &mut Env,
        start: Option<&Vec<u8>>,
        actions: &[Action],
    ) -> Result<Vec<Vec<u8>>, Stop> {
        let seed = self.seed;
        let first = match start {
            Some(print) => print.clone(),
            None => fingerprint(&self.on(check, env, |e| e.reset(Some(seed), None))?),
        };
        let mut prints = vec![first];
        for action in actions {
            let action = action.clone();
            prints.push(fingerprint(&self.on(check, env, |e| e.step(action))?));
        }
        Ok(prints)
    }

    /// The observation lies in its space, rewards in their range, the player to move is one of
    /// the players and there is none after the end, and the state renders.
    fn check_transition(&mut self, env: &mut Env, t: &Transition, spec: &wasmgym_abi::EnvSpec) -> Result<(), Stop> {
        let why = t.observation.check_in(&spec.observation_space).err();
        let step = env.steps();
        self.expect("observations_lie_in_their_space", why.is_none(), || {
            format!("at step {step}: {}", why.unwrap_or_default())
        });
        let (low, high) = spec.reward_range;
        let outside = t.rewards.iter().find(|&&r| !(low <= r && r <= high));
        self.expect("rewards_lie_in_their_range", outside.is_none(), || {
            format!(
                "step {step} gave reward {} outside reward_range [{low}, {high}]",
                outside.copied().unwrap_or_default()
            )
        });
        match (t.current_player, t.done()) {
            (Some(p), false) => {
                let players = spec.players;
                self.expect("no_player_to_move_after_the_end", p < players, || {
                    format!("at step {step}, current player {p} is not one of {players} players")
                });
            }
            (player, true) => self.expect("no_player_to_move_after_the_end", player.is_none(), || {
                format!("the episode ended at step {step} but player {} is to move", player.unwrap_or_default())
            }),
            (None, false) => self.fail("no_player_to_move_after_the_end", || {
                format!("at step {step} the episode is running but no player is to move")
            }),
        }
        let text = self.on("render_works", env, |e| e.render())?;
        self.expect("render_works", !text.trim().is_empty(), || format!("render gave nothing at step {step}"));
        Ok(())
    }

    /// A step of a `Deterministic` environment is the same whatever the RNG holds: the same action
    /// on two forks whose generators differ gives the same transition.
    fn check_no_randomness(&mut self, env: &mut Env, action: &Action) -> Result<(), Stop> {
        let mut a = self.on("deterministic_steps_draw_no_randomness", env, |e| e.fork())?;
        let mut b = self.on("deterministic_steps_draw_no_randomness", env, |e| e.fork())?;
        let reseed = self.rng.next_u64();
        b.reseed(reseed);
        let (x, y) = (action.clone(), action.clone());
        let ta = self.on("deterministic_steps_draw_no_randomness", &mut a, |e| e.step(x))?;
        let tb = self.on("deterministic_steps_draw_no_randomness", &mut b, |e| e.step(y))?;
        let step = env.steps() + 1;
        self.expect("deterministic_steps_draw_no_randomness", fingerprint(&ta) == fingerprint(&tb), || {
            format!(
                "the spec says Deterministic, but step {step} ({action}) gave different results with different RNG \
                 states: draw from the RNG only in reset, or declare Stochastic"
            )
        });
        Ok(())
    }

    /// An illegal action must be refused and leave the state as it was.
    fn check_illegal(&mut self, env: &mut Env, legal: &[i64], space: &Space) -> Result<(), Stop> {
        const CHECK: &str = "illegal_action_rejected_state_unchanged";
        let illegal = match space {
            Space::Discrete { n } => Action::Discrete((0..*n as i64).find(|a| !legal.contains(a)).unwrap_or(*n as i64)),
            Space::Text { max_length, .. } => Action::Text("x".repeat(*max_length as usize + 1)),
            _ => return Ok(()),
        };
        let texts = self.on(CHECK, env, text_choices)?;
        let Some(probe) = random_action(space, legal, &texts, self.rng) else { return Ok(()) };
        let mut reference = self.on(CHECK, env, |e| e.fork())?;
        match env.step(illegal.clone()) {
            Err(Error::IllegalAction { .. }) => {}
            other => {
                let got = match other {
                    Ok(_) => "it was accepted".to_string(),
                    Err(e) => describe(env, &e, self.options.backtrace),
                };
                self.fail(CHECK, || format!("illegal action {illegal}: {got}"));
                return Ok(());
            }
        }
        // Same legal actions and the same next transition as an untouched fork.
        let mut a = self.on(CHECK, env, |e| e.fork())?;
        let mut b = self.on(CHECK, &mut reference, |e| e.fork())?;
        let same_legal =
            self.on(CHECK, &mut a, |e| e.legal_actions())? == self.on(CHECK, &mut reference, |e| e.legal_actions())?;
        let p = probe.clone();
        let same = same_legal
            && fingerprint(&self.on(CHECK, &mut a, |e| e.step(probe))?)
                == fingerprint(&self.on(CHECK, &mut b, |e| e.step(p))?);
        self.expect(CHECK, same, || format!("refusing illegal action {illegal} changed the state"));
        Ok(())
    }
}

fn first_difference(a: &[Vec<u8>], b: &[Vec<u8>]) -> usize {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()))
}
