//! [`CompositeModule`] (the compiled parts of a wiring, shareable) and [`Composite`] (one live
//! episode of all of them, which snapshots, restores, forks and hashes as one).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wasmgym::{Checker, CheckerModule, Env, EnvModule, Limits, Observation, Runtime, Snapshot, SnapshotKey, Space};
use wasmgym_abi::Tool;
use wasmgym_abi::rng::Rng;

use crate::call::{AgentAction, check_args};
use crate::wiring::{Channel, Wiring};
use crate::{Error, Message};

/// A simulated user on the host (for example an LLM): called with the conversation so far, it
/// gives the user's next words. It must be a function of what it is given (the seed the host
/// drew for it, the reset options and the transcript), so that a composite that forks or
/// restores replays exactly: the host records its replies in the transcript and never asks again
/// for a turn already answered.
pub type UserFn = Arc<dyn Fn(&UserTurn) -> Result<UserReply, String> + Send + Sync>;

/// What a host-callback user is shown.
#[derive(Clone, Debug)]
pub struct UserTurn<'a> {
    /// The part's name in the wiring.
    pub part: &'a str,
    /// The seed the host drew for this part at reset.
    pub seed: u64,
    /// The reset options (the task), as given to every part.
    pub options: Option<&'a str>,
    /// The whole conversation so far; the last message is the one to answer (empty at reset,
    /// when the user opens).
    pub transcript: &'a [Message],
}

/// A host-callback user's words.
#[derive(Clone, Debug, PartialEq)]
pub struct UserReply {
    /// What the user says (empty: nothing).
    pub text: String,
    /// The user ends the conversation.
    pub done: bool,
}

/// The compiled modules of a [`Wiring`]: loaded once, instantiated as often as needed. Cloning
/// is cheap and clones share the compiled code.
#[derive(Clone)]
pub struct CompositeModule {
    inner: Arc<Inner>,
    /// One per part: the host callback of a part without a module.
    callbacks: Vec<Option<UserFn>>,
}

struct Inner {
    wiring: Wiring,
    /// One per part: the module, or `None` for a host callback.
    modules: Vec<Option<EnvModule>>,
    /// Which part answers each tool, in the parts' order.
    tools: Vec<(Tool, usize)>,
    checker: Option<(CheckerModule, usize)>,
    /// The wiring and every module's hash: a snapshot restores only into the same composite.
    hash: [u8; 32],
}

