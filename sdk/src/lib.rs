//! Write a wasmgym environment as a plain Rust struct; export it with one macro.
//!
//! ```
//! use wasmgym_sdk::*;
//!
//! /// Guess the hidden digit in as few tries as possible.
//! struct Guess { secret: i64, tries: u32 }
//!
//! impl Environment for Guess {
//!     fn spec() -> EnvSpec {
//!         EnvSpec {
//!             name: "guess".into(), version: 1, players: 1,
//!             observation_space: Space::Discrete { n: 3 }, // 0 = start, 1 = too low, 2 = too high
//!             action_space: Space::Discrete { n: 10 },
//!             reward_range: (-1.0, 1.0), max_episode_steps: Some(10),
//!             determinism: Determinism::Deterministic,
//!             tools: vec![],
//!         }
//!     }
//!     fn reset(rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
//!         Ok(Guess { secret: rng.below(10) as i64, tries: 0 })
//!     }
//!     fn observation(&self) -> Observation { Observation::Discrete(0) }
//!     fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
//!         let guess = action.discrete();
//!         self.tries += 1;
//!         Ok(if guess == self.secret { Transition::reward(1.0).terminal() } else { Transition::reward(-0.1) })
//!     }
//! }
//!
//! export_env!(Guess);
//! # fn main() {
//! #     let mut env = Runner::<Guess>::new();
//! #     env.reset(Some(1), "").unwrap();
//! #     assert!(env.step(&Action::Discrete(3)).is_ok());
//! # }
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip1 --release` as a `cdylib`; the host loads the
//! `.wasm`. The same crate also builds natively (as an `rlib`), where [`Runner`] drives it directly.
//!
//! The SDK owns the bookkeeping around the author's hooks: it decodes and validates the action
//! against the action space and [`Environment::legal_actions`], counts steps, truncates at
//! `max_episode_steps` (as Gymnasium's `TimeLimit` does: `truncated` is set on the limit step even
//! if that step also terminates), refuses `step` after the episode ended, and encodes the
//! observation.
//! An environment draws randomness only from the [`Rng`] it is handed, which is the host's.

#![deny(missing_docs)]

pub mod checker;
mod rng;
mod runner;

pub use rng::Rng;
pub use runner::{Runner, StepError};
pub use wasmgym_abi::checker::CHECKER_ABI_VERSION;
pub use wasmgym_abi::wire::{Status, Transition as StepResult};
pub use wasmgym_abi::{ABI_VERSION, Action, Determinism, Dtype, EnvSpec, Observation, Space, Tool};

/// Reset options: the JSON document the caller passed to `reset`, or `Null` if none.
pub type Options = serde_json::Value;

/// An error an environment reports from its hooks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvError {
    /// What went wrong and what to do.
    pub message: String,
    /// Whose mistake it is, which decides how the host reports it.
    pub fault: Fault,
}

/// Who caused an [`EnvError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The environment failed: the host reports a guest error.
    Environment,
    /// The caller asked for something the environment cannot do (reset options it cannot use, an
    /// action it refuses beyond the SDK's checks). The host reports an invalid call from `reset`
    /// and an illegal action from `step`; the hook must leave its state unchanged.
    Caller,
}

impl EnvError {
    /// An error of the environment, with a message that says what went wrong and what to do.
    pub fn new(message: impl Into<String>) -> Self {
        EnvError { message: message.into(), fault: Fault::Environment }
    }

    /// A refusal of what the caller asked (for example reset options the environment cannot use),
    /// with a message that says what is expected.
    pub fn caller(message: impl Into<String>) -> Self {
        EnvError { message: message.into(), fault: Fault::Caller }
    }
}

impl std::fmt::Display for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The outcome of one step, as the author reports it: rewards and whether the state is terminal.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// Reward per player (a single entry for single-agent environments).
    pub rewards: Rewards,
    /// The new state is terminal.
    pub terminated: bool,
}

impl Transition {
    /// A non-terminal step of a single-agent environment with reward `r`.
    pub fn reward(r: f64) -> Self {
        Transition { rewards: Rewards::from([r]), terminated: false }
    }

    /// A non-terminal step with one reward per player: an array (`[1.0, -1.0]`, kept inline
    /// for up to four players, so a step allocates nothing) or a `Vec`.
    pub fn rewards(rewards: impl Into<Rewards>) -> Self {
        Transition { rewards: rewards.into(), terminated: false }
    }

    /// The same step, marked terminal.
    pub fn terminal(mut self) -> Self {
        self.terminated = true;
        self
    }

