//! [`Env`]: one live instance of an environment (owns its store), and the ABI calls into it.

use std::mem::ManuallyDrop;
use wasmgym_abi::rng::Rng;
use wasmgym_abi::wire::{self, Status};
use wasmgym_abi::{Action, EnvSpec, Observation, ResetRequest, Space, exports};

use wasmtime::TypedFunc;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::module::EnvModule;
use crate::sandbox::{Episode, Sandbox};
use crate::snapshot::Snapshot;

/// Valid commands a text environment may list at once (Jericho's games list tens).
pub const MAX_TEXT_ACTIONS: usize = 1 << 16;

/// The result of `reset` or `step`, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The observation, in the spec's observation space.
    pub observation: Observation,
    /// This step's reward for each player (empty after `reset`).
    pub rewards: Vec<f64>,
    /// The episode reached a terminal state.
    pub terminated: bool,
    /// The episode was cut short (`max_episode_steps`).
    pub truncated: bool,
    /// Extra information as a JSON object (`"{}"` when the environment gives none).
    pub info: String,
    /// Whose turn it is next, or `None` once the episode is over.
    pub current_player: Option<u32>,
}

impl Transition {
    /// The reward of `player` in this step (0 when there is none).
    pub fn reward(&self, player: u32) -> f64 {
        self.rewards.get(player as usize).copied().unwrap_or(0.0)
    }

    /// Whether the episode ended (terminated or truncated).
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// Handles to the ABI functions of one instance.
#[derive(Clone)]
pub(crate) struct Exports {
    alloc: TypedFunc<i32, i32>,
    spec: TypedFunc<(), i64>,
    reset: TypedFunc<(i32, i32), i64>,
    step: TypedFunc<(i32, i32), i64>,
    legal_actions: TypedFunc<(), i64>,
    render: TypedFunc<(), i64>,
    /// The optional exports (checked at load when present).
    rollout: Option<TypedFunc<(i64, i32, i32, i64), i64>>,
    step_actions: Option<TypedFunc<(i32, i32), i64>>,
    text_actions: Option<TypedFunc<(), i64>>,
    observe: Option<TypedFunc<(), i64>>,
    state_key: Option<TypedFunc<(), i64>>,
    playout: Option<TypedFunc<(i32, i32), i64>>,
    input_buffer: Option<TypedFunc<(), i64>>,
    /// What `wasmgym_input_buffer` answered, once asked: `(ptr, capacity)` of a buffer at a fixed
    /// address of the module's memory (so the answer holds in every state), or `None` without one.
    input: Option<Option<(u32, u32)>>,
}

impl Exports {
    fn new(sandbox: &mut Sandbox) -> Result<Exports> {
        // The first instance of a module checks each function's type; the same export of another
        // instance of the module has the same type.
        let checked = sandbox.module().env_exports_checked.load(std::sync::atomic::Ordering::Relaxed);
        let exports = Exports {
            alloc: sandbox.func_checked(exports::ALLOC, checked)?,
            spec: sandbox.func_checked(exports::SPEC, checked)?,
            reset: sandbox.func_checked(exports::RESET, checked)?,
            step: sandbox.func_checked(exports::STEP, checked)?,
            legal_actions: sandbox.func_checked(exports::LEGAL_ACTIONS, checked)?,
            render: sandbox.func_checked(exports::RENDER, checked)?,
            rollout: sandbox.optional_func(exports::ROLLOUT, checked)?,
            step_actions: sandbox.optional_func(exports::STEP_ACTIONS, checked)?,
            text_actions: sandbox.optional_func(exports::TEXT_ACTIONS, checked)?,
            observe: sandbox.optional_func(exports::OBSERVE, checked)?,
            state_key: sandbox.optional_func(exports::STATE_KEY, checked)?,
            playout: sandbox.optional_func(exports::PLAYOUT, checked)?,
            input_buffer: sandbox.optional_func(exports::INPUT_BUFFER, checked)?,
            input: None,
        };
        sandbox.module().env_exports_checked.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(exports)
    }
}

#[derive(Clone, Copy)]
enum Call {
    Spec,
    Reset,
    Step,
    StepActions,
    LegalActions,
    Render,
    TextActions,
    Observe,
    StateKey,
    Playout,
}

/// A live environment instance: owns its wasmtime store, so it is per episode or per branch.
///
/// Create with [`EnvModule::instantiate`]; branch with [`Env::snapshot`], [`Env::restore`] and
/// [`Env::fork`]. Calls that fail with an error that [poisons](Error::poisons) leave the instance
/// refusing every call but `restore` (which makes it usable again) until it is dropped.
pub struct Env {
    module: EnvModule,
    /// Taken only in `Drop`, which hands it to the module's pool of warm sandboxes.
    sandbox: ManuallyDrop<Sandbox>,
    exports: Exports,
    /// Bytes of a playout's request and of its answer (reused).
    scratch: (Vec<u8>, Vec<u8>),
    /// The last snapshot restored here, known to fit this module (a search restores one snapshot
    /// over and over).
    restored: Option<Snapshot>,
}

impl Env {
    pub(crate) fn new(module: &EnvModule, limits: Limits) -> Result<Env> {
        let mut sandbox = Sandbox::new(&module.inner, limits, true)?;
        let exports = Exports::new(&mut sandbox)?;
        Ok(Env {
            module: module.clone(),
            sandbox: ManuallyDrop::new(sandbox),
            exports,
            scratch: Default::default(),
            restored: None,
        })
    }