impl CompositeModule {
    /// Loads every module of `wiring`, asking `bytes_of` for the bytes of each module name (a
    /// built-in name or a path, as the caller resolves them). Each part must take and give text
    /// (its actions are messages and calls, its observations replies); tool names must be unique
    /// across the parts that answer calls.
    pub fn load(
        runtime: &Runtime,
        wiring: Wiring,
        bytes_of: &dyn Fn(&str) -> Result<Vec<u8>, String>,
    ) -> Result<CompositeModule, Error> {
        wiring.validate().map_err(Error::Wiring)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"wasmgym composite 1");
        hasher.update(serde_json::to_string(&wiring).expect("a wiring is JSON").as_bytes());
        let mut modules = Vec::new();
        let mut tools: Vec<(Tool, usize)> = Vec::new();
        for (i, part) in wiring.parts.iter().enumerate() {
            let Some(name) = &part.module else {
                modules.push(None);
                hasher.update(&[0; 32]);
                continue;
            };
            let bytes = bytes_of(name).map_err(|e| Error::Wiring(format!("part {}: {e}", part.name)))?;
            let module = runtime.load(&bytes).map_err(|source| Error::Part { part: part.name.clone(), source })?;
            let spec = module.spec();
            for (what, space) in [("action", &spec.action_space), ("observation", &spec.observation_space)] {
                if !matches!(space, Space::Text { .. }) {
                    return Err(Error::Wiring(format!(
                        "part {}: module {} has a non-text {what} space; the parts of a composite take messages and \
                         tool calls and answer in text",
                        part.name, spec.name
                    )));
                }
            }
            if part.hears.contains(&Channel::ToolCalls) {
                for tool in &spec.tools {
                    if let Some((_, j)) = tools.iter().find(|(t, _)| t.name == tool.name) {
                        return Err(Error::Wiring(format!(
                            "tool {} is declared by both part {} and part {}: tool names must be unique",
                            tool.name, wiring.parts[*j].name, part.name
                        )));
                    }
                    tools.push((tool.clone(), i));
                }
            }
            hasher.update(&module.hash());
            modules.push(Some(module));
        }
        let checker = match &wiring.checker {
            None => None,
            Some(spec) => {
                let bytes = bytes_of(&spec.module).map_err(|e| Error::Wiring(format!("checker: {e}")))?;
                hasher.update(blake3::hash(&bytes).as_bytes());
                let module =
                    runtime.load_checker(&bytes).map_err(|source| Error::Part { part: "checker".into(), source })?;
                let part = wiring.parts.iter().position(|p| p.name == spec.part).expect("validated");
                Some((module, part))
            }
        };
        let callbacks = vec![None; wiring.parts.len()];
        let inner = Inner { wiring, modules, tools, checker, hash: *hasher.finalize().as_bytes() };
        Ok(CompositeModule { inner: Arc::new(inner), callbacks })
    }

    /// Supplies the host callback of a part the wiring gives no module (`"module": null`).
    pub fn set_user(&mut self, part: &str, user: UserFn) -> Result<(), Error> {
        let index = self.inner.wiring.parts.iter().position(|p| p.name == part && p.module.is_none());
        let Some(index) = index else {
            return Err(Error::Wiring(format!("no part {part:?} without a module: only those take a host callback")));
        };
        self.callbacks[index] = Some(user);
        Ok(())
    }

    /// The wiring.
    pub fn wiring(&self) -> &Wiring {
        &self.inner.wiring
    }

    /// Every tool the agent may call, in the parts' order.
    pub fn tools(&self) -> Vec<Tool> {
        self.inner.tools.iter().map(|(t, _)| t.clone()).collect()
    }

    /// The hash of the wiring and its modules (snapshots carry it).
    pub fn hash(&self) -> [u8; 32] {
        self.inner.hash
    }

    /// A live composite, each module part an instance under `limits`.
    pub fn instantiate(&self, limits: Limits) -> Result<Composite, Error> {
        let mut parts = Vec::new();
        for (i, spec) in self.inner.wiring.parts.iter().enumerate() {
            parts.push(match &self.inner.modules[i] {
                Some(module) => Some(
                    module
                        .instantiate_with(limits.clone())
                        .map_err(|source| Error::Part { part: spec.name.clone(), source })?,
                ),
                None if self.callbacks[i].is_none() => {
                    return Err(Error::Wiring(format!(
                        "part {} is a host callback: supply it with CompositeModule::set_user first",
                        spec.name
                    )));
                }
                None => None,
            });
        }
        Ok(Composite { module: self.clone(), parts, checker: None, limits, state: State::default() })
    }
}

/// Where an episode is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    #[default]
    NotStarted,
    Running,
    Over,
    /// A part failed (trap, limit, a callback's error): the episode ended without a result.
    Failed(String),
}

/// The host's part of a composite's state: everything that is not in a module. Plain data,
/// snapshotted with the parts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct State {
    phase: Phase,
    options: Option<String>,
    /// The seed the host drew for each part at reset.
    seeds: Vec<u64>,
    transcript: Vec<Message>,
    /// The bytes of every message's text in `transcript`.
    transcript_bytes: u64,
    turns: u32,
    reward: f64,
    terminated: bool,
    truncated: bool,
    score: Option<EpisodeScore>,
}

impl State {
    /// Adds `message` to the transcript.
    fn record(&mut self, message: Message) {
        self.transcript_bytes += message.text.len() as u64;
        self.transcript.push(message);
    }
}

/// The checker's score of an episode's end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeScore {
    /// In [0, 1].
    pub score: f64,
    /// The checker's explanation.
    pub message: String,
}