    /// The same step, terminal if `done`.
    pub fn terminated_if(mut self, done: bool) -> Self {
        self.terminated = done;
        self
    }
}

/// One reward per player, inline for up to four players (no allocation per step), on the heap
/// beyond. Reads as a slice.
#[derive(Clone, Debug, PartialEq)]
pub struct Rewards(RewardsInner);

#[derive(Clone, Debug, PartialEq)]
enum RewardsInner {
    Inline(u8, [f64; 4]),
    Heap(Vec<f64>),
}

impl std::ops::Deref for Rewards {
    type Target = [f64];
    #[inline]
    fn deref(&self) -> &[f64] {
        match &self.0 {
            RewardsInner::Inline(n, values) => &values[..*n as usize],
            RewardsInner::Heap(values) => values,
        }
    }
}

impl<const N: usize> From<[f64; N]> for Rewards {
    fn from(values: [f64; N]) -> Self {
        if N <= 4 {
            let mut inline = [0.0; 4];
            inline[..N].copy_from_slice(&values);
            Rewards(RewardsInner::Inline(N as u8, inline))
        } else {
            Rewards(RewardsInner::Heap(values.to_vec()))
        }
    }
}

impl From<Vec<f64>> for Rewards {
    fn from(values: Vec<f64>) -> Self {
        Rewards(RewardsInner::Heap(values))
    }
}

impl PartialEq<Vec<f64>> for Rewards {
    fn eq(&self, other: &Vec<f64>) -> bool {
        **self == **other
    }
}

/// Convenience accessors on actions for authors who know their action space.
pub trait ActionExt {
    /// The discrete value; the SDK has already checked the action space is `Discrete`.
    fn discrete(&self) -> i64;
    /// The text; empty for a discrete action.
    fn text(&self) -> &str;
}

impl ActionExt for Action {
    fn discrete(&self) -> i64 {
        match self {
            Action::Discrete(a) => *a,
            Action::Text(_) => -1,
        }
    }

    fn text(&self) -> &str {
        match self {
            Action::Text(s) => s,
            Action::Discrete(_) => "",
        }
    }
}

/// `n` of `E`'s `Discrete` action space (0 for other spaces), for the default
/// [`Environment::legal_actions`]: remembered for the last type asked about (a guest has one), as
/// building the spec costs more than most steps.
fn discrete_actions<E: Environment>() -> i64 {
    use std::any::TypeId;
    use std::cell::Cell;
    thread_local!(static LAST: Cell<Option<(TypeId, i64)>> = const { Cell::new(None) });
    LAST.with(|last| match last.get() {
        Some((ty, n)) if ty == TypeId::of::<E>() => n,
        _ => {
            let n = match E::spec().action_space {
                Space::Discrete { n } => i64::try_from(n).unwrap_or(i64::MAX),
                _ => 0,
            };
            last.set(Some((TypeId::of::<E>(), n)));
            n
        }
    })
}

/// An environment. Implement it on a plain struct and export it with [`export_env!`].
///
/// A new struct is made by every [`reset`](Environment::reset), so no state survives between
/// episodes by accident. The host snapshots the whole guest, so there is no clone code to write.
pub trait Environment: Sized + 'static {
    /// What the environment is. Called once when the host loads the module.
    fn spec() -> EnvSpec;

    /// Starts an episode. Draw every random choice from `rng`. Refuse options you cannot use with
    /// [`EnvError::caller`], saying what you expect.
    fn reset(rng: &mut Rng, options: &Options) -> Result<Self, EnvError>;

    /// Starts the next task of a sequential suite from where the last episode ended: the SDK calls
    /// it instead of [`reset`](Environment::reset) when the reset options are an object with
    /// `"carry": true` and an episode was started before. Keep what should carry over (files
    /// written, notes kept) from `previous` and start the rest afresh. Default: forget everything,
    /// as `reset` does.
    fn continue_from(previous: &Self, rng: &mut Rng, options: &Options) -> Result<Self, EnvError> {
        let _ = previous;
        Self::reset(rng, options)
    }

    /// The current observation; it must lie in the spec's observation space.
    fn observation(&self) -> Observation;

    /// Applies an action the SDK has already validated. `rng` is for stochastic transitions.
    fn step(&mut self, action: &Action, rng: &mut Rng) -> Result<Transition, EnvError>;

    /// Legal discrete actions in the current state, ascending. Default: every action of a `Discrete`
    /// action space; nothing for `Text` spaces (any text within the space is legal).
    fn legal_actions(&self) -> Vec<i64> {
        (0..discrete_actions::<Self>()).collect()
    }

    /// [`legal_actions`](Environment::legal_actions) written into `out` (cleared first), which the
    /// SDK calls at every step (to check the action, in random rollouts, and to list the actions
    /// after a step): override it to list the actions without allocating. Default:
    /// `legal_actions`.
    fn legal_actions_into(&self, out: &mut Vec<i64>) {
        out.clear();
        out.extend(self.legal_actions());
    }

    /// Whose turn it is (the episode is not over). Default: player 0.
    fn current_player(&self) -> u32 {
        0
    }

    /// A text rendering of the state. Default: the observation's debug form.
    fn render(&self) -> String {
        format!("{:?}", self.observation())
    }

    /// Extra information about the current state as a JSON object. Default: none.
    fn info(&self) -> Options {
        Options::Null
    }

    /// For `Text` action spaces: the commands that are valid now, like Jericho's
    /// `get_valid_actions`. Search proposes these and random rollouts pick among them; any text in
    /// the action space may still be stepped. Default: none.
    fn valid_text_actions(&self) -> Vec<String> {
        Vec::new()
    }

    /// A key for the game state (not the machine state): equal keys must mean equal futures under
    /// equal actions (same legal actions, rewards and observations), whatever path led there.
    /// Transposition tables merge states on it. Default: none, and search falls back to the
    /// machine's state hash, which never merges wrongly but merges less.
    fn state_key(&self) -> Option<Vec<u8>> {
        None
    }
}

