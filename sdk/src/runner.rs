//! The bookkeeping between the ABI and an author's [`Environment`]: one `Runner` per guest.

use wasmgym_abi::wire::{
    self, Playout, PlayoutRef, PlayoutRequest, Rollout, RolloutRef, RolloutRequest, Status, check_text,
};
use wasmgym_abi::{Action, EnvSpec, ResetRequest, Space};

use crate::{Environment, Options, Rng};

/// Drives an [`Environment`] through the same byte protocol the host uses.
///
/// In a guest, [`export_env!`](crate::export_env) routes every ABI call here. Natively, the typed
/// methods ([`Runner::reset`], [`Runner::step`]) run exactly the same code, which makes a fair
/// baseline for the sandboxed environment.
pub struct Runner<E: Environment> {
    spec: EnvSpec,
    env: Option<E>,
    steps: u64,
    over: bool,
    rng: Rng,
    input: Vec<u8>,
    out: Vec<u8>,
    obs: Vec<u8>,
    /// The legal actions of a step's check, a rollout's step or `wasmgym_step_actions` (reused).
    legal: Vec<i64>,
    scratch: Scratch,
}

/// A call the guest refused, as the native [`Runner`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepError {
    /// Why: illegal action, guest error or bad request.
    pub status: Status,
    /// What went wrong and what to do.
    pub message: String,
}

type Refusal = (Status, String);

impl<E: Environment> Default for Runner<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Environment> Runner<E> {
    /// A runner with no episode started; its generator is seeded with 0 until a seeded reset.
    pub fn new() -> Self {
        let spec = E::spec();
        let scratch = Scratch::for_spec(&spec);
        Runner {
            legal: Vec::with_capacity(scratch.listed.capacity()),
            scratch,
            spec,
            env: None,
            steps: 0,
            over: false,
            rng: Rng::new(),
            input: Vec::new(),
            out: Vec::new(),
            obs: Vec::new(),
        }
    }

    /// The environment's spec.
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// The author's environment, once an episode has started.
    pub fn env(&self) -> Option<&E> {
        self.env.as_ref()
    }

    /// Starts an episode (typed form of the `wasmgym_reset` call).
    pub fn reset(&mut self, seed: Option<u64>, options: &str) -> Result<wire::Transition, StepError> {
        let mut req = Vec::new();
        ResetRequest { seed, options: options.to_owned() }.encode(&mut req);
        self.reset_bytes(&req);
        self.decode_transition()
    }

    /// Applies an action (typed form of the `wasmgym_step` call).
    pub fn step(&mut self, action: &Action) -> Result<wire::Transition, StepError> {
        let mut req = Vec::new();
        action.encode(&mut req);
        self.step_bytes(&req);
        self.decode_transition()
    }

    /// The legal actions (typed form of the `wasmgym_legal_actions` call).
    pub fn legal_actions(&mut self) -> Vec<i64> {
        let out = self.legal_actions_bytes();
        wire::decode_legal_actions(&out[1..]).expect("the runner encodes legal actions itself")
    }

    /// A random playout inside the environment (typed form of the `wasmgym_rollout` call; a
    /// text `first` action is applied the same way).
    pub fn rollout(&mut self, request: &RolloutRequest) -> Result<Rollout, StepError> {
        let result = self.rollout_inner(request.seed, request.max_steps, request.first.as_ref());
        self.finish(result);
        match Status::from_byte(self.out[0]) {
            Some(Status::Ok) => Ok(Rollout::decode(&self.out[1..]).expect("the runner encodes rollouts itself")),
            status => Err(StepError {
                status: status.unwrap_or(Status::GuestError),
                message: String::from_utf8_lossy(&self.out[1..]).into_owned(),
            }),
        }
    }

    /// The text rendering (typed form of the `wasmgym_render` call).
    pub fn render(&mut self) -> Result<String, StepError> {
        let out = self.render_bytes();
        let text = String::from_utf8_lossy(&out[1..]).into_owned();
        match Status::from_byte(out[0]) {
            Some(Status::Ok) => Ok(text),
            status => Err(StepError { status: status.unwrap_or(Status::GuestError), message: text }),
        }
    }

