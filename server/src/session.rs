//! One OpenEnv session: the environment instance behind a WebSocket, its forks and snapshots, and
//! the messages that drive them. Synchronous (guest calls block): the socket's task runs each
//! message on a blocking thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Map, Value, json};
use wasmgym::{Env, Error, Snapshot, Transition};

use crate::served::Served;
use crate::spaces;

/// Snapshots one connection may keep at once.
pub const MAX_SNAPSHOTS: usize = 64;

/// OpenEnv's error codes. The first four keep the socket open, the rest close it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The message is not JSON.
    InvalidJson,
    /// The message's `type` is not one the server knows.
    UnknownType,
    /// The message is well formed but its data is wrong (a bad or illegal action, an unknown id).
    ValidationError,
    /// The environment failed while running (a trap, a limit): the episode must be reset.
    ExecutionError,
    /// The server holds as many sessions as it may.
    CapacityReached,
    /// The environment could not be instantiated.
    FactoryError,
    /// The session ended (idle too long, the server shutting down).
    SessionError,
}

impl Code {
    /// The code as OpenEnv spells it.
    pub fn name(self) -> &'static str {
        match self {
            Code::InvalidJson => "INVALID_JSON",
            Code::UnknownType => "UNKNOWN_TYPE",
            Code::ValidationError => "VALIDATION_ERROR",
            Code::ExecutionError => "EXECUTION_ERROR",
            Code::CapacityReached => "CAPACITY_REACHED",
            Code::FactoryError => "FACTORY_ERROR",
            Code::SessionError => "SESSION_ERROR",
        }
    }

    /// Whether OpenEnv closes the socket after an error with this code.
    pub fn closes(self) -> bool {
        matches!(self, Code::CapacityReached | Code::FactoryError | Code::SessionError)
    }
}

/// An error reply: a code and a message that names the cause and the fix.
#[derive(Debug)]
pub struct Failure {
    /// The code.
    pub code: Code,
    /// What went wrong and what to do.
    pub message: String,
}

impl Failure {
    /// A failure with `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }

    /// `{"type": "error", "data": {"message", "code"}}`.
    pub fn to_json(&self) -> Value {
        json!({"type": "error", "data": {"message": self.message, "code": self.code.name()}})
    }

    /// A runtime error of a call into the environment.
    fn of(error: &Error) -> Failure {
        let code = match error {
            Error::IllegalAction { .. } | Error::InvalidCall { .. } | Error::BadSnapshot { .. } => {
                Code::ValidationError
            }
            _ => Code::ExecutionError,
        };
        let fix = if error.poisons() { ": the instance is discarded; send reset to start a new episode" } else { "" };
        Failure::new(code, format!("{} ({}){fix}", error, error.kind()))
    }
}

/// Sessions the server may hold at once (WebSocket sessions and their forks), shared by every
/// connection.
#[derive(Debug)]
pub struct Capacity {
    used: AtomicUsize,
    max: usize,
}

impl Capacity {
    /// Room for `max` sessions.
    pub fn new(max: usize) -> Arc<Capacity> {
        Arc::new(Capacity { used: AtomicUsize::new(0), max })
    }

    /// A place, or `None` when every one is taken.
    pub fn take(self: &Arc<Capacity>) -> Option<Ticket> {
        let taken = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1));
        taken.ok().map(|_| Ticket(self.clone()))
    }

    /// Sessions held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The most sessions there may be.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// A place in [`Capacity`], given back when dropped.
