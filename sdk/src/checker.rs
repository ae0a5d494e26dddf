//! Checkers: sandboxed code that scores a program's output, or an environment's final state.
//!
//! ```
//! use wasmgym_sdk::checker::{Checker, Score};
//!
//! /// Accepts numbers within 1e-6 of the expected ones.
//! struct Tolerance;
//!
//! impl Checker for Tolerance {
//!     fn check(_input: &[u8], expected: &[u8], output: &[u8]) -> Score {
//!         let numbers = |b: &[u8]| -> Vec<f64> {
//!             String::from_utf8_lossy(b).split_whitespace().filter_map(|t| t.parse().ok()).collect()
//!         };
//!         let (e, o) = (numbers(expected), numbers(output));
//!         if e.len() == o.len() && e.iter().zip(&o).all(|(a, b)| (a - b).abs() <= 1e-6) {
//!             Score::accept()
//!         } else {
//!             Score::reject(format!("expected {e:?}, got {o:?}"))
//!         }
//!     }
//! }
//!
//! wasmgym_sdk::export_checker!(Tolerance);
//! # fn main() { assert_eq!(Tolerance::check(b"", b"1.0", b"1.0000001").score, 1.0); }
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip1`. The host runs it under its own limits; a checker
//! that panics or exceeds a limit makes the test a grading error, never a silent 0.

/// A score in [0, 1] and a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// 1 is fully correct; anything else counts as a wrong answer with partial credit.
    pub score: f64,
    /// Why (shown to whoever reads the report).
    pub message: String,
}

impl Score {
    /// Fully correct.
    pub fn accept() -> Score {
        Score { score: 1.0, message: String::new() }
    }

    /// Wrong, with a reason.
    pub fn reject(message: impl Into<String>) -> Score {
        Score { score: 0.0, message: message.into() }
    }

    /// Partial credit; `score` is clamped to [0, 1] (NaN becomes 0).
    pub fn partial(score: f64, message: impl Into<String>) -> Score {
        Score { score: if score.is_nan() { 0.0 } else { score.clamp(0.0, 1.0) }, message: message.into() }
    }
}

/// A checker. Implement it on a unit struct and export it with [`export_checker!`](crate::export_checker).
pub trait Checker {
    /// Scores `output` (what the program printed) against `expected` for the test whose input was
    /// `input`. For a reward checker, `output` is empty and the state to score is read through
    /// [`fork`].
    fn check(input: &[u8], expected: &[u8], output: &[u8]) -> Score;
}

/// Queries of the environment fork a reward checker is given (the real episode never sees them).
/// Outside a reward check (or natively) there is no fork, and every query returns `None`.
pub mod fork {
    #[cfg(target_family = "wasm")]
    #[link(wasm_import_module = "wasmgym_env")]
    unsafe extern "C" {
        #[link_name = "render"]
        fn host_render(ptr: *mut u8, cap: i32) -> i32;
        #[link_name = "step"]
        fn host_step(ptr: *const u8, len: i32) -> f64;
    }

    /// The fork's `render()` text.
    pub fn render() -> Option<String> {
        #[cfg(target_family = "wasm")]
        {
            let mut buf = vec![0u8; 4096];
            loop {
                // SAFETY: the host writes at most `cap` bytes into `buf`.
                let n = unsafe { host_render(buf.as_mut_ptr(), buf.len() as i32) };
                if n < 0 {
                    return None;
                }
                if n as usize <= buf.len() {
                    buf.truncate(n as usize);
                    return String::from_utf8(buf).ok();
                }
                buf.resize(n as usize, 0);
            }
        }
        #[cfg(not(target_family = "wasm"))]
        None
    }

    /// Steps the fork with a text action; player 0's reward, or `None` if the step was refused.
    pub fn step(action: &str) -> Option<f64> {
        #[cfg(target_family = "wasm")]
        {
            // SAFETY: the host reads `len` bytes at `ptr`.
            let r = unsafe { host_step(action.as_ptr(), action.len() as i32) };
            if r.is_nan() { None } else { Some(r) }
        }
        #[cfg(not(target_family = "wasm"))]
        {
            let _ = action;
            None
        }
    }
}

/// Exports a [`Checker`] implementation through the checker ABI (`docs/abi.md`).
///
/// Expands to nothing outside WebAssembly, so the crate still builds natively for tests.
#[macro_export]
macro_rules! export_checker {
    ($checker:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            static BUFFERS: $crate::__private::CheckerBuffers = $crate::__private::CheckerBuffers::new();

            #[unsafe(link_section = "wasmgym_checker_abi")]
            #[used]
            static CHECKER_ABI_VERSION: [u8; 4] = $crate::CHECKER_ABI_VERSION.to_le_bytes();

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_checker_alloc(len: i32) -> i32 {
                BUFFERS.input(len as usize)
            }

            #[unsafe(no_mangle)]
            extern "C" fn wasmgym_check(_ptr: i32, input_len: i32, expected_len: i32, output_len: i32) -> i64 {
                BUFFERS.check(input_len as usize, expected_len as usize, output_len as usize, |i, e, o| {
                    let score = <$checker as $crate::checker::Checker>::check(i, e, o);
                    (score.score, score.message)
                })
            }
        };
    };
}