    fn decode_transition(&self) -> Result<wire::Transition, StepError> {
        match Status::from_byte(self.out[0]) {
            Some(Status::Ok) => {
                Ok(wire::Transition::decode(&self.out[1..]).expect("the runner encodes transitions itself"))
            }
            status => Err(StepError {
                status: status.unwrap_or(Status::GuestError),
                message: String::from_utf8_lossy(&self.out[1..]).into_owned(),
            }),
        }
    }

    /// A buffer of `len` bytes for the host to write the next request into.
    pub fn input_buffer(&mut self, len: usize) -> &mut [u8] {
        self.input.resize(len, 0);
        &mut self.input
    }

    /// `wasmgym_spec`: status and the spec as JSON.
    pub fn spec_bytes(&mut self) -> &[u8] {
        self.out.clear();
        self.out.push(Status::Ok as u8);
        let json = serde_json::to_vec(&self.spec).expect("an EnvSpec always serialises");
        self.out.extend_from_slice(&json);
        &self.out
    }

    /// `wasmgym_reset` on the first `len` bytes of the input buffer.
    pub fn reset_from_input(&mut self, len: usize) -> &[u8] {
        self.on_input(len, Self::reset_inner)
    }

    /// `wasmgym_step` on the first `len` bytes of the input buffer.
    pub fn step_from_input(&mut self, len: usize) -> &[u8] {
        self.on_input(len, Self::step_inner)
    }

    /// `wasmgym_reset` on request bytes.
    pub fn reset_bytes(&mut self, input: &[u8]) -> &[u8] {
        let result = self.reset_inner(input);
        self.finish(result)
    }

    /// `wasmgym_step` on request bytes.
    pub fn step_bytes(&mut self, input: &[u8]) -> &[u8] {
        let result = self.step_inner(input);
        self.finish(result)
    }

    /// `wasmgym_step_actions` on request bytes: `wasmgym_step`, then the legal actions for the
    /// player to move next (none once the episode is over) after the transition.
    pub fn step_actions_bytes(&mut self, input: &[u8]) -> &[u8] {
        let result = self.step_actions_inner(input);
        self.finish(result)
    }

    /// `wasmgym_step_actions` on the first `len` bytes of the input buffer.
    pub fn step_actions_from_input(&mut self, len: usize) -> &[u8] {
        self.on_input(len, Self::step_actions_inner)
    }

    /// `wasmgym_playout` on request bytes: the prefix, what was asked about the state it reaches,
    /// then a rollout from there.
    pub fn playout_bytes(&mut self, input: &[u8]) -> &[u8] {
        let result = self.playout_inner(input);
        self.finish(result)
    }

    /// `wasmgym_playout` on the first `len` bytes of the input buffer.
    pub fn playout_from_input(&mut self, len: usize) -> &[u8] {
        self.on_input(len, Self::playout_inner)
    }

    /// A prefix and a rollout in one (typed form of the `wasmgym_playout` call; a native baseline).
    pub fn playout(&mut self, request: &PlayoutRequest) -> Result<Playout, StepError> {
        let mut input = Vec::new();
        request.encode(&mut input);
        let result = self.playout_inner(&input);
        self.finish(result);
        match Status::from_byte(self.out[0]) {
            Some(Status::Ok) => Ok(Playout::decode(&self.out[1..]).expect("the runner encodes playouts itself")),
            status => Err(StepError {
                status: status.unwrap_or(Status::GuestError),
                message: String::from_utf8_lossy(&self.out[1..]).into_owned(),
            }),
        }
    }

    /// `call` on the first `len` bytes of the input buffer, its result as output.
    fn on_input(&mut self, len: usize, call: fn(&mut Self, &[u8]) -> Result<(), Refusal>) -> &[u8] {
        let input = std::mem::take(&mut self.input);
        let result = call(self, &input[..len.min(input.len())]);
        self.input = input;
        self.finish(result)
    }