#[derive(Debug)]
pub struct Ticket(Arc<Capacity>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One line of play: an instance and where its episode is.
struct Branch {
    env: Env,
    episode_id: Option<String>,
    /// The last observation reply's data (what `restore` answers with for environments that
    /// cannot observe on demand).
    last: Option<Value>,
    done: bool,
    _ticket: Option<Ticket>,
}

/// A snapshot and the episode bookkeeping that goes with it.
struct Saved {
    snapshot: Snapshot,
    episode_id: Option<String>,
    last: Option<Value>,
    done: bool,
}

/// What a message asks for, with its reply.
pub struct Reply {
    /// The JSON to send (none for `close`, which OpenEnv answers by closing).
    pub json: Option<Value>,
    /// Close the socket after sending.
    pub close: bool,
}

/// A WebSocket session: the main branch, its forks (addressed by `session_id`) and snapshots.
pub struct Session {
    served: Arc<Served>,
    capacity: Arc<Capacity>,
    branches: HashMap<String, Branch>,
    snapshots: HashMap<String, Saved>,
    next: u64,
}

/// The id of the branch a connection starts with.
pub const MAIN: &str = "main";

impl Session {
    /// A session on a new instance of `served`, holding `ticket`.
    pub fn new(served: Arc<Served>, capacity: Arc<Capacity>, ticket: Ticket) -> Result<Session, Failure> {
        let env = served.instantiate().map_err(|e| {
            Failure::new(Code::FactoryError, format!("the environment `{}` cannot be instantiated: {e}", served.name))
        })?;
        let main = Branch { env, episode_id: None, last: None, done: false, _ticket: Some(ticket) };
        Ok(Session {
            served,
            capacity,
            branches: HashMap::from([(MAIN.to_owned(), main)]),
            snapshots: HashMap::new(),
            next: 1,
        })
    }

    /// Handles one text message.
    pub fn handle(&mut self, text: &str) -> Reply {
        let message: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => return fail(Failure::new(Code::InvalidJson, format!("the message is not JSON: {e}"))),
        };
        let Some(fields) = message.as_object() else {
            // OpenEnv's server ends the session on JSON that is not an object.
            let e = format!(
                "a message is an object such as {{\"type\": \"step\", \"data\": ...}}, not {}",
                spaces::kind(&message)
            );
            return fail(Failure::new(Code::SessionError, e));
        };
        let kind = fields.get("type").and_then(Value::as_str).unwrap_or("");
        let data = fields.get("data").cloned().unwrap_or(Value::Null);
        let id = match fields.get("session_id") {
            None | Some(Value::Null) => MAIN.to_owned(),
            Some(Value::String(id)) => id.clone(),
            Some(other) => {
                return fail(Failure::new(
                    Code::ValidationError,
                    format!("session_id is a string, not {}", spaces::kind(other)),
                ));
            }
        };
        let result = match kind {
            "reset" => self.reset(&id, &data),
            "step" => self.step(&id, &data),
            "state" => self.state(&id).map(|state| json!({"type": "state", "data": state})),
            "close" if id == MAIN => return Reply { json: None, close: true },
            "close" => self.release_branch(&id),
            "snapshot" => self.snapshot(&id),
            "restore" => self.restore(&id, &data),
            "fork" => self.fork(&id),
            "release" => self.release_snapshot(&data),
            "" => Err(Failure::new(Code::UnknownType, "the message has no `type`: use reset, step, state or close")),
            other => Err(Failure::new(
                Code::UnknownType,
                format!(
                    "unknown message type `{}`: use reset, step, state, close, snapshot, restore, fork or release",
                    other.chars().take(40).collect::<String>()
                ),
            )),
        };
        match result {
            Ok(json) => Reply { json: Some(json), close: false },
            Err(failure) => fail(failure),
        }
    }

    fn branch(&mut self, id: &str) -> Result<&mut Branch, Failure> {
        let known = self.branches.len();
        self.branches.get_mut(id).ok_or_else(|| {
            Failure::new(
                Code::ValidationError,
                format!("no session `{id}` on this connection ({known} open): fork one first"),
            )
        })
    }

    fn reset(&mut self, id: &str, data: &Value) -> Result<Value, Failure> {
        let request = ResetRequest::parse(data)?;
        let served = self.served.clone();
        let branch = self.branch(id)?;
        if branch.env.is_poisoned() {
            branch.env = served.instantiate().map_err(|e| Failure::new(Code::ExecutionError, e.to_string()))?;
        }
        let transition = branch.env.reset(request.seed, request.options.as_deref()).map_err(|e| Failure::of(&e))?;
        branch.episode_id = request.episode_id;
        let reply = observation_reply(&served, &mut branch.env, &transition, None)?;
        branch.done = transition.done();
        branch.last = Some(reply.clone());
        Ok(json!({"type": "observation", "data": reply}))
    }

    fn step(&mut self, id: &str, data: &Value) -> Result<Value, Failure> {
        let served = self.served.clone();
        let action = spaces::parse_action(&served.spec().action_space, data)
            .map_err(|e| Failure::new(Code::ValidationError, e))?;
        let branch = self.branch(id)?;
        if branch.last.is_none() {
            return Err(Failure::new(Code::ValidationError, "no episode has started: send reset first"));
        }
        if branch.done {
            return Err(Failure::new(Code::ValidationError, "the episode is over: send reset to start another"));
        }
        let player = branch.env.current_player().unwrap_or(0);
        let transition = branch.env.step(action).map_err(|e| Failure::of(&e))?;
        let reply = observation_reply(&served, &mut branch.env, &transition, Some(transition.reward(player)))?;
        branch.done = transition.done();
        branch.last = Some(reply.clone());
        Ok(json!({"type": "observation", "data": reply}))
    }

    fn state(&mut self, id: &str) -> Result<Value, Failure> {
        let name = self.served.name.clone();
        let branch = self.branch(id)?;
        let hash = branch.env.state_hash().ok().map(|h| h.iter().map(|b| format!("{b:02x}")).collect::<String>());
        Ok(json!({
            "episode_id": branch.episode_id,
            "step_count": branch.env.steps(),
            "current_player": branch.env.current_player(),
            "done": branch.done,
            "state_hash": hash,
            "env": name,
        }))
    }

    fn snapshot(&mut self, id: &str) -> Result<Value, Failure> {
        if self.snapshots.len() >= MAX_SNAPSHOTS {
            return Err(Failure::new(
                Code::ValidationError,
                format!("this connection holds {MAX_SNAPSHOTS} snapshots, the most it may: release some first"),
            ));
        }
        let branch = self.branch(id)?;
        let snapshot = branch.env.snapshot().map_err(|e| Failure::of(&e))?;
        let saved =
            Saved { snapshot, episode_id: branch.episode_id.clone(), last: branch.last.clone(), done: branch.done };
        let steps = branch.env.steps();
        let snapshot_id = format!("s{}", self.next);
        self.next += 1;
        self.snapshots.insert(snapshot_id.clone(), saved);
        Ok(json!({"type": "snapshot", "data": {"snapshot_id": snapshot_id, "step_count": steps}}))
    }

    fn restore(&mut self, id: &str, data: &Value) -> Result<Value, Failure> {
        let snapshot_id = snapshot_id(data)?;
        let saved = self.snapshots.get(&snapshot_id).ok_or_else(|| unknown_snapshot(&snapshot_id))?;
        let (snapshot, episode_id, last, done) =
            (saved.snapshot.clone(), saved.episode_id.clone(), saved.last.clone(), saved.done);
        let branch = self.branch(id)?;
        branch.env.restore(&snapshot).map_err(|e| Failure::of(&e))?;
        (branch.episode_id, branch.last, branch.done) = (episode_id, last.clone(), done);
        Ok(json!({"type": "observation", "data": last.unwrap_or(Value::Null)}))
    }

    fn fork(&mut self, id: &str) -> Result<Value, Failure> {
        let ticket = self.capacity.take().ok_or_else(|| {
            Failure::new(
                Code::ValidationError,
                format!("the server holds {} sessions, the most it may: close a fork first", self.capacity.max()),
            )
        })?;
        let branch = self.branch(id)?;
        let env = branch.env.fork().map_err(|e| Failure::of(&e))?;
        let fork = Branch {
            env,
            episode_id: branch.episode_id.clone(),
            last: branch.last.clone(),
            done: branch.done,
            _ticket: Some(ticket),
        };
        let session_id = format!("f{}", self.next);
        self.next += 1;
        self.branches.insert(session_id.clone(), fork);
        Ok(json!({"type": "fork", "data": {"session_id": session_id}}))
    }

    fn release_branch(&mut self, id: &str) -> Result<Value, Failure> {
        self.branch(id)?;
        self.branches.remove(id);
        Ok(json!({"type": "closed", "data": {"session_id": id}}))
    }

    fn release_snapshot(&mut self, data: &Value) -> Result<Value, Failure> {
        let snapshot_id = snapshot_id(data)?;
        self.snapshots.remove(&snapshot_id).ok_or_else(|| unknown_snapshot(&snapshot_id))?;
        Ok(json!({"type": "released", "data": {"snapshot_id": snapshot_id}}))
    }
}

