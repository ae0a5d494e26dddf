//! The wasmgym guest/host ABI, shared by guests (through `wasmgym-sdk`) and the host (`wasmgym`).
//!
//! This crate has no wasmtime dependency: it is plain data and byte codecs, so that any language that
//! compiles to `wasm32-wasip1` can implement the protocol (see `envs/bandit_wat` for one written by hand).
//!
//! # Version stamp
//!
//! A guest carries a custom section named [`ABI_SECTION`] whose content is [`ABI_VERSION`] as a
//! little-endian `u32`. The host reads it before linking and refuses a module whose version differs,
//! naming both versions.
//!
//! # Exports
//!
//! ```text
//! wasmgym_alloc(len: i32) -> i32             pointer to a guest buffer of `len` bytes the host may fill
//! wasmgym_spec() -> i64                      JSON EnvSpec
//! wasmgym_reset(ptr: i32, len: i32) -> i64   ResetRequest in, Transition out
//! wasmgym_step(ptr: i32, len: i32) -> i64    Action in, Transition out
//! wasmgym_legal_actions() -> i64             LegalActions out
//! wasmgym_render() -> i64                    UTF-8 text out
//!
//! optional (the SDK exports all four):
//! wasmgym_rollout(seed: i64, max_steps: i32,  Rollout out (a random playout; `first`, a discrete
//!     has_first: i32, first: i64) -> i64     action, is applied first when has_first is 1)
//! wasmgym_text_actions() -> i64              TextActions out (valid commands of a text space)
//! wasmgym_observe() -> i64                   the current observation out
//! wasmgym_state_key() -> i64                 StateKey out (a game-state key, or none)
//! ```
//!
//! # Memory protocol
//!
//! ```text
//!   host                                   guest linear memory
//!   ----                                   -------------------
//!   ptr = wasmgym_alloc(len)  ───────────▶ [ input buffer: len bytes ] (owned by the guest,
//!   write request bytes at ptr                                          valid until the next call)
//!   packed = wasmgym_step(ptr, len)
//!   out_ptr = packed >> 32                 [ status u8 | payload ... ]  (owned by the guest,
//!   out_len = packed & 0xffff_ffff                                      valid until the next call)
//!   read out_len bytes at out_ptr
//! ```
//!
//! A request with no bytes is passed as `(0, 0)` without calling `wasmgym_alloc`. Every output starts
//! with a [`Status`] byte; for a non-`Ok` status the rest is a UTF-8 message. All integers and floats are
//! little-endian. The encodings of each message are in [`wire`].
//!
//! # Randomness
//!
//! Guests draw randomness only through WASI `random_get`, which the host serves from [`rng::Rng`];
//! the host reseeds it from `seed` *before* calling `wasmgym_reset`, and its state is part of every
//! snapshot.
//!
//! `docs/abi.md` in the repository says which status each refusal gets, who enforces
//! `max_episode_steps` (the guest), and what a module may contain.

#![deny(missing_docs)]

pub mod rng;
mod spec;
pub mod wire;

pub use spec::{Determinism, Dtype, EnvSpec, MAX_NAME_BYTES, MAX_PLAYERS, MAX_SPACE_ELEMENTS, MAX_TOOLS, Space, Tool};
pub use wire::{Action, DecodeError, Observation, ResetRequest, Status, Transition};

/// The ABI version this crate speaks. Bumped on any incompatible change to exports or encodings.
pub const ABI_VERSION: u32 = 1;

/// Name of the custom section that stamps [`ABI_VERSION`] into a guest module.
pub const ABI_SECTION: &str = "wasmgym_abi";