    /// `wasmgym_legal_actions`: none before reset or after the episode ended.
    pub fn legal_actions_bytes(&mut self) -> &[u8] {
        self.out.clear();
        self.out.push(Status::Ok as u8);
        let actions = match &self.env {
            Some(env) if !self.over => env.legal_actions(),
            _ => Vec::new(),
        };
        wire::encode_legal_actions(&mut self.out, &actions);
        &self.out
    }

    /// `wasmgym_rollout`: a random playout from `seed` of at most `max_steps` steps after the
    /// discrete action `first` (if any).
    pub fn rollout_bytes(&mut self, seed: u64, max_steps: u32, first: Option<i64>) -> &[u8] {
        let result = self.rollout_inner(seed, max_steps, first.map(Action::Discrete).as_ref());
        self.finish(result)
    }

    /// `wasmgym_text_actions`: the valid commands of a text action space (none before reset or
    /// after the episode ended).
    pub fn text_actions_bytes(&mut self) -> &[u8] {
        self.out.clear();
        self.out.push(Status::Ok as u8);
        let actions = match &self.env {
            Some(env) if !self.over => env.valid_text_actions(),
            _ => Vec::new(),
        };
        wire::encode_text_actions(&mut self.out, &actions);
        &self.out
    }

    /// `wasmgym_observe`: the current observation, encoded as `step` encodes it.
    pub fn observe_bytes(&mut self) -> &[u8] {
        self.out.clear();
        match &self.env {
            Some(env) => {
                self.out.push(Status::Ok as u8);
                env.observation().encode(&mut self.out);
            }
            None => {
                self.out.push(Status::BadRequest as u8);
                self.out.extend_from_slice(b"observe called before reset: call reset first");
            }
        }
        &self.out
    }

    /// `wasmgym_state_key`: the author's game-state key, if any (none before reset).
    pub fn state_key_bytes(&mut self) -> &[u8] {
        self.out.clear();
        self.out.push(Status::Ok as u8);
        let key = self.env.as_ref().and_then(|env| env.state_key());
        wire::encode_state_key(&mut self.out, key.as_deref());
        &self.out
    }

    /// `wasmgym_render`: the author's text rendering.
    pub fn render_bytes(&mut self) -> &[u8] {
        self.out.clear();
        match &self.env {
            Some(env) => {
                self.out.push(Status::Ok as u8);
                self.out.extend_from_slice(env.render().as_bytes());
            }
            None => {
                self.out.push(Status::BadRequest as u8);
                self.out.extend_from_slice(b"render called before reset: call reset first");
            }
        }
        &self.out
    }

    fn finish(&mut self, result: Result<(), Refusal>) -> &[u8] {
        if let Err((status, message)) = result {
            self.out.clear();
            self.out.push(status as u8);
            self.out.extend_from_slice(message.as_bytes());
        }
        &self.out
    }

    fn reset_inner(&mut self, input: &[u8]) -> Result<(), Refusal> {
        // A refused reset changes nothing: not even the generator it reseeded and drew from.
        let saved = self.rng.saved();
        let env = self.new_episode(input).inspect_err(|_| self.rng = saved)?;
        self.env = Some(env);
        self.steps = 0;
        self.over = false;
        self.write_transition(&[], false, false)
    }

    /// The environment a reset request starts, or the refusal.
    fn new_episode(&mut self, input: &[u8]) -> Result<E, Refusal> {
        let req = ResetRequest::decode(input).map_err(|e| (Status::BadRequest, e.0))?;
        if let Some(seed) = req.seed {
            self.rng.reseed(seed);
        }
        let options = match req.options.trim() {
            "" => Options::Null,
            text => serde_json::from_str(text).map_err(|e| {
                (Status::BadRequest, format!("reset options are not valid JSON ({e}): pass a JSON object"))
            })?,
        };
        let carry = options.get("carry").and_then(Options::as_bool) == Some(true);
        match &self.env {
            Some(previous) if carry => E::continue_from(previous, &mut self.rng, &options),
            _ => E::reset(&mut self.rng, &options),
        }
        .map_err(|e| refusal(e, Status::BadRequest))
    }