    /// The module this instance runs.
    pub fn module(&self) -> &EnvModule {
        &self.module
    }

    /// The environment's spec.
    pub fn spec(&self) -> &EnvSpec {
        self.module.spec()
    }

    /// The limits this instance runs under.
    pub fn limits(&self) -> &Limits {
        &self.sandbox.store.data().limits
    }

    /// Replaces the limits; memory already in use is kept even if over the new cap.
    pub fn set_limits(&mut self, limits: Limits) {
        self.sandbox.store.data_mut().limits = limits;
    }

    /// Starts an episode. `seed` reseeds the host RNG (otherwise its stream continues); `options` is
    /// a JSON document the environment interprets.
    pub fn reset(&mut self, seed: Option<u64>, options: Option<&str>) -> Result<Transition> {
        let mut request = Vec::new();
        ResetRequest { seed, options: options.unwrap_or("").to_owned() }.encode(&mut request);
        let saved_rng = self.sandbox.store.data().vars.rng.clone();
        if let Some(seed) = seed {
            self.sandbox.store.data_mut().vars.rng = Rng::seed_from_u64(seed);
        }
        let result = self.invoke(Call::Reset, &request).and_then(|payload| self.transition(&payload));
        match &result {
            Ok(_) => self.sandbox.store.data_mut().vars.steps = 0,
            Err(e) if !e.poisons() => self.sandbox.store.data_mut().vars.rng = saved_rng,
            Err(_) => {}
        }
        result
    }

    /// Applies an action: an `i64` for discrete action spaces, a string for text ones.
    ///
    /// An illegal action gets [`Error::IllegalAction`] and leaves the state unchanged.
    pub fn step(&mut self, action: impl Into<Action>) -> Result<Transition> {
        let action = action.into();
        let payload = self.invoke_step(Call::Step, &action)?;
        let transition = self.transition(&payload)?;
        self.sandbox.store.data_mut().vars.steps += 1;
        Ok(transition)
    }

    /// [`Env::step`], then [`Env::legal_actions`] for the player to move next (empty once the
    /// episode is over): in one call into the guest when the module exports
    /// `wasmgym_step_actions` (every SDK environment does), in two otherwise.
    pub fn step_and_legal_actions(&mut self, action: impl Into<Action>) -> Result<(Transition, Vec<i64>)> {
        if self.exports.step_actions.is_none() {
            let transition = self.step(action)?;
            let actions = if transition.done() { Vec::new() } else { self.legal_actions()? };
            return Ok((transition, actions));
        }
        let action = action.into();
        let payload = self.invoke_step(Call::StepActions, &action)?;
        let (transition, actions) = self.protocol(wire::decode_step_actions(&payload).map_err(|e| e.0))?;
        let transition = self.transition(transition)?;
        self.sandbox.store.data_mut().vars.steps += 1;
        let actions = self.check_legal_actions(actions)?;
        if transition.done() && !actions.is_empty() {
            return self.protocol(Err("the episode is over, but step_actions listed legal actions".into()));
        }
        Ok((transition, actions))
    }