/// What one reset or step of a composite gives the agent.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The replies and notes addressed to the agent, in order.
    pub messages: Vec<Message>,
    /// This step's reward: the parts' rewards for player 0, plus the checker's score at the end.
    pub reward: f64,
    /// A part reached a terminal state (the user ended the conversation, the task was answered).
    pub terminated: bool,
    /// The episode was cut short (`max_turns`, or a part's own step limit).
    pub truncated: bool,
    /// At the end of an episode with a checker: its score.
    pub score: Option<EpisodeScore>,
}

impl Step {
    /// The messages as one text, each line `from: text`: the observation for a text-only agent.
    pub fn observation(&self) -> String {
        render(&self.messages)
    }

    /// Whether the episode ended.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// Messages as text, one `from: text` per message.
pub fn render(messages: &[Message]) -> String {
    messages.iter().map(|m| format!("{}: {}", m.from, m.text)).collect::<Vec<_>>().join("\n")
}

/// One live composite episode: an instance of every module part, the host callbacks, and the
/// conversation. Owns its instances; [`Composite::fork`] makes an independent copy.
pub struct Composite {
    module: CompositeModule,
    /// One per part; `None` for a host callback.
    parts: Vec<Option<Env>>,
    checker: Option<Checker>,
    limits: Limits,
    state: State,
}

/// A composite's complete state: every part's snapshot and the conversation. Plain data.
#[derive(Clone, Debug)]
pub struct CompositeSnapshot {
    hash: [u8; 32],
    parts: Vec<Option<Snapshot>>,
    state: State,
}

/// A part's reply to one delivery.
struct Reply {
    text: String,
    reward: f64,
    terminated: bool,
    truncated: bool,
}

impl Composite {
    /// The module this composite was instantiated from.
    pub fn module(&self) -> &CompositeModule {
        &self.module
    }

    /// Every tool the agent may call.
    pub fn tools(&self) -> Vec<Tool> {
        self.module.tools()
    }

    /// The conversation so far, the agent's actions and the host's notes included.
    pub fn transcript(&self) -> &[Message] {
        &self.state.transcript
    }

    /// Agent actions taken in this episode.
    pub fn turns(&self) -> u32 {
        self.state.turns
    }

    /// The episode's total reward so far.
    pub fn total_reward(&self) -> f64 {
        self.state.reward
    }

    /// The checker's score, once an episode with a checker has ended.
    pub fn score(&self) -> Option<&EpisodeScore> {
        self.state.score.as_ref()
    }

    /// Whether an action can be taken.
    pub fn is_running(&self) -> bool {
        self.state.phase == Phase::Running
    }

    /// The commands the module parts list as valid now (their `valid_text_actions`; for the
    /// support desk, useful tool calls), in the parts' order without repeats: what a search tries
    /// when the caller proposes nothing.
    pub fn valid_actions(&mut self) -> Result<Vec<String>, Error> {
        let mut out: Vec<String> = Vec::new();
        for (i, part) in self.parts.iter_mut().enumerate() {
            let Some(env) = part else { continue };
            let listed = env.text_actions().map_err(|source| self.module.part_error(i, source))?;
            for action in listed.unwrap_or_default() {
                if !out.contains(&action) {
                    out.push(action);
                }
            }
        }
        Ok(out)
    }

    /// The instance of a module part, by name (to render it, or query it in a test).
    pub fn part(&mut self, name: &str) -> Option<&mut Env> {
        let index = self.module.inner.wiring.parts.iter().position(|p| p.name == name)?;
        self.parts[index].as_mut()
    }