    fn step_inner(&mut self, input: &[u8]) -> Result<(), Refusal> {
        self.check_running("step")?;
        let action = Action::decode(input).map_err(|e| (Status::BadRequest, e.0))?;
        let (rewards, terminated, truncated) = self.apply(&action, true)?;
        self.write_transition(&rewards, terminated, truncated)
    }

    fn step_actions_inner(&mut self, input: &[u8]) -> Result<(), Refusal> {
        self.step_inner(input)?;
        let mut legal = std::mem::take(&mut self.legal);
        legal.clear();
        if let Some(env) = self.env.as_ref().filter(|_| !self.over) {
            env.legal_actions_into(&mut legal);
        }
        wire::encode_step_actions(&mut self.out, &legal);
        self.legal = legal;
        Ok(())
    }

    /// Refuses `call` before reset and after the episode ended.
    fn check_running(&self, call: &str) -> Result<(), Refusal> {
        if self.env.is_none() {
            return Err((Status::BadRequest, format!("{call} called before reset: call reset first")));
        }
        if self.over {
            return Err((Status::BadRequest, "the episode is over (terminated or truncated): call reset".into()));
        }
        Ok(())
    }

    /// Validates and applies one action of a running episode: the bookkeeping of `step` without
    /// encoding anything. `check_legal` false skips the legal-set query (for actions picked from
    /// that set); the action space is checked either way. Returns the rewards and whether the
    /// episode terminated or was truncated.
    fn apply(&mut self, action: &Action, check_legal: bool) -> Result<(crate::Rewards, bool, bool), Refusal> {
        self.apply_with(action, check_legal, |t, truncated| (t.rewards, t.terminated, truncated))
    }

    /// [`Runner::apply`], handing the transition and whether it truncated to `f` instead of
    /// returning them (a rollout adds the rewards up where they are, with no copy).
    fn apply_with<R>(
        &mut self,
        action: &Action,
        check_legal: bool,
        f: impl FnOnce(crate::Transition, bool) -> R,
    ) -> Result<R, Refusal> {
        let env = self.env.as_mut().expect("checked by the caller");
        let legal = |out: &mut Vec<i64>| env.legal_actions_into(out);
        check_action(&self.spec.action_space, action, check_legal.then_some(&mut self.legal), legal)
            .map_err(|m| (Status::IllegalAction, m))?;
        let t = env.step(action, &mut self.rng).map_err(|e| refusal(e, Status::IllegalAction))?;
        if t.rewards.len() != self.spec.players as usize {
            return Err((
                Status::GuestError,
                format!(
                    "step returned {} rewards for {} players: return one per player",
                    t.rewards.len(),
                    self.spec.players
                ),
            ));
        }
        self.steps += 1;
        // Gymnasium's TimeLimit: truncated on the limit step, whether or not it also terminated.
        let truncated = self.spec.max_episode_steps.is_some_and(|m| self.steps >= m);
        self.over = t.terminated || truncated;
        Ok(f(t, truncated))
    }

    /// Who moves now, or `None` once the episode is over.
    fn player(&self) -> Option<u32> {
        self.env.as_ref().filter(|_| !self.over).map(|env| env.current_player())
    }

    fn rollout_inner(&mut self, seed: u64, max_steps: u32, first: Option<&Action>) -> Result<(), Refusal> {
        self.check_running("rollout")?;
        let mut returns = self.zeroed_returns();
        let mut tally = Tally { returns: &mut returns, ..Tally::default() };
        let outcome = (|| {
            if let Some(first) = first {
                self.apply_with(first, true, |t, truncated| tally.add(&t.rewards, t.terminated, truncated))?; // refused: nothing changed
            }
            let after_first = self.player();
            self.play_out(&mut tally, seed, max_steps)?;
            Ok(after_first)
        })();
        if let Ok(after_first) = outcome {
            self.out.clear();
            self.out.push(Status::Ok as u8);
            tally.rollout(after_first, self.player()).encode(&mut self.out);
        }
        self.scratch.returns = returns;
        outcome.map(drop)
    }