    /// A `Step` or `StepActions` call: its payload, or the illegal action named in the error.
    fn invoke_step(&mut self, call: Call, action: &Action) -> Result<Vec<u8>> {
        let mut request = Vec::new();
        action.encode(&mut request);
        match self.invoke(call, &request) {
            Err(Error::IllegalAction { message, .. }) => {
                Err(Error::IllegalAction { action: action.to_string(), message })
            }
            other => other,
        }
    }

    /// The legal discrete actions now, ascending (empty once the episode is over, and for text
    /// action spaces, where any text in the space is legal).
    pub fn legal_actions(&mut self) -> Result<Vec<i64>> {
        let payload = self.invoke(Call::LegalActions, &[])?;
        let actions = self.protocol(wire::decode_legal_actions(&payload).map_err(|e| e.0))?;
        self.check_legal_actions(actions)
    }

    /// Legal actions as the guest listed them, checked: inside the action space, ascending.
    fn check_legal_actions(&mut self, actions: Vec<i64>) -> Result<Vec<i64>> {
        self.check_legal_slice(&actions)?;
        Ok(actions)
    }

    /// [`Env::check_legal_actions`] on borrowed actions.
    fn check_legal_slice(&mut self, actions: &[i64]) -> Result<()> {
        let n = match &self.spec().action_space {
            Space::Discrete { n } => *n,
            _ if actions.is_empty() => return Ok(()),
            space => {
                let kind = match space {
                    Space::Text { .. } => "a Text action space lists its valid commands with wasmgym_text_actions",
                    _ => "legal actions are indices of a Discrete action space",
                };
                let message = format!("{} legal actions listed for a non-discrete action space: {kind}", actions.len());
                return self.protocol(Err(message));
            }
        };
        let problem = actions.iter().enumerate().find_map(|(i, &a)| {
            if u64::try_from(a).map_or(true, |a| a >= n) {
                Some(format!("legal action {a} is outside the action space Discrete({n})"))
            } else if i > 0 && actions[i - 1] >= a {
                Some(format!("legal actions must be strictly ascending, but {} comes before {a}", actions[i - 1]))
            } else {
                None
            }
        });
        match problem {
            Some(message) => self.protocol(Err(message)),
            None => Ok(()),
        }
    }

    /// Whether the module exports `wasmgym_rollout` (every SDK environment does), so
    /// [`Env::rollout`] runs a playout in one call.
    pub fn has_rollout(&self) -> bool {
        self.exports.rollout.is_some()
    }

    /// A uniformly random playout run inside the guest in one call: `request.first` (if any) is
    /// applied like [`Env::step`] (refused the same way, changing nothing), then up to
    /// `request.max_steps` actions, each picked with [`wasmgym_abi::wire::rollout_pick`] from a
    /// generator seeded with `request.seed` among the legal actions (text spaces: the valid text
    /// actions), until the episode ends or nothing is listed. No observation is encoded.
    ///
    /// `Ok(None)` if the module does not export `wasmgym_rollout` (drive the playout with
    /// [`Env::step`] instead; picking the same way gives the same game). A playout step the
    /// environment refuses (its own list was wrong) is [`Error::Guest`] and poisons the instance,
    /// which has moved.
    pub fn rollout(&mut self, request: &wasmgym_abi::wire::RolloutRequest) -> Result<Option<wire::Rollout>> {
        let Some(func) = self.exports.rollout.clone() else { return Ok(None) };
        let players = self.spec().players;
        // A text first action is a step of its own; its rewards join the playout's.
        let (first, stepped) = match &request.first {
            Some(Action::Text(_)) => {
                let t = self.step(request.first.clone().expect("matched"))?;
                (None, Some(t))
            }
            Some(Action::Discrete(a)) => (Some(*a), None),
            None => (None, None),
        };
        if let Some(t) = &stepped
            && t.done()
        {
            let returns = (0..players).map(|p| t.reward(p)).collect();
            let (terminated, truncated) = (t.terminated, t.truncated);
            return Ok(Some(wire::Rollout { steps: 1, returns, terminated, truncated, ..Default::default() }));
        }
        let max_steps = i32::try_from(request.max_steps).unwrap_or(i32::MAX);
        let args = (request.seed as i64, max_steps, i32::from(first.is_some()), first.unwrap_or(0));
        let packed = self.sandbox.call(&func, args)?;
        let payload = match self.output(packed)? {
            (Status::Ok, payload) => payload,
            (status, payload) => {
                let message = String::from_utf8_lossy(&payload).into_owned();
                let e = match status {
                    Status::IllegalAction => Error::IllegalAction { action: first.unwrap_or(0).to_string(), message },
                    Status::BadRequest => Error::InvalidCall { message },
                    _ => Error::Guest { message },
                };
                if matches!(e, Error::Guest { .. }) {
                    self.sandbox.poison_always(&e);
                }
                return Err(e);
            }
        };
        let mut rollout = self.protocol(wire::Rollout::decode(&payload).map_err(|e| e.0))?;
        self.protocol(check_rollout(&rollout, players))?;
        self.count_rollout(&rollout);
        if let Some(t) = stepped {
            rollout.steps += 1;
            rollout.after_first = t.current_player;
            rollout.returns.iter_mut().enumerate().for_each(|(p, r)| *r += t.reward(p as u32));
        }
        Ok(Some(rollout))
    }