    /// Starts an episode: draws a seed per part from the host RNG seeded with `seed`, resets every
    /// part with it and the same `options` (the task), and gives the agent what they open with.
    /// A part left unusable by an earlier failure is replaced by a fresh instance first. If a part
    /// refuses the options, no episode runs: reset again with options every part accepts.
    pub fn reset(&mut self, seed: u64, options: Option<&str>) -> Result<Step, Error> {
        let inner = self.module.inner.clone();
        for (i, part) in self.parts.iter_mut().enumerate() {
            if let Some(env) = part
                && env.is_poisoned()
            {
                let module = inner.modules[i].as_ref().expect("a module part");
                *env = module
                    .instantiate_with(self.limits.clone())
                    .map_err(|source| Error::Part { part: inner.wiring.parts[i].name.clone(), source })?;
            }
        }
        let mut rng = Rng::seed_from_u64(seed);
        let seeds: Vec<u64> = inner.wiring.parts.iter().map(|_| rng.next_u64()).collect();
        self.state = State { phase: Phase::Running, options: options.map(str::to_string), seeds, ..State::default() };
        let mut step = self.empty_step();
        for i in 0..self.parts.len() {
            let reply = match self.reset_part(i, options) {
                Ok(reply) => reply,
                Err(Error::Part { part, source }) if is_refusal(&source) => {
                    // The options were refused: no episode runs (the parts before may have reset).
                    self.state.phase = Phase::NotStarted;
                    return Err(Error::Part { part, source });
                }
                Err(e) => return Err(self.fail(e)),
            };
            self.receive(i, reply, &mut step)?;
        }
        self.finish(step)
    }

    /// Takes the agent's action: a tool call goes to the part declaring the tool, a message to
    /// every part that hears messages (and what a user says then to the parts that hear user
    /// replies). An action that is not a valid call (unknown tool, bad arguments, refused by
    /// the part) is answered by a note from `"host"` and costs a turn; a part that fails (trap,
    /// limit) ends the episode with [`Error::Part`].
    pub fn step(&mut self, action: &str) -> Result<Step, Error> {
        match &self.state.phase {
            Phase::Running => {}
            Phase::NotStarted => return Err(Error::NotRunning("no episode has started: call reset".into())),
            Phase::Over => return Err(Error::NotRunning("the episode is over: call reset".into())),
            Phase::Failed(why) => {
                return Err(Error::NotRunning(format!(
                    "the episode ended with an error ({why}): call reset or restore a snapshot"
                )));
            }
        }
        let inner = self.module.inner.clone();
        self.state.turns += 1;
        let mut step = self.empty_step();
        match AgentAction::parse(action) {
            Err(why) => self.note("host", action, &why, &mut step),
            Ok(AgentAction::Call { tool, args }) => match inner.tools.iter().find(|(t, _)| t.name == tool) {
                None => {
                    let names: Vec<&str> = inner.tools.iter().map(|(t, _)| t.name.as_str()).collect();
                    let why = if names.is_empty() {
                        format!("unknown tool {tool:?}: there are no tools here; write a message instead")
                    } else {
                        format!("unknown tool {tool:?}; the tools are: {}", names.join(", "))
                    };
                    self.note("host", action, &why, &mut step);
                }
                Some((spec, part)) => match check_args(spec, &args) {
                    Err(why) => self.note("host", action, &why, &mut step),
                    Ok(()) => self.deliver(*part, "agent", &AgentAction::call_text(&tool, &args), &mut step)?,
                },
            },
            Ok(AgentAction::Message(text)) => {
                let hearers = self.hearers(Channel::Messages);
                if hearers.is_empty() {
                    let why = "nobody hears messages here: call a tool ({\"tool\": NAME, \"args\": {...}})";
                    self.note("host", action, why, &mut step);
                }
                for i in hearers {
                    self.deliver(i, "agent", &text, &mut step)?;
                }
            }
        }
        if self.state.turns >= inner.wiring.max_turns {
            step.truncated = true;
        }
        self.finish(step)
    }

    /// An independent composite in the same state: every part forked, the conversation copied.
    pub fn fork(&mut self) -> Result<Composite, Error> {
        let mut parts = Vec::with_capacity(self.parts.len());
        for (i, part) in self.parts.iter_mut().enumerate() {
            parts.push(match part {
                Some(env) => Some(env.fork().map_err(|source| self.module.part_error(i, source))?),
                None => None,
            });
        }
        Ok(Composite {
            module: self.module.clone(),
            parts,
            checker: None,
            limits: self.limits.clone(),
            state: self.state.clone(),
        })
    }

    /// The complete state: every part's snapshot and the conversation.
    pub fn snapshot(&mut self) -> Result<CompositeSnapshot, Error> {
        let mut parts = Vec::with_capacity(self.parts.len());
        for (i, part) in self.parts.iter_mut().enumerate() {
            parts.push(match part {
                Some(env) => Some(env.snapshot().map_err(|source| self.module.part_error(i, source))?),
                None => None,
            });
        }
        Ok(CompositeSnapshot { hash: self.module.hash(), parts, state: self.state.clone() })
    }