    /// The returns buffer, taken out of the scratch space, holding a zero per player.
    fn zeroed_returns(&mut self) -> Vec<f64> {
        let mut returns = std::mem::take(&mut self.scratch.returns);
        returns.clear();
        returns.resize(self.spec.players as usize, 0.0);
        returns
    }

    fn playout_inner(&mut self, input: &[u8]) -> Result<(), Refusal> {
        let mut request = std::mem::take(&mut self.scratch.request);
        let mut returns = self.zeroed_returns();
        let outcome = request
            .decode_from(input)
            .map_err(|e| (Status::BadRequest, e.0))
            .and_then(|()| self.serve_playout(&request, &mut returns));
        self.scratch.request = request;
        self.scratch.returns = returns;
        outcome
    }

    /// A decoded `wasmgym_playout`, encoded into the output; `returns` holds a zero per player.
    fn serve_playout(&mut self, request: &PlayoutRequest, returns: &mut [f64]) -> Result<(), Refusal> {
        self.check_running("playout")?;
        if matches!(self.spec.action_space, Space::Text { .. }) {
            let fix = "playouts take discrete actions: use wasmgym_rollout for a text action space";
            return Err((Status::BadRequest, fix.into()));
        }
        let mut prefix_rewards = std::mem::take(&mut self.scratch.prefix_rewards);
        prefix_rewards.clear();
        prefix_rewards.resize(returns.len(), 0.0);
        let n = request.prefix.len();
        for (i, &action) in request.prefix.iter().enumerate() {
            if self.over {
                let message = format!(
                    "the episode ended after prefix action {i} of {n}: send a prefix that ends no sooner than its last action"
                );
                return Err((Status::BadRequest, message));
            }
            let stepped = self.apply_with(&Action::Discrete(action), !request.listed, |t, _| {
                prefix_rewards.copy_from_slice(&t.rewards);
            });
            stepped.map_err(|(status, message)| {
                (status, format!("prefix action {} of {n} ({action}): {message}", i + 1))
            })?;
        }
        let player = self.player();
        let mut listed = std::mem::take(&mut self.scratch.listed);
        listed.clear();
        if request.legal_actions
            && let Some(env) = self.env.as_ref().filter(|_| !self.over)
        {
            env.legal_actions_into(&mut listed);
        }
        let key = match request.state_key {
            true => Some(self.env.as_ref().and_then(|env| env.state_key())),
            false => None,
        };
        let mut tally = Tally { returns, ..Tally::default() };
        let mut first = request.first;
        let outcome = (|| {
            let mut after_first = player;
            if let Some(action) = request.first {
                if self.over {
                    let message = "the episode is over after the prefix: ask for no first action".to_string();
                    return Err((Status::BadRequest, message));
                }
                self.apply_with(&Action::Discrete(action), !request.listed, |t, truncated| {
                    tally.add(&t.rewards, t.terminated, truncated)
                })
                .map_err(|(status, message)| (status, format!("first action {action}: {message}")))?;
                after_first = self.player();
            }
            let picked = self.play_out(&mut tally, request.seed, request.max_steps)?;
            if let Some((Action::Discrete(action), after)) = picked.filter(|_| request.first.is_none()) {
                first = Some(action);
                after_first = after;
            }
            Ok(after_first)
        })();
        if let Ok(after_first) = outcome {
            let playout = PlayoutRef {
                player,
                prefix_rewards: &prefix_rewards,
                legal_actions: request.legal_actions.then_some(&listed[..]),
                state_key: key.as_ref().map(|key| key.as_deref()),
                first,
                rollout: tally.rollout(after_first, self.player()),
            };
            self.out.clear();
            self.out.push(Status::Ok as u8);
            playout.encode(&mut self.out);
        }
        self.scratch.prefix_rewards = prefix_rewards;
        self.scratch.listed = listed;
        outcome.map(drop)
    }

