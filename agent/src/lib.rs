//! Agent environments on wasmgym, through the runtime's public API only.
//!
//! - [`Composite`]: one episode made of several sandboxed modules (an environment, a simulated
//!   user, tool modules) wired together by data ([`Wiring`]); it snapshots, restores, forks and
//!   hashes as one.
//! - Tool calls: an agent's action is a call `{"tool": NAME, "args": {...}}` or a message to the
//!   user; the tools are declared in the modules' specs ([`wasmgym_abi::Tool`]).
//! - [`eval`]: runs an [`Agent`] on tasks k times and reports pass^k; [`suite`]: sequential task
//!   suites whose environment state carries from one task to the next, beside the i.i.d. baseline.

#![deny(missing_docs)]

pub mod scripted;

use serde::{Deserialize, Serialize};

pub use wasmgym_abi::Tool;

/// One message of a conversation: which part (or `"agent"`, or `"host"` for the host's own notes
/// such as an invalid call) said what to whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it: a part's name, `"agent"` or `"host"`.
    pub from: String,
    /// Who it was for: a part's name or `"agent"`.
    pub to: String,
    /// What was said (a tool call or result is its JSON text).
    pub text: String,
}

/// An agent: given what it was just shown, it answers with its next action, a tool call as JSON
/// (`{"tool": NAME, "args": {...}}`) or a message to the user (plain text, or `{"message": TEXT}`).
///
/// Agents live on the host and are not part of a snapshot: an agent that remembers must be
/// started afresh ([`Agent::start`]) at every task; what carries over between the tasks of a
/// sequential suite is the environment's state, not the agent's.
pub trait Agent: Send {
    /// Called before every episode with the tools it offers.
    fn start(&mut self, tools: &[Tool]) {
        let _ = tools;
    }

    /// The next action, given the messages addressed to the agent since its last action (at the
    /// start of an episode: the environment's opening and the user's first message). An `Err`
    /// ends the episode as a failure of the agent.
    fn act(&mut self, seen: &[Message]) -> Result<String, String>;
}

mod call;
mod composite;
mod eval;
mod module_agent;
mod wiring;

pub use call::{AgentAction, check_args, function_specs};
pub use composite::{
    Composite, CompositeModule, CompositeSnapshot, EpisodeScore, Step, UserFn, UserReply, UserTurn, render,
};
pub use eval::{
    EvalOptions, EvalReport, SUCCESS_REWARD, SuiteOptions, SuiteReport, Trial, eval, pass_hat, run_episode, suite,
};
pub use module_agent::ModuleAgent;
pub use wiring::{
    BUILTIN, Channel, CheckerSpec, MAX_PARTS, MAX_TRANSCRIPT_BYTES, MAX_TURNS, PartSpec, Wiring, module_bytes,
    wiring_for,
};

/// Why a composite, an evaluation or a suite could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The wiring is malformed, or names modules that cannot be found or do not fit.
    #[error("wiring: {0}")]
    Wiring(String),
    /// A part's module failed (a trap, a limit, an error of its own) or refused a reset: the
    /// episode has ended (restore a snapshot or reset).
    #[error("part {part}: {source}")]
    Part {
        /// The part's name (`"checker"` for the reward checker).
        part: String,
        /// What the runtime reported.
        source: wasmgym::Error,
    },
    /// A host-callback user failed: the episode has ended.
    #[error("user {part} (host callback) failed: {message}")]
    User {
        /// The part's name.
        part: String,
        /// The callback's error.
        message: String,
    },
    /// No episode is running.
    #[error("{0}")]
    NotRunning(String),
    /// Snapshot bytes that do not read, or a snapshot of another composite.
    #[error("bad composite snapshot: {0}")]
    Snapshot(String),
}