fn fail(failure: Failure) -> Reply {
    Reply { json: Some(failure.to_json()), close: failure.code.closes() }
}

fn snapshot_id(data: &Value) -> Result<String, Failure> {
    match data.get("snapshot_id") {
        Some(Value::String(id)) => Ok(id.clone()),
        _ => Err(Failure::new(Code::ValidationError, r#"name the snapshot: {"snapshot_id": "s1"}"#)),
    }
}

fn unknown_snapshot(id: &str) -> Failure {
    Failure::new(
        Code::ValidationError,
        format!("no snapshot `{id}` on this connection: take one with a snapshot message"),
    )
}

/// What `reset` takes: `seed`, `episode_id` and `options` (any JSON, given to the environment as
/// its reset options). Other fields (OpenEnv's `reset(**kwargs)`) become the options object when
/// there is no `options`.
pub struct ResetRequest {
    /// The seed.
    pub seed: Option<u64>,
    /// The client's name for the episode.
    pub episode_id: Option<String>,
    /// The environment's reset options, as JSON text.
    pub options: Option<String>,
}

impl ResetRequest {
    /// Reads the request from a message's `data` (or a request body); `null` is an empty request.
    pub fn parse(data: &Value) -> Result<ResetRequest, Failure> {
        let empty = Map::new();
        let fields = match data {
            Value::Null => &empty,
            Value::Object(fields) => fields,
            other => {
                let e = format!("reset takes an object such as {{\"seed\": 42}}, not {}", spaces::kind(other));
                return Err(Failure::new(Code::ValidationError, e));
            }
        };
        let mut request = ResetRequest { seed: None, episode_id: None, options: None };
        let mut extra = Map::new();
        for (key, value) in fields {
            match (key.as_str(), value) {
                (_, Value::Null) => {}
                ("seed", v) => {
                    request.seed = Some(v.as_u64().ok_or_else(|| {
                        let e = format!("seed is an integer from 0 to 2^64 - 1, not {}", spaces::kind(v));
                        Failure::new(Code::ValidationError, e)
                    })?)
                }
                ("episode_id", Value::String(s)) => request.episode_id = Some(s.clone()),
                ("episode_id", v) => request.episode_id = Some(v.to_string()),
                ("options", v) => request.options = Some(v.to_string()),
                (other, value) => {
                    extra.insert(other.to_owned(), value.clone());
                }
            }
        }
        if request.options.is_none() && !extra.is_empty() {
            request.options = Some(Value::Object(extra).to_string());
        }
        Ok(request)
    }
}

/// An observation reply's data: `{"observation": {...}, "reward", "done"}`. The observation holds
/// the environment's observation, the legal actions, the player to move, every player's reward,
/// `terminated`, `truncated`, `info`, and for text environments the rendered `text`.
pub fn observation_reply(
    served: &Served,
    env: &mut Env,
    transition: &Transition,
    reward: Option<f64>,
) -> Result<Value, Failure> {
    let spec = served.spec();
    let legal: Vec<Value> = match transition.done() {
        true => Vec::new(),
        false => env.actions().map_err(|e| Failure::of(&e))?.iter().map(spaces::action).collect(),
    };
    let info: Value = serde_json::from_str(&transition.info).unwrap_or_else(|_| json!({"raw": transition.info}));
    let mut observation = json!({
        "observation": spaces::observation(&spec.observation_space, &transition.observation),
        "legal_actions": legal,
        "current_player": transition.current_player,
        "rewards": transition.rewards,
        "terminated": transition.terminated,
        "truncated": transition.truncated,
        "info": info,
        "done": transition.done(),
        "reward": reward,
        "metadata": {},
    });
    if spaces::is_text(spec) {
        observation["text"] = json!(env.render().map_err(|e| Failure::of(&e))?);
    }
    Ok(json!({"observation": observation, "reward": reward, "done": transition.done()}))
}