    /// The random part of a rollout: up to `max_steps` actions picked among the listed ones by a
    /// generator seeded with `seed`. Returns the first action picked and who moves after it.
    fn play_out(
        &mut self,
        tally: &mut Tally,
        seed: u64,
        max_steps: u32,
    ) -> Result<Option<(Action, Option<u32>)>, Refusal> {
        let mut legal = std::mem::take(&mut self.legal);
        let outcome = self.play_out_with(tally, seed, max_steps, &mut legal);
        self.legal = legal;
        outcome
    }

    fn play_out_with(
        &mut self,
        tally: &mut Tally,
        seed: u64,
        max_steps: u32,
        legal: &mut Vec<i64>,
    ) -> Result<Option<(Action, Option<u32>)>, Refusal> {
        // A local generator, which the compiler can keep in registers across the loop.
        let rng = &mut wasmgym_abi::rng::Rng::seed_from_u64(seed);
        let text = matches!(self.spec.action_space, Space::Text { .. });
        let mut first = None;
        for _ in 0..max_steps {
            let Some(env) = self.env.as_ref().filter(|_| !self.over) else { break };
            let action = match text {
                true => {
                    let mut texts = env.valid_text_actions();
                    if texts.is_empty() {
                        break;
                    }
                    Action::Text(texts.swap_remove(wire::rollout_pick(rng, texts.len())))
                }
                false => {
                    env.legal_actions_into(legal);
                    if legal.is_empty() {
                        break;
                    }
                    Action::Discrete(legal[wire::rollout_pick(rng, legal.len())])
                }
            };
            let stepped =
                self.apply_with(&action, false, |t, truncated| tally.add(&t.rewards, t.terminated, truncated));
            stepped.map_err(|(_, message)| {
                let listed = if matches!(action, Action::Text(_)) { "valid_text_actions" } else { "legal_actions" };
                let fix = format!("{listed} must list only actions that step accepts");
                (Status::GuestError, format!("the rollout's action {action} was refused ({message}): {fix}"))
            })?;
            if first.is_none() {
                first = Some((action, self.player()));
            }
        }
        Ok(first)
    }

    fn write_transition(&mut self, rewards: &[f64], terminated: bool, truncated: bool) -> Result<(), Refusal> {
        let env = self.env.as_ref().expect("called after an episode started");
        self.obs.clear();
        env.observation().encode(&mut self.obs);
        let info = match env.info() {
            Options::Null => String::new(),
            info => info.to_string(),
        };
        let player = (!self.over).then(|| env.current_player());
        self.out.clear();
        self.out.push(Status::Ok as u8);
        wire::encode_transition(&mut self.out, player, terminated, truncated, rewards, &self.obs, &info);
        Ok(())
    }
}

/// The status an author's error gets: `caller_status` for the caller's mistakes, else a guest error.
/// What a rollout adds up as it steps; its returns live in the runner's scratch space.
#[derive(Default)]
struct Tally<'a> {
    steps: u32,
    terminated: bool,
    truncated: bool,
    returns: &'a mut [f64],
}

impl Tally<'_> {
    /// Counts one step: its rewards join the returns.
    #[inline]
    fn add(&mut self, rewards: &[f64], terminated: bool, truncated: bool) {
        self.steps += 1;
        self.terminated = terminated;
        self.truncated = truncated;
        self.returns.iter_mut().zip(rewards.iter()).for_each(|(sum, r)| *sum += r);
    }

    /// The rollout this tally makes, given who moves after its first step and at its end.
    fn rollout(&self, after_first: Option<u32>, current_player: Option<u32>) -> RolloutRef<'_> {
        RolloutRef {
            steps: self.steps,
            after_first,
            current_player,
            terminated: self.terminated,
            truncated: self.truncated,
            returns: self.returns,
        }
    }
}

/// Buffers the rollout and playout calls reuse, reserved when the runner is made: a guest's heap
/// is part of every snapshot, so a buffer that grew only after one would grow again after every
/// restore to it.
#[derive(Default)]
struct Scratch {
    /// Each player's returns of a rollout.
    returns: Vec<f64>,
    /// Each player's rewards for a playout's last prefix step.
    prefix_rewards: Vec<f64>,
    /// The legal actions after a playout's prefix.
    listed: Vec<i64>,
    /// The playout request being served.
    request: PlayoutRequest,
}