    /// Counts a rollout's steps and takes the episode's state at its end.
    fn count_rollout(&mut self, rollout: &wire::Rollout) {
        let vars = &mut self.sandbox.store.data_mut().vars;
        vars.steps += u64::from(rollout.steps);
        vars.episode = match rollout.current_player {
            Some(player) => Episode::Running { player },
            None => Episode::Over,
        };
    }

    /// Whether the module exports `wasmgym_playout` (every SDK environment does), so
    /// [`Env::playout`] answers.
    pub fn has_playout(&self) -> bool {
        self.exports.playout.is_some()
    }

    /// A path and a rollout in one call into the guest: applies `request.prefix` (each action
    /// checked like [`Env::step`]), reports the legal actions and the [state key](Env::state_key)
    /// of the state reached if asked, then rolls out from there as [`Env::rollout`] does
    /// (`request.first` if given, then random steps, the first of which is reported as `first`
    /// when none was given). A tree search restores its root and replays the path to a leaf this
    /// way, with no snapshot per node. Discrete action spaces only; no observation is encoded.
    ///
    /// `Ok(None)` if the module does not export `wasmgym_playout`. A refused playout (an illegal
    /// action, a prefix that goes past the end of the episode) may have applied part of the
    /// prefix, so it poisons the instance: restore a snapshot to use it again.
    pub fn playout(&mut self, request: &wire::PlayoutRequest) -> Result<Option<wire::Playout>> {
        let mut playout = wire::Playout::default();
        Ok(self.playout_into(request, &mut playout)?.then_some(playout))
    }