/// Exports an [`Environment`] implementation through the wasmgym ABI.
///
/// Expands to nothing outside WebAssembly, so the crate still builds natively for tests and
/// baselines.
#[macro_export]
macro_rules! export_env {
    ($env:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            static RUNNER: $crate::__private::Slot<$env> = $crate::__private::Slot::new();

            #[unsafe(link_section = "wasmgym_abi")]
            #[used]
            static ABI_VERSION: [u8; 4] = $crate::ABI_VERSION.to_le_bytes();

            static INPUT: $crate::__private::InputBuffer = $crate::__private::InputBuffer::new();

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_input_buffer() -> i64 {
                INPUT.packed()
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_alloc(len: i32) -> i32 {
                RUNNER.with(|r| r.input_buffer(len as usize).as_mut_ptr() as i32)
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_spec() -> i64 {
                RUNNER.with(|r| $crate::__private::packed(r.spec_bytes()))
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_reset(ptr: i32, len: i32) -> i64 {
                match INPUT.get(ptr, len) {
                    Some(input) => RUNNER.with(|r| $crate::__private::packed(r.reset_bytes(input))),
                    None => RUNNER.with(|r| $crate::__private::packed(r.reset_from_input(len as usize))),
                }
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_step(ptr: i32, len: i32) -> i64 {
                match INPUT.get(ptr, len) {
                    Some(input) => RUNNER.with(|r| $crate::__private::packed(r.step_bytes(input))),
                    None => RUNNER.with(|r| $crate::__private::packed(r.step_from_input(len as usize))),
                }
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_step_actions(ptr: i32, len: i32) -> i64 {
                match INPUT.get(ptr, len) {
                    Some(input) => RUNNER.with(|r| $crate::__private::packed(r.step_actions_bytes(input))),
                    None => RUNNER.with(|r| $crate::__private::packed(r.step_actions_from_input(len as usize))),
                }
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_playout(ptr: i32, len: i32) -> i64 {
                match INPUT.get(ptr, len) {
                    Some(input) => RUNNER.with(|r| $crate::__private::packed(r.playout_bytes(input))),
                    None => RUNNER.with(|r| $crate::__private::packed(r.playout_from_input(len as usize))),
                }
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_legal_actions() -> i64 {
                RUNNER.with(|r| $crate::__private::packed(r.legal_actions_bytes()))
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_render() -> i64 {
                RUNNER.with(|r| $crate::__private::packed(r.render_bytes()))
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_rollout(seed: i64, max_steps: i32, has_first: i32, first: i64) -> i64 {
                let first = (has_first != 0).then_some(first);
                RUNNER.with(|r| $crate::__private::packed(r.rollout_bytes(seed as u64, max_steps as u32, first)))
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_text_actions() -> i64 {
                RUNNER.with(|r| $crate::__private::packed(r.text_actions_bytes()))
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_observe() -> i64 {
                RUNNER.with(|r| $crate::__private::packed(r.observe_bytes()))
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_state_key() -> i64 {
                RUNNER.with(|r| $crate::__private::packed(r.state_key_bytes()))
            }
        };
    };
}

#[doc(hidden)]
pub mod __private {
    use std::cell::UnsafeCell;

    use crate::{Environment, Runner};

    /// The single runner of a guest. WebAssembly guests here are single-threaded.
    ///
    /// Aligned so that a runner of up to 512 bytes lies within one 4 KiB page: every call writes
    /// it, and every page a call writes is copied back by the restore a search makes after it.
    #[repr(align(512))]
    pub struct Slot<E: Environment>(UnsafeCell<Option<Runner<E>>>);

    // SAFETY: wasm32-wasip1 guests have one thread, and `with` is not re-entrant (the host never
    // calls into a guest while that guest is running).
    unsafe impl<E: Environment> Sync for Slot<E> {}

    impl<E: Environment> Slot<E> {
        #[allow(clippy::new_without_default)] // `const` for a `static`; `Default` is not const
        pub const fn new() -> Self {
            Slot(UnsafeCell::new(None))
        }

        pub fn with<R>(&self, f: impl FnOnce(&mut Runner<E>) -> R) -> R {
            // SAFETY: see the `Sync` impl: one thread, no re-entrancy.
            let runner = unsafe { &mut *self.0.get() };
            f(runner.get_or_insert_with(Runner::new))
        }
    }

    /// Bytes of [`InputBuffer`]: room for any step request (an action) and most reset options.
    pub const INPUT_BUFFER_BYTES: usize = 1024;

    /// The fixed input buffer of `wasmgym_input_buffer`: a `static`, so its address is the same in
    /// every instance and every state of the module.
    pub struct InputBuffer(UnsafeCell<[u8; INPUT_BUFFER_BYTES]>);

    // SAFETY: as for `Slot`: one thread, and the host never re-enters a running guest.
    unsafe impl Sync for InputBuffer {}

    impl InputBuffer {
        #[allow(clippy::new_without_default)] // `const` for a `static`
        pub const fn new() -> Self {
            InputBuffer(UnsafeCell::new([0; INPUT_BUFFER_BYTES]))
        }

        /// `(ptr, capacity)` for the host.
        pub fn packed(&self) -> i64 {
            wasmgym_abi::pack(self.0.get() as usize as u32, INPUT_BUFFER_BYTES as u32)
        }

        /// The request the host wrote here, if `ptr` is this buffer.
        pub fn get(&self, ptr: i32, len: i32) -> Option<&[u8]> {
            if ptr as usize as u32 != self.0.get() as usize as u32 {
                return None;
            }
            // SAFETY: see the `Sync` impl; the host wrote the bytes before the call.
            let bytes = unsafe { &*self.0.get() };
            Some(&bytes[..(len.max(0) as usize).min(INPUT_BUFFER_BYTES)])
        }
    }

    pub fn packed(out: &[u8]) -> i64 {
        wasmgym_abi::pack(out.as_ptr() as usize as u32, out.len() as u32)
    }

    /// The input and answer buffers of a checker guest.
    pub struct CheckerBuffers(UnsafeCell<(Vec<u8>, Vec<u8>)>);

    // SAFETY: as for `Slot`: one thread, and the host never re-enters a running guest.
    unsafe impl Sync for CheckerBuffers {}

    impl CheckerBuffers {
        #[allow(clippy::new_without_default)] // a `static`'s initialiser, never defaulted
        pub const fn new() -> Self {
            CheckerBuffers(UnsafeCell::new((Vec::new(), Vec::new())))
        }

        /// A buffer of `len` bytes for input ‖ expected ‖ output.
        pub fn input(&self, len: usize) -> i32 {
            // SAFETY: see the `Sync` impl.
            let (input, _) = unsafe { &mut *self.0.get() };
            input.clear();
            input.resize(len, 0);
            input.as_mut_ptr() as i32
        }

        /// Splits the input, calls `check`, and encodes its answer.
        pub fn check(
            &self,
            input_len: usize,
            expected_len: usize,
            output_len: usize,
            check: impl FnOnce(&[u8], &[u8], &[u8]) -> (f64, String),
        ) -> i64 {
            // SAFETY: see the `Sync` impl.
            let (input, answer) = unsafe { &mut *self.0.get() };
            let get = |from: usize, len: usize| input.get(from..from + len).unwrap_or(&[]);
            let (score, message) =
                check(get(0, input_len), get(input_len, expected_len), get(input_len + expected_len, output_len));
            wasmgym_abi::checker::encode_score(score, &message, answer);
            packed(answer)
        }
    }
}