impl Scratch {
    fn for_spec(spec: &EnvSpec) -> Scratch {
        let players = spec.players as usize;
        let actions = match spec.action_space {
            Space::Discrete { n } => n.min(1024) as usize,
            _ => 0,
        };
        Scratch {
            returns: Vec::with_capacity(players),
            prefix_rewards: Vec::with_capacity(players),
            listed: Vec::with_capacity(actions),
            request: PlayoutRequest { prefix: Vec::with_capacity(32), ..PlayoutRequest::default() },
        }
    }
}

fn refusal(e: crate::EnvError, caller_status: Status) -> Refusal {
    match e.fault {
        crate::Fault::Caller => (caller_status, e.message),
        crate::Fault::Environment => (Status::GuestError, e.message),
    }
}

/// Checks an action against the action space and, for discrete spaces when given a buffer, the
/// legal set (`legal` lists it into the buffer).
fn check_action(
    space: &Space,
    action: &Action,
    buffer: Option<&mut Vec<i64>>,
    legal: impl FnOnce(&mut Vec<i64>),
) -> Result<(), String> {
    match (space, action) {
        (Space::Discrete { n }, Action::Discrete(a)) => {
            if u64::try_from(*a).map_or(true, |a| a >= *n) {
                return Err(format!("action {a} is outside the action space Discrete({n})"));
            }
            let Some(buffer) = buffer else { return Ok(()) };
            legal(buffer);
            if buffer.contains(a) {
                Ok(())
            } else {
                Err(format!("action {a} is not legal in this state; legal actions: {buffer:?}"))
            }
        }
        (Space::Text { max_length, charset }, Action::Text(s)) => check_text(s, *max_length, charset.as_deref()),
        (space, action) => Err(format!("action {action} does not fit the action space {space:?}")),
    }
}

#[cfg(test)]
mod tests {
    use wasmgym_abi::{Determinism, Dtype, Observation};

    use super::*;
    use crate::{EnvError, Transition};

    /// Draws a number at reset; refuses `{"refuse": true}` after drawing.
    struct Draw(i64);

    impl Environment for Draw {
        fn spec() -> EnvSpec {
            EnvSpec {
                name: "draw".into(),
                version: 1,
                players: 1,
                observation_space: Space::uniform_box(Dtype::I32, &[1], 0.0, 1000.0),
                action_space: Space::Discrete { n: 1 },
                reward_range: (0.0, 0.0),
                max_episode_steps: None,
                determinism: Determinism::Stochastic,
                tools: vec![],
            }
        }

        fn reset(rng: &mut Rng, options: &Options) -> Result<Self, EnvError> {
            let drawn = (rng.next_u64() % 1000) as i64;
            if options.get("refuse").is_some() {
                return Err(EnvError::caller("refused after drawing"));
            }
            Ok(Draw(drawn))
        }

        fn observation(&self) -> Observation {
            Observation::I32(vec![self.0 as i32])
        }

        fn step(&mut self, _action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
            Ok(Transition::reward(0.0))
        }
    }

    #[test]
    fn a_refused_reset_leaves_the_generator_and_the_episode_as_they_were() {
        let mut plain = Runner::<Draw>::new();
        plain.reset(Some(7), "").unwrap();
        let want = plain.reset(None, "").unwrap();

        let mut refused = Runner::<Draw>::new();
        refused.reset(Some(7), "").unwrap();
        let before = refused.env().unwrap().0;
        for options in [r#"{"refuse": true}"#, "not json"] {
            let e = refused.reset(Some(99), options).unwrap_err();
            assert_eq!(e.status, Status::BadRequest, "{e:?}");
            assert_eq!(refused.env().unwrap().0, before, "the episode changed");
        }
        assert_eq!(refused.reset(None, "").unwrap(), want, "the refused resets moved the generator");
    }
}