    /// [`Env::playout`] into `playout`, reusing its buffers (a search plays one per simulation);
    /// `Ok(false)` if the module does not export `wasmgym_playout`. On error, `playout` is left
    /// unspecified.
    pub fn playout_into(&mut self, request: &wire::PlayoutRequest, playout: &mut wire::Playout) -> Result<bool> {
        if self.exports.playout.is_none() {
            return Ok(false);
        }
        let (mut bytes, mut payload) = std::mem::take(&mut self.scratch);
        bytes.clear();
        request.encode(&mut bytes);
        let answer = self.invoke_into(Call::Playout, &bytes, &mut payload);
        let answer = answer.and_then(|status| refusal(status, &payload));
        let decoded = answer.map(|()| playout.decode_from(&payload));
        self.scratch = (bytes, payload);
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                let e = match e {
                    Error::IllegalAction { message, .. } => {
                        Error::IllegalAction { action: "in a playout".into(), message }
                    }
                    e => e,
                };
                self.sandbox.poison_always(&e);
                return Err(e);
            }
        };
        self.protocol(decoded.map_err(|e| e.0))?;
        let players = self.spec().players;
        let answered = |asked: bool, given: bool, what: &str| match (asked, given) {
            (true, false) => Err(format!("playout was asked for {what} and gave none")),
            (false, true) => Err(format!("playout gave {what}, which was not asked for")),
            _ => Ok(()),
        };
        self.protocol(
            answered(request.legal_actions, playout.legal_actions.is_some(), "the legal actions")
                .and(answered(request.state_key, playout.state_key.is_some(), "a state key"))
                .and(check_rollout(&playout.rollout, players))
                .and(match playout.player {
                    Some(p) if p >= players => {
                        Err(format!("playout reports player {p} to move, but the spec has {players}"))
                    }
                    None if playout.rollout.steps > 0 => Err("playout rolled out after the episode ended".into()),
                    _ if playout.prefix_rewards.len() != players as usize => Err(format!(
                        "playout has {} prefix rewards, but the spec has {players} players",
                        playout.prefix_rewards.len()
                    )),
                    _ if request.first.is_some() && playout.first != request.first => Err(format!(
                        "playout reports first action {:?}, but {:?} was given",
                        playout.first, request.first
                    )),
                    _ if (playout.rollout.steps > 0) != playout.first.is_some() => {
                        Err("playout reports a first action if and only if it took a step".into())
                    }
                    _ => Ok(()),
                }),
        )?;
        if let Some(legal) = &playout.legal_actions {
            self.check_legal_slice(legal)?;
            if playout.player.is_none() && !legal.is_empty() {
                return self
                    .protocol(Err("the episode is over after the prefix, but playout listed legal actions".into()));
            }
        }
        self.sandbox.store.data_mut().vars.steps += request.prefix.len() as u64;
        self.count_rollout(&playout.rollout);
        Ok(true)
    }

    /// For text action spaces: the commands the environment lists as valid now (like Jericho's
    /// `get_valid_actions`; empty once the episode is over). `Ok(None)` if the module does not
    /// export `wasmgym_text_actions`.
    pub fn text_actions(&mut self) -> Result<Option<Vec<String>>> {
        if self.exports.text_actions.is_none() {
            return Ok(None);
        }
        let payload = self.invoke(Call::TextActions, &[])?;
        let actions = self.protocol(wire::decode_text_actions(&payload).map_err(|e| e.0))?;
        let problem = match &self.spec().action_space {
            _ if actions.len() > MAX_TEXT_ACTIONS => {
                Some(format!("{} valid commands listed, more than the {MAX_TEXT_ACTIONS} allowed", actions.len()))
            }
            Space::Text { max_length, charset } => actions.iter().find_map(|a| {
                let fits = wire::check_text(a, *max_length, charset.as_deref());
                fits.err().map(|why| format!("valid command {a:?} does not fit the action space: {why}"))
            }),
            space if !actions.is_empty() => Some(format!("text actions listed for the action space {space:?}")),
            _ => None,
        };
        match problem {
            Some(message) => self.protocol(Err(message)),
            None => Ok(Some(actions)),
        }
    }

    /// The actions a search may try now: the legal actions of a discrete space, the valid text
    /// actions of a text space (none if the module lists none).
    pub fn actions(&mut self) -> Result<Vec<Action>> {
        match self.spec().action_space {
            Space::Text { .. } => Ok(self.text_actions()?.unwrap_or_default().into_iter().map(Action::Text).collect()),
            _ => Ok(self.legal_actions()?.into_iter().map(Action::Discrete).collect()),
        }
    }

    /// The observation in the current state (after a `restore`, too), as `reset` and `step`
    /// report it. `Ok(None)` if the module does not export `wasmgym_observe`; before `reset` an
    /// [`Error::InvalidCall`].
    pub fn observe(&mut self) -> Result<Option<Observation>> {
        if self.exports.observe.is_none() {
            return Ok(None);
        }
        let payload = self.invoke(Call::Observe, &[])?;
        let space = &self.module.spec().observation_space;
        let observation = Observation::decode(space, &payload).map_err(|e| e.0);
        self.protocol(observation).map(Some)
    }

    /// The environment's key for the game state (equal keys: equal futures, whatever path led
    /// there), for transposition tables. `Ok(None)` if the module does not export
    /// `wasmgym_state_key` or the environment gives no key; fall back to [`Env::state_hash`].
    pub fn state_key(&mut self) -> Result<Option<Vec<u8>>> {
        if self.exports.state_key.is_none() {
            return Ok(None);
        }
        let payload = self.invoke(Call::StateKey, &[])?;
        self.protocol(wire::decode_state_key(&payload).map_err(|e| e.0))
    }

    /// Reseeds the host generator the guest draws randomness from (WASI `random_get`), without a
    /// reset: a search samples another outcome of a stochastic step from the same snapshot this
    /// way. The generator is part of every snapshot.
    pub fn reseed(&mut self, seed: u64) {
        self.sandbox.store.data_mut().vars.rng = Rng::seed_from_u64(seed);
    }

    /// A text rendering of the current state.
    pub fn render(&mut self) -> Result<String> {
        let payload = self.invoke(Call::Render, &[])?;
        self.protocol(String::from_utf8(payload).map_err(|e| format!("render output is not UTF-8: {e}")))
    }

    /// Whose turn it is, or `None` before `reset` and once the episode is over.
    pub fn current_player(&self) -> Option<u32> {
        match self.sandbox.store.data().vars.episode {
            Episode::Running { player } => Some(player),
            _ => None,
        }
    }

    /// Whether an episode is running (reset was called and it has not ended).
    pub fn is_running(&self) -> bool {
        matches!(self.sandbox.store.data().vars.episode, Episode::Running { .. })
    }

    /// Steps taken in the current episode.
    pub fn steps(&self) -> u64 {
        self.sandbox.store.data().vars.steps
    }

    /// Fuel used by this instance so far (part of its snapshot, so restores rewind it).
    pub fn fuel_consumed(&self) -> u64 {
        self.sandbox.store.data().vars.fuel_consumed
    }

    /// What the guest wrote to stdout (bounded by `Limits::output_bytes`).
    pub fn stdout(&self) -> &[u8] {
        &self.sandbox.store.data().vars.stdout
    }

    /// What the guest wrote to stderr (bounded by `Limits::output_bytes`).
    pub fn stderr(&self) -> &[u8] {
        &self.sandbox.store.data().vars.stderr
    }

    /// Total size of the instance's linear memories, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.sandbox.memory_bytes()
    }

    /// Pages of memory 0 written since the last snapshot or restore (what the next restore
    /// writes back), counting the page after each marked one as the tracking does.
    pub fn dirty_pages(&self) -> usize {
        self.sandbox.marked_pages().len()
    }

    /// Whether an earlier error left the instance refusing calls until a restore.
    pub fn is_poisoned(&self) -> bool {
        self.sandbox.is_poisoned()
    }

    /// Bytes this instance is charged against the runtime's memory cap: a fixed overhead plus its
    /// linear memory, of which a copy-on-write fork counts only the pages it has written (see
    /// [`RuntimeConfig::memory_cap`](crate::RuntimeConfig::memory_cap)).
    pub fn resident_bytes(&self) -> u64 {
        self.sandbox.resident_bytes()
    }

    /// A complete copy of the instance's state: every memory, every mutable global (exported or
    /// not) and the host state (RNG, virtual clock, step counter, captured output, fuel used).
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        Ok(Snapshot::new(self.sandbox.capture()?))
    }

    /// Puts the instance in the exact state `snapshot` holds. Works on a poisoned instance, which
    /// becomes usable again. A snapshot of another module is refused with [`Error::BadSnapshot`]
    /// and changes nothing.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let known = self.restored.as_ref().is_some_and(|last| last.same(snapshot));
        if self.sandbox.restore_checked(snapshot.data(), known)? {
            self.exports = Exports::new(&mut self.sandbox)?;
        }
        if !known {
            self.restored = Some(snapshot.clone());
        }
        Ok(())
    }

    /// A new, independent instance in exactly this instance's state.
    ///
    /// It reuses a warm instance that an earlier `Env` of the same module left when dropped (see
    /// `RuntimeConfig::instance_pool`), writing only the pages where that instance differs from this
    /// state; without one it creates a new instance.
    pub fn fork(&mut self) -> Result<Env> {
        let module = self.module.clone();
        module.with_room(|| self.fork_once())
    }

    fn fork_once(&mut self) -> Result<Env> {
        let (sandbox, exports) = match self.module.take_pooled() {
            Some((mut sandbox, mut exports)) => {
                if self.sandbox.fork_into(&mut sandbox)? {
                    exports = Exports::new(&mut sandbox)?;
                }
                (sandbox, exports)
            }
            None => {
                let mut sandbox = self.sandbox.fork()?;
                let exports = Exports::new(&mut sandbox)?;
                (sandbox, exports)
            }
        };
        Ok(Env {
            module: self.module.clone(),
            sandbox: ManuallyDrop::new(sandbox),
            exports,
            scratch: Default::default(),
            restored: None,
        })
    }

    /// A BLAKE3 hash of the state that determines the future: memories, mutable globals, RNG,
    /// virtual clock, step counter and episode status (not captured output or fuel used). Equal
    /// hashes mean identical futures under identical calls, so it deduplicates exactly.
    ///
    /// It hashes the machine, not the game: the same game state reached by another path, or after
    /// other queries (each call writes the guest's output buffer), can hash differently.
    pub fn state_hash(&mut self) -> Result<[u8; 32]> {
        self.sandbox.state_hash()
    }

    /// Whether this instance lives in one of the runtime's pooled slots
    /// ([`RuntimeConfig::instance_slots`](crate::RuntimeConfig::instance_slots)) rather than
    /// memory created for it on demand. Either way it behaves the same.
    pub fn in_slot(&self) -> bool {
        self.sandbox.in_slot()
    }

    /// The same hash as [`Env::state_hash`], computed from the live memory instead of the
    /// snapshot machinery's record of what changed: O(memory size). The two agree exactly when
    /// dirty-page tracking missed no write, which is what tests and debugging use it to check.
    pub fn state_hash_full(&mut self) -> Result<[u8; 32]> {
        self.sandbox.state_hash_full()
    }

    pub(crate) fn read_spec(mut self) -> Result<EnvSpec> {
        let payload = self.invoke(Call::Spec, &[])?;
        serde_json::from_slice(&payload)
            .map_err(|e| Error::Protocol { message: format!("wasmgym_spec returned invalid JSON: {e}") })
    }

    /// Calls an ABI export with `request`, returning the payload of an `Ok` output.
    fn invoke(&mut self, call: Call, request: &[u8]) -> Result<Vec<u8>> {
        let (status, payload) = self.invoke_inner(call, request)?;
        refusal(status, &payload)?;
        Ok(payload)
    }

    fn invoke_inner(&mut self, call: Call, request: &[u8]) -> Result<(Status, Vec<u8>)> {
        let mut payload = Vec::new();
        let status = self.invoke_into(call, request, &mut payload)?;
        Ok((status, payload))
    }

    /// Calls `call` with `request` written into the guest; its status, and its payload in `payload`.
    fn invoke_into(&mut self, call: Call, request: &[u8], payload: &mut Vec<u8>) -> Result<Status> {
        let (ptr, len) = if request.is_empty() {
            (0, 0)
        } else {
            let (ptr, export) = match self.input_buffer()? {
                Some((ptr, capacity)) if request.len() <= capacity as usize => (ptr as i32, exports::INPUT_BUFFER),
                _ => (self.sandbox.call(&self.exports.alloc, request.len() as i32)?, exports::ALLOC),
            };
            let written = self.sandbox.write_memory(ptr as u32, request);
            self.protocol(
                written.map_err(|_| format!("{export} returned {ptr:#x}, outside memory for {} bytes", request.len())),
            )?;
            (ptr, request.len() as i32)
        };
        let e = &self.exports;
        let packed = match call {
            Call::Spec => self.sandbox.call(&e.spec, ()),
            Call::Reset => self.sandbox.call(&e.reset, (ptr, len)),
            Call::Step => self.sandbox.call(&e.step, (ptr, len)),
            Call::StepActions => self.sandbox.call(e.step_actions.as_ref().expect("checked by the caller"), (ptr, len)),
            Call::LegalActions => self.sandbox.call(&e.legal_actions, ()),
            Call::Render => self.sandbox.call(&e.render, ()),
            Call::TextActions => self.sandbox.call(e.text_actions.as_ref().expect("checked by the caller"), ()),
            Call::Observe => self.sandbox.call(e.observe.as_ref().expect("checked by the caller"), ()),
            Call::StateKey => self.sandbox.call(e.state_key.as_ref().expect("checked by the caller"), ()),
            Call::Playout => self.sandbox.call(e.playout.as_ref().expect("checked by the caller"), (ptr, len)),
        }?;
        self.output_into(packed, payload)
    }

    /// The guest's fixed input buffer, asked for once per instance (`wasmgym_input_buffer`).
    fn input_buffer(&mut self) -> Result<Option<(u32, u32)>> {
        if let Some(known) = self.exports.input {
            return Ok(known);
        }
        let answer = match &self.exports.input_buffer {
            Some(f) => Some(wasmgym_abi::unpack(self.sandbox.call(f, ())?)),
            None => None,
        };
        self.exports.input = Some(answer);
        Ok(answer)
    }

    /// The status and payload of the output a call returned (`packed` pointer and length).
    fn output(&mut self, packed: i64) -> Result<(Status, Vec<u8>)> {
        let mut payload = Vec::new();
        let status = self.output_into(packed, &mut payload)?;
        Ok((status, payload))
    }

    /// [`Env::output`] into a buffer the caller reuses.
    fn output_into(&mut self, packed: i64, payload: &mut Vec<u8>) -> Result<Status> {
        let memory = self.sandbox.memory();
        let (out_ptr, out_len) = wasmgym_abi::unpack(packed);
        let data = memory.data(&self.sandbox.store);
        let out = (out_ptr as usize)
            .checked_add(out_len as usize)
            .and_then(|end| data.get(out_ptr as usize..end))
            .ok_or_else(|| format!("output at {out_ptr:#x} of {out_len} bytes lies outside the guest's memory"))
            .and_then(|out| out.split_first().ok_or_else(|| "empty output".to_string()))
            .and_then(|(&status, bytes)| match Status::from_byte(status) {
                Some(status) => {
                    payload.clear();
                    payload.extend_from_slice(bytes);
                    Ok(status)
                }
                None => Err(format!("unknown status byte {status} in output")),
            });
        self.protocol(out)
    }

    /// Decodes a transition payload and records the episode status it reports.
    fn transition(&mut self, payload: &[u8]) -> Result<Transition> {
        let t = self.protocol(wire::Transition::decode(payload).map_err(|e| e.0))?;
        let players = self.spec().players;
        if let Some(player) = t.current_player
            && player >= players
        {
            return self.protocol(Err(format!("player {player} is to move, but the spec has {players} players")));
        }
        if !t.rewards.is_empty() && t.rewards.len() != players as usize {
            return self.protocol(Err(format!(
                "the transition has {} rewards, but the spec has {players} players (one reward each, or none)",
                t.rewards.len()
            )));
        }
        let observation =
            self.protocol(Observation::decode(&self.spec().observation_space, &t.observation).map_err(|e| e.0))?;
        self.sandbox.store.data_mut().vars.episode = match t.current_player {
            Some(player) => Episode::Running { player },
            None => Episode::Over,
        };
        Ok(Transition {
            observation,
            rewards: t.rewards,
            terminated: t.terminated,
            truncated: t.truncated,
            info: if t.info.is_empty() { "{}".into() } else { t.info },
            current_player: t.current_player,
        })
    }

    /// Turns a decoding failure of guest output into a (poisoning) protocol error.
    fn protocol<T>(&mut self, result: std::result::Result<T, String>) -> Result<T> {
        result.map_err(|message| {
            let e = Error::Protocol { message };
            self.sandbox.poison(&e);
            e
        })
    }
}