/// Names of the functions a guest exports.
pub mod exports {
    /// `(len: i32) -> i32`: a guest buffer of `len` bytes for the next request.
    pub const ALLOC: &str = "wasmgym_alloc";
    /// `() -> i64`: the environment's [`EnvSpec`](crate::EnvSpec) as JSON.
    pub const SPEC: &str = "wasmgym_spec";
    /// `(ptr: i32, len: i32) -> i64`: start an episode.
    pub const RESET: &str = "wasmgym_reset";
    /// `(ptr: i32, len: i32) -> i64`: apply one action.
    pub const STEP: &str = "wasmgym_step";
    /// `() -> i64`: the legal discrete actions in the current state.
    pub const LEGAL_ACTIONS: &str = "wasmgym_legal_actions";
    /// `() -> i64`: a text rendering of the current state.
    pub const RENDER: &str = "wasmgym_render";
    /// Every export the host requires, in a fixed order.
    pub const REQUIRED: [&str; 6] = [ALLOC, SPEC, RESET, STEP, LEGAL_ACTIONS, RENDER];
    /// Optional, `(seed: i64, max_steps: i32, has_first: i32, first: i64) -> i64`: a random
    /// playout run inside the guest, [`Rollout`](crate::wire::Rollout) out (see
    /// [`RolloutRequest`](crate::wire::RolloutRequest)).
    pub const ROLLOUT: &str = "wasmgym_rollout";
    /// Optional, `() -> i64`: for text action spaces, the commands valid now (like Jericho's
    /// `get_valid_actions`).
    pub const TEXT_ACTIONS: &str = "wasmgym_text_actions";
    /// Optional, `() -> i64`: the current observation, encoded as in a transition.
    pub const OBSERVE: &str = "wasmgym_observe";
    /// Optional, `() -> i64`: a key for the game state, for transposition tables.
    pub const STATE_KEY: &str = "wasmgym_state_key";
    /// Optional, `(ptr: i32, len: i32) -> i64`: [`STEP`] and then [`LEGAL_ACTIONS`] in one call:
    /// the transition, followed by the legal actions for the player to move next (none once the
    /// episode is over) as [`wire::encode_step_actions`] appends them. Saves a call per step for a
    /// host that reports legal actions after every step (an action mask, a random agent).
    pub const STEP_ACTIONS: &str = "wasmgym_step_actions";
    /// Optional, `(ptr: i32, len: i32) -> i64`: a [`PlayoutRequest`](crate::wire::PlayoutRequest)
    /// in, a [`Playout`](crate::wire::Playout) out: applies a prefix of actions, reports the legal
    /// actions and state key there if asked, then rolls out as [`ROLLOUT`] does, in one call.
    pub const PLAYOUT: &str = "wasmgym_playout";
    /// Optional, `() -> i64`: `(ptr, capacity)` of an input buffer at a fixed address of the
    /// module's memory (the same in every instance and every state, such as a `static`): the host
    /// may write a request of at most `capacity` bytes there and pass that pointer instead of
    /// calling [`ALLOC`], which saves a call per step.
    pub const INPUT_BUFFER: &str = "wasmgym_input_buffer";
}

/// Splits the `i64` returned by an ABI call into `(ptr, len)` of the output in guest memory.
pub fn unpack(packed: i64) -> (u32, u32) {
    let packed = packed as u64;
    ((packed >> 32) as u32, packed as u32)
}

/// Packs `(ptr, len)` of an output into the `i64` an ABI call returns.
pub fn pack(ptr: u32, len: u32) -> i64 {
    (((ptr as u64) << 32) | len as u64) as i64
}

/// The checker ABI: a module that scores a program's output (or an environment's final state).
///
/// ```text
/// custom section wasmgym_checker_abi = CHECKER_ABI_VERSION as u32 LE
/// wasmgym_checker_alloc(len: i32) -> i32     a guest buffer of len bytes
/// wasmgym_check(ptr: i32, input_len: i32, expected_len: i32, output_len: i32) -> i64
///     the buffer holds input ‖ expected ‖ output; the answer at (packed >> 32, packed & 0xffff_ffff)
///     is score: f64 LE in [0, 1], then a UTF-8 message
/// ```
///
/// Reward checkers may import `wasmgym_env::render(ptr: i32, cap: i32) -> i32` and
/// `wasmgym_env::step(ptr: i32, len: i32) -> f64` to query the fork of the environment they score.
pub mod checker {
    /// The checker ABI version this crate speaks.
    pub const CHECKER_ABI_VERSION: u32 = 1;
    /// Name of the custom section that stamps [`CHECKER_ABI_VERSION`] into a checker.
    pub const CHECKER_ABI_SECTION: &str = "wasmgym_checker_abi";
    /// `(len: i32) -> i32`: a guest buffer for input ‖ expected ‖ output.
    pub const ALLOC: &str = "wasmgym_checker_alloc";
    /// `(ptr: i32, input_len: i32, expected_len: i32, output_len: i32) -> i64`: score the output.
    pub const CHECK: &str = "wasmgym_check";
    /// The import module of the environment queries a reward checker may use.
    pub const FORK_MODULE: &str = "wasmgym_env";

    /// Encodes a checker's answer: `score` as f64 LE, then `message`.
    pub fn encode_score(score: f64, message: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&score.to_le_bytes());
        out.extend_from_slice(message.as_bytes());
    }
}
