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
/// takes bounded time and memory. A module over any of them is refused with
/// [`Error::ModuleLimit`](crate::Error::ModuleLimit) naming the bound, before the compiler sees it.
///
/// Compile cost follows the number of control blocks (`block`, `loop`, `if`, `try_table`) more than
/// the bytes: on the reference machine about 50–200 µs and 20 KiB of compiler memory per block of
/// the function being compiled, so 12,800 empty blocks in one 38 KB function took 2.4 s and
/// 290 MiB (`cargo run --release -p wasmgym-benches --bin hostile-compile`; `docs/grading.md`,
/// "Compile limits"). The defaults admit what Rust and C toolchains emit for environments,
/// checkers and programs (the built-ins have at most 136 blocks in a function, 4,600 in all, and
/// nest 42 deep) and bound a hostile module to a few seconds and under a GiB. Large trusted modules
/// such as an interpreter load under [`LoadLimits::trusted`], via
/// [`RuntimeConfig::load_limits`](crate::RuntimeConfig::load_limits) or
/// [`Runtime::with_load_limits`](crate::Runtime::with_load_limits).
///
/// What they do not cover: the time to scan the module before compiling (linear in its size,
/// milliseconds per MiB), and instantiation, which [`Limits`] bounds.
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
    /// Control blocks (`block`, `loop`, `if`, `try_table`, `try`) in the whole module.
    pub blocks: u32,
    /// Control blocks in one function (the compiler's memory follows this).
    pub function_blocks: u32,
    /// Depth of nested blocks in one function.
    pub nesting_depth: u32,
    /// Locals declared by one function (parameters not counted).
    pub locals: u32,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            module_bytes: 16 << 20,
            functions: 10_000,
            function_body_bytes: 512 << 10,
            code_bytes: 2 << 20,
            blocks: 30_000,
            function_blocks: 5_000,
            nesting_depth: 1_000,
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
            blocks: u32::MAX,
            function_blocks: u32::MAX,
            nesting_depth: u32::MAX,
            locals: 50_000,
        }
    }
}
