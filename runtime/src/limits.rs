//! Hard limits on a guest, each mapped to one [`Error`](crate::Error) variant.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits for one instance and for each call into it. Plain data; `Limits::default()` is a safe
/// starting point for environments.
///
/// What they do not cover: host memory used by snapshots (they live outside the guest), compile
/// time of a module, and the time the host spends between calls. For a graded program a "call" is
/// one run of `_start`; `docs/grading.md` says what each limit does not cover there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Fuel (about one unit per wasm instruction) for one call (`reset`, `step`, ...). Deterministic:
    /// the same call in the same state always uses the same fuel. `None`: no fuel limit.
    /// → [`Error::OutOfFuel`](crate::Error::OutOfFuel).
    pub fuel_per_call: Option<u64>,
    /// Wall-clock time for one call, enforced by epoch interruption with the runtime's tick
    /// (`RuntimeConfig::epoch_tick`) as its resolution. Not deterministic: prefer fuel for budgets
    /// that must reproduce. `None`: no deadline. → [`Error::Deadline`](crate::Error::Deadline).
    pub deadline: Option<Duration>,
    /// Linear memory of the instance, in bytes, including the initial size.
    /// → [`Error::MemoryLimit`](crate::Error::MemoryLimit).
    pub memory_bytes: u64,
    /// Elements in each table. → [`Error::TableLimit`](crate::Error::TableLimit).
    pub table_elements: u64,
    /// Bytes of captured stdout plus stderr held by the instance.
    /// → [`Error::OutputLimit`](crate::Error::OutputLimit).
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel_per_call: Some(1_000_000_000),
            deadline: Some(Duration::from_secs(10)),
            memory_bytes: 256 << 20,
            table_elements: 100_000,
            output_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// No fuel limit and no deadline; memory, table and output caps as in `default()`.
    pub fn unmetered() -> Self {
        Limits { fuel_per_call: None, deadline: None, ..Limits::default() }
    }
}

/// Static bounds on a module, checked before it is compiled, so that compiling an untrusted module
/// takes bounded time and memory (compile cost grows with code size, and faster than linearly with
/// the nesting depth of blocks). A module over any of them is refused with
/// [`Error::ModuleLimit`](crate::Error::ModuleLimit) naming the bound, before the compiler sees it.
///
/// The defaults admit every guest a Rust or C toolchain emits for an environment, checker or
/// program (the built-ins use well under a tenth of each) and bound the worst case (measured in
/// `docs/grading.md`, "Compile limits"); large trusted modules such as an interpreter load under
/// [`LoadLimits::trusted`], via [`RuntimeConfig::load_limits`](crate::RuntimeConfig::load_limits)
/// or [`Runtime::with_load_limits`](crate::Runtime::with_load_limits).
///
/// What they do not cover: the time to validate and scan the module (linear in its size, about
/// 1 ms per MiB) and instantiation, which [`Limits`] bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadLimits {
    /// Size of the module in bytes (after WAT is parsed).
    pub module_bytes: usize,
    /// Functions defined in the module.
    pub functions: u32,
    /// Size of one function body, in bytes.
    pub function_body_bytes: u32,
    /// Size of all function bodies together, in bytes.
    pub code_bytes: usize,
    /// Depth of nested blocks (`block`, `loop`, `if`, `try_table`) in one function.
    pub nesting_depth: u32,
    /// Locals declared by one function (parameters not counted).
    pub locals: u32,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            module_bytes: 16 << 20,
            functions: 50_000,
            function_body_bytes: 1 << 20,
            code_bytes: 12 << 20,
            nesting_depth: 512,
            locals: 20_000,
        }
    }
}

impl LoadLimits {
    /// Bounds for modules the host trusts (built-ins, a language interpreter): as large as
    /// WebAssembly validators accept. Compile time is then unbounded for a hostile module.
    pub fn trusted() -> Self {
        LoadLimits {
            module_bytes: 1 << 30,
            functions: 1_000_000,
            function_body_bytes: 7_654_321,
            code_bytes: 1 << 30,
            nesting_depth: u32::MAX,
            locals: 50_000,
        }
    }
}