/// The error a call's status names (`Ok` for [`Status::Ok`]), with the guest's message.
fn refusal(status: Status, payload: &[u8]) -> Result<()> {
    let message = || String::from_utf8_lossy(payload).into_owned();
    match status {
        Status::Ok => Ok(()),
        Status::IllegalAction => Err(Error::IllegalAction { action: String::new(), message: message() }),
        Status::BadRequest => Err(Error::InvalidCall { message: message() }),
        Status::GuestError => Err(Error::Guest { message: message() }),
    }
}

/// What the host checks of every rollout a guest reports.
fn check_rollout(rollout: &wire::Rollout, players: u32) -> std::result::Result<(), String> {
    let bad_player = [rollout.after_first, rollout.current_player].into_iter().flatten().find(|&p| p >= players);
    if let Some(player) = bad_player {
        return Err(format!("rollout reports player {player} to move, but the spec has {players}"));
    }
    if rollout.returns.len() != players as usize {
        let n = rollout.returns.len();
        return Err(format!("rollout has {n} returns, but the spec has {players} players"));
    }
    Ok(())
}

impl Drop for Env {
    fn drop(&mut self) {
        // SAFETY: `sandbox` is not used again: this is the end of `self`.
        let sandbox = unsafe { ManuallyDrop::take(&mut self.sandbox) };
        // The exports are handles into the sandbox's store; they travel with it.
        self.module.give_pooled(sandbox, self.exports.clone());
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("env", &self.spec().name)
            .field("steps", &self.steps())
            .field("current_player", &self.current_player())
            .field("poisoned", &self.sandbox.is_poisoned())
            .finish()
    }
}