    /// Returns every part and the conversation to `snapshot`. A snapshot of another composite
    /// (other wiring or modules) is refused before anything changes.
    pub fn restore(&mut self, snapshot: &CompositeSnapshot) -> Result<(), Error> {
        if snapshot.hash != self.module.hash() || snapshot.parts.len() != self.parts.len() {
            return Err(Error::Snapshot(format!(
                "the snapshot is of another composite (wiring or modules differ): restore it into an instance of \
                 the composite it was taken from ({})",
                self.module.inner.wiring.name
            )));
        }
        let mut changed = false;
        for (i, (part, snap)) in self.parts.iter_mut().zip(&snapshot.parts).enumerate() {
            match (part, snap) {
                (Some(env), Some(snap)) => {
                    if let Err(source) = env.restore(snap) {
                        // A refused snapshot changes nothing: before any part has changed, the
                        // composite has not either.
                        if changed || !matches!(source, wasmgym::Error::BadSnapshot { .. }) {
                            self.state.phase = Phase::Failed(format!("a restore failed: {source}"));
                        }
                        return Err(self.module.part_error(i, source));
                    }
                    changed = true;
                }
                (None, None) => {}
                _ => return Err(Error::Snapshot("the snapshot's parts do not match the wiring".into())),
            }
        }
        self.state = snapshot.state.clone();
        Ok(())
    }

    /// A hash of the complete state (every part's machine state and the conversation): equal
    /// hashes mean equal futures under equal actions.
    pub fn state_hash(&mut self) -> Result<[u8; 32], Error> {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.module.hash());
        for (i, part) in self.parts.iter_mut().enumerate() {
            match part {
                Some(env) => hasher.update(&env.state_hash().map_err(|source| self.module.part_error(i, source))?),
                None => hasher.update(&[0; 32]),
            };
        }
        hasher.update(serde_json::to_string(&self.state).expect("the state is JSON").as_bytes());
        Ok(*hasher.finalize().as_bytes())
    }

    fn empty_step(&self) -> Step {
        Step { messages: Vec::new(), reward: 0.0, terminated: false, truncated: false, score: None }
    }

    /// Indices of the parts that hear `channel`.
    fn hearers(&self, channel: Channel) -> Vec<usize> {
        let parts = &self.module.inner.wiring.parts;
        (0..parts.len()).filter(|&i| parts[i].hears.contains(&channel)).collect()
    }

    /// Records a refused action and the host's note on it.
    fn note(&mut self, to: &str, action: &str, why: &str, step: &mut Step) {
        self.state.record(Message { from: "agent".into(), to: to.into(), text: action.into() });
        let note = Message { from: "host".into(), to: "agent".into(), text: why.into() };
        self.state.record(note.clone());
        step.messages.push(note);
    }

    fn reset_part(&mut self, i: usize, options: Option<&str>) -> Result<Reply, Error> {
        let inner = self.module.inner.clone();
        let seed = self.state.seeds[i];
        match &mut self.parts[i] {
            Some(env) => {
                let t = env.reset(Some(seed), options).map_err(|source| self.module.part_error(i, source))?;
                Ok(reply(&t))
            }
            None => {
                let turn = UserTurn { part: &inner.wiring.parts[i].name, seed, options, transcript: &[] };
                callback(&self.module, i, &turn)
            }
        }
    }

    /// Delivers `text` from `from` to part `i` as its action, and passes on its reply.
    fn deliver(&mut self, i: usize, from: &str, text: &str, step: &mut Step) -> Result<(), Error> {
        let inner = self.module.inner.clone();
        let name = inner.wiring.parts[i].name.clone();
        self.state.record(Message { from: from.into(), to: name.clone(), text: text.into() });
        let result = match &mut self.parts[i] {
            Some(env) => env.step(text).map(|t| reply(&t)).map_err(|source| self.module.part_error(i, source)),
            None => {
                let state = &self.state;
                let turn = UserTurn {
                    part: &name,
                    seed: state.seeds[i],
                    options: state.options.as_deref(),
                    transcript: &state.transcript,
                };
                callback(&self.module, i, &turn)
            }
        };
        match result {
            Ok(r) => self.receive(i, r, step),
            Err(Error::Part { part, source }) if is_refusal(&source) => {
                let note =
                    Message { from: "host".into(), to: "agent".into(), text: format!("{part} refused it: {source}") };
                self.state.record(note.clone());
                step.messages.push(note);
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Passes on part `i`'s reply: to the agent, and (a user's) to the parts that hear users.
    fn receive(&mut self, i: usize, r: Reply, step: &mut Step) -> Result<(), Error> {
        let inner = self.module.inner.clone();
        let name = &inner.wiring.parts[i].name;
        step.reward += r.reward;
        step.terminated |= r.terminated;
        step.truncated |= r.truncated;
        if r.text.is_empty() {
            return Ok(());
        }
        let message = Message { from: name.clone(), to: "agent".into(), text: r.text.clone() };
        self.state.record(message.clone());
        step.messages.push(message);
        if Wiring::is_user(&inner.wiring.parts[i]) && !r.terminated {
            for j in self.hearers(Channel::UserReplies) {
                if j != i {
                    self.deliver(j, name, &r.text, step)?;
                }
            }
        }
        Ok(())
    }

    /// Ends the step: the episode's totals, and at its end the checker's score.
    fn finish(&mut self, mut step: Step) -> Result<Step, Error> {
        let limit = self.module.inner.wiring.max_transcript_bytes;
        let held = self.state.transcript_bytes;
        if !step.done() && held > limit {
            let text = format!("the conversation holds {held} bytes, more than the wiring's {limit}: truncated");
            let note = Message { from: "host".into(), to: "agent".into(), text };
            self.state.record(note.clone());
            step.messages.push(note);
            step.truncated = true;
        }
        if step.done() {
            self.state.phase = Phase::Over;
            if let Some((module, part)) = &self.module.inner.checker {
                let part = *part;
                if self.checker.is_none() {
                    let checker = module
                        .instantiate(self.limits.clone())
                        .map_err(|source| Error::Part { part: "checker".into(), source });
                    self.checker = Some(checker.map_err(|e| self.fail(e))?);
                }
                let options = self.state.options.clone().unwrap_or_default();
                let env = self.parts[part].as_mut().expect("the checker scores a module part");
                let checker = self.checker.as_mut().expect("made above");
                let score = checker
                    .reward(env, options.as_bytes(), b"")
                    .map_err(|source| Error::Part { part: "checker".into(), source });
                let score = score.map_err(|e| self.fail(e))?;
                let score = EpisodeScore { score: score.score, message: score.message };
                step.reward += score.score;
                step.score = Some(score.clone());
                self.state.score = Some(score);
            }
        }
        self.state.reward += step.reward;
        self.state.terminated |= step.terminated;
        self.state.truncated |= step.truncated;
        Ok(step)
    }

    /// Ends the episode with `error`.
    fn fail(&mut self, error: Error) -> Error {
        self.state.phase = Phase::Failed(error.to_string());
        error
    }
}

impl CompositeModule {
    fn part_error(&self, i: usize, source: wasmgym::Error) -> Error {
        Error::Part { part: self.inner.wiring.parts[i].name.clone(), source }
    }
}

fn callback(module: &CompositeModule, i: usize, turn: &UserTurn) -> Result<Reply, Error> {
    let f = module.callbacks[i].as_ref().expect("instantiate checks every callback is set");
    let r = f(turn).map_err(|message| Error::User { part: turn.part.to_string(), message })?;
    Ok(Reply { text: r.text, reward: 0.0, terminated: r.done, truncated: false })
}

fn reply(t: &wasmgym::Transition) -> Reply {
    let text = match &t.observation {
        Observation::Text(s) => s.clone(),
        other => format!("{other:?}"),
    };
    Reply { text, reward: t.reward(0), terminated: t.terminated, truncated: t.truncated }
}

/// A call the part refused without changing (an illegal action, an invalid call).
fn is_refusal(error: &wasmgym::Error) -> bool {
    matches!(error, wasmgym::Error::IllegalAction { .. } | wasmgym::Error::InvalidCall { .. })
}

/// Magic bytes of [`CompositeSnapshot::to_bytes`], and of [`CompositeSnapshot::to_bytes_signed`].
const MAGIC: &[u8; 20] = b"wasmgym composite\0\0\x01";
const MAGIC_SIGNED: &[u8; 20] = b"wasmgym composite\0\0\x02";

impl CompositeSnapshot {
    /// Self-checking bytes: a header, the conversation as JSON, every part's snapshot bytes, and
    /// a BLAKE3 checksum of all of it. They restore into an instance of the same composite in
    /// any process.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode(None)
    }

    /// [`to_bytes`](CompositeSnapshot::to_bytes) signed with a snapshot key: the parts in their
    /// signed format and the whole under BLAKE3 keyed with `key`, so runtimes configured with the
    /// key (`RuntimeConfig::snapshot_key`) restore what
    /// [`from_bytes_signed`](CompositeSnapshot::from_bytes_signed) reads back.
    pub fn to_bytes_signed(&self, key: &SnapshotKey) -> Vec<u8> {
        self.encode(Some(key))
    }

    fn encode(&self, key: Option<&SnapshotKey>) -> Vec<u8> {
        let mut out = if key.is_some() { MAGIC_SIGNED } else { MAGIC }.to_vec();
        out.extend_from_slice(&self.hash);
        let state = serde_json::to_vec(&self.state).expect("the state is JSON");
        out.extend_from_slice(&(state.len() as u64).to_le_bytes());
        out.extend_from_slice(&state);
        out.extend_from_slice(&(self.parts.len() as u64).to_le_bytes());
        for part in &self.parts {
            let bytes = match (part, key) {
                (Some(part), Some(key)) => part.to_bytes_signed(key),
                (Some(part), None) => part.to_bytes(),
                (None, _) => Vec::new(),
            };
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
        let sum = match key {
            Some(key) => blake3::keyed_hash(&key.0, &out),
            None => blake3::hash(&out),
        };
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// Reads [`to_bytes`](CompositeSnapshot::to_bytes) output, checking the checksum and every
    /// length; each part's bytes are checked as [`Snapshot::from_bytes`] checks them. Signed bytes
    /// are refused: read them with [`from_bytes_signed`](CompositeSnapshot::from_bytes_signed).
    pub fn from_bytes(bytes: &[u8]) -> Result<CompositeSnapshot, Error> {
        Self::decode(bytes, None)
    }

    /// Reads [`to_bytes_signed`](CompositeSnapshot::to_bytes_signed) output signed with `key`
    /// (the snapshot then restores on runtimes with the key), and unsigned bytes as
    /// [`from_bytes`](CompositeSnapshot::from_bytes) does (which such runtimes refuse to restore).
    pub fn from_bytes_signed(bytes: &[u8], key: &SnapshotKey) -> Result<CompositeSnapshot, Error> {
        Self::decode(bytes, Some(key))
    }

    fn decode(bytes: &[u8], key: Option<&SnapshotKey>) -> Result<CompositeSnapshot, Error> {
        let bad = |why: &str| Error::Snapshot(format!("not a composite snapshot: {why}"));
        let body = bytes.len().checked_sub(32).ok_or_else(|| bad("too short"))?;
        let signed = bytes.starts_with(MAGIC_SIGNED);
        if !signed && !bytes.starts_with(MAGIC) {
            return Err(bad("wrong header (is it a single environment's snapshot?)"));
        }
        match (signed, key) {
            (true, None) => {
                return Err(Error::Snapshot(
                    "the composite snapshot is signed with a snapshot key: read it with that key \
                     (`CompositeSnapshot::from_bytes_signed`; Python: `WASMGYM_SNAPSHOT_KEY`)"
                        .into(),
                ));
            }
            (true, Some(key)) => {
                if blake3::keyed_hash(&key.0, &bytes[..body]).as_bytes() != &bytes[body..] {
                    return Err(bad("authentication failed (the bytes were changed, or signed with another key)"));
                }
            }
            (false, _) => {
                if blake3::hash(&bytes[..body]).as_bytes() != &bytes[body..] {
                    return Err(bad("checksum mismatch (the bytes were changed or cut)"));
                }
            }
        }
        let mut r = Reader { bytes: &bytes[..body], at: MAGIC.len() };
        let hash: [u8; 32] = r.take(32).ok_or_else(|| bad("cut short"))?.try_into().expect("32 bytes");
        let state_len = r.len().ok_or_else(|| bad("cut short"))?;
        let state = r.take(state_len).ok_or_else(|| bad("cut short"))?;
        let state: State = serde_json::from_slice(state).map_err(|e| bad(&format!("its state does not read ({e})")))?;
        let count = r.len().ok_or_else(|| bad("cut short"))?;
        if count > crate::wiring::MAX_PARTS {
            return Err(bad("too many parts"));
        }
        let mut parts = Vec::with_capacity(count);
        for _ in 0..count {
            let len = r.len().ok_or_else(|| bad("cut short"))?;
            let part = r.take(len).ok_or_else(|| bad("cut short"))?;
            let read = |part: &[u8]| match key {
                Some(key) => Snapshot::from_bytes_signed(part, key),
                None => Snapshot::from_bytes(part),
            };
            parts.push(match part {
                [] => None,
                part => Some(read(part).map_err(|e| bad(&format!("a part's snapshot: {e}")))?),
            });
        }
        if r.at != r.bytes.len() {
            return Err(bad("bytes left over"));
        }
        Ok(CompositeSnapshot { hash, parts, state })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len())?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Some(out)
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(u64::from_le_bytes(self.take(8)?.try_into().ok()?)).ok()
    }
}

/// A composite is a [`Branch`](wasmgym_search::Branch): breadth-first and beam search
/// (`wasmgym_search::bfs`, `beam`) run on it unchanged, each action an agent action (text), each
/// state the whole conversation. It has no state key, so transpositions merge on the complete
/// state hash (exact: the transcript is part of it).
impl wasmgym_search::Branch for Composite {
    type Snapshot = CompositeSnapshot;

    fn snapshot(&mut self) -> Result<CompositeSnapshot, wasmgym_search::SearchError> {
        Composite::snapshot(self).map_err(search_error)
    }

    fn restore(&mut self, snapshot: &CompositeSnapshot) -> Result<(), wasmgym_search::SearchError> {
        Composite::restore(self, snapshot).map_err(search_error)
    }

    /// A discrete action is refused (`None`): a composite's actions are text.
    fn step(&mut self, action: &wasmgym::Action) -> Result<Option<wasmgym::Transition>, wasmgym_search::SearchError> {
        let wasmgym::Action::Text(text) = action else { return Ok(None) };
        let step = Composite::step(self, text).map_err(search_error)?;
        Ok(Some(wasmgym::Transition {
            observation: Observation::Text(step.observation()),
            rewards: vec![step.reward],
            terminated: step.terminated,
            truncated: step.truncated,
            info: "{}".into(),
            current_player: (!step.done()).then_some(0),
        }))
    }

    fn actions(&mut self) -> Result<Vec<wasmgym::Action>, wasmgym_search::SearchError> {
        Ok(self.valid_actions().map_err(search_error)?.into_iter().map(wasmgym::Action::Text).collect())
    }

    fn current_player(&self) -> Option<u32> {
        self.is_running().then_some(0)
    }

    fn observe(&mut self) -> Result<Option<Observation>, wasmgym_search::SearchError> {
        Ok(None)
    }

    fn state_key(&mut self) -> Result<Option<Vec<u8>>, wasmgym_search::SearchError> {
        Ok(None)
    }

    fn state_hash(&mut self) -> Result<[u8; 32], wasmgym_search::SearchError> {
        Composite::state_hash(self).map_err(search_error)
    }
}

fn search_error(e: Error) -> wasmgym_search::SearchError {
    match e {
        Error::Part { part, source } => wasmgym_search::SearchError::Branch(format!("part {part}: {source}")),
        other => wasmgym_search::SearchError::Branch(other.to_string()),
    }
}
