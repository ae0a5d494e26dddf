//! The one error type of the runtime, and the one place where wasmtime errors become it.

use std::time::Duration;

/// A `Result` whose error is the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, one variant per outcome a caller branches on.
///
/// Variants marked *poisons* leave the instance refusing calls (with [`Error::Poisoned`]) until a
/// snapshot is restored into it: the guest stopped mid-call, so its memory may be half-updated.
/// Every other variant leaves the instance exactly as it was before the call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a valid WebAssembly module.
    #[error("invalid module: {message}. Pass a core WebAssembly module built for wasm32-wasip1")]
    InvalidModule {
        /// What the validator said.
        message: String,
    },
    /// The module was built against another ABI version, or carries no version stamp.
    #[error(
        "ABI version mismatch: the {what} has {}, this runtime supports {what} ABI version {supported}. Rebuild \
         it against a wasmgym-sdk that speaks version {supported} ({})",
        found.map_or("no version stamp".to_string(), |v| format!("version {v}")),
        if *what == "checker" { "`export_checker!`" } else { "`export_env!`" }
    )]
    AbiMismatch {
        /// The version stamped in the module, if any.
        found: Option<u32>,
        /// The version this runtime speaks.
        supported: u32,
        /// What the module was loaded as: `"environment"` or `"checker"`.
        what: &'static str,
    },
    /// A required export is missing or has the wrong signature.
    #[error("missing export `{name}` (expected {expected}): {}", export_fix(name))]
    MissingExport {
        /// The export's name.
        name: String,
        /// The signature it must have.
        expected: String,
    },
    /// The module imports something the sandbox does not provide.
    #[error("unknown import `{module}::{name}`: {detail}")]
    UnknownImport {
        /// The import's module name.
        module: String,
        /// The import's field name.
        name: String,
        /// Why it is refused and what to do.
        detail: String,
    },
    /// The module is valid WebAssembly but of another kind than asked for: an environment or a
    /// checker loaded as a program, a program loaded as a checker.
    #[error("wrong kind of module: {message}")]
    WrongKind {
        /// What the module is, and what was expected.
        message: String,
    },
    /// The module uses a feature whose state a snapshot cannot hold.
    #[error("unsupported module: {message}")]
    Unsupported {
        /// Which feature, and what to do.
        message: String,
    },
    /// The module is over one of the static bounds checked before compiling
    /// ([`LoadLimits`](crate::LoadLimits)), which keep compile time and memory bounded.
    #[error(
        "module over the load limit on {what}: it has {found}, the limit is {limit}. Make it smaller, or load a \
         module you trust with larger `LoadLimits` (`RuntimeConfig::load_limits`, `LoadLimits::trusted()`)"
    )]
    ModuleLimit {
        /// Which bound (`module_bytes`, `functions`, `function_body_bytes`, `code_bytes`,
        /// `nesting_depth`, `locals`), with the function it was found in where there is one.
        what: String,
        /// What the module has (for a depth or size found while scanning: at least this much).
        found: u64,
        /// The bound.
        limit: u64,
    },
    /// The call used up its fuel (deterministic instruction budget). Poisons.
    #[error("out of fuel: the call used its budget of {limit} fuel. Raise `Limits::fuel_per_call` or fix the loop")]
    OutOfFuel {
        /// The budget the call had.
        limit: u64,
    },
    /// The call ran past its wall-clock deadline. Poisons.
    #[error("deadline exceeded: the call ran longer than {limit:?}. Raise `Limits::deadline` or fix the loop")]
    Deadline {
        /// The deadline the call had.
        limit: Duration,
    },
    /// The guest tried to grow its memory past the cap. Poisons (at instantiation: nothing to poison).
    #[error(
        "memory limit: the guest asked for {requested} bytes of linear memory, the cap is {limit}. Raise \
         `Limits::memory_bytes` or use less memory"
    )]
    MemoryLimit {
        /// Bytes the guest asked for.
        requested: u64,
        /// The cap.
        limit: u64,
    },
    /// The runtime's total memory cap (`RuntimeConfig::memory_cap`) would be exceeded: by a new
    /// instance or fork (nothing is created), or by a call that grew or wrote memory (poisons).
    #[error(
        "memory cap: {requested} more bytes would take the runtime past its cap of {cap} bytes ({in_use} in use). \
         Drop forks and instances you no longer need, or raise `RuntimeConfig::memory_cap`"
    )]
    MemoryCap {
        /// Bytes asked for.
        requested: u64,
        /// Bytes the runtime held when asked.
        in_use: u64,
        /// The cap.
        cap: u64,
    },
    /// The guest tried to grow a table past the cap. Poisons.
    #[error("table limit: the guest asked for {requested} table elements, the cap is {limit}")]
    TableLimit {
        /// Elements the guest asked for.
        requested: u64,
        /// The cap.
        limit: u64,
    },
    /// The guest exhausted its stack (for example unbounded recursion): either wasmtime's call
    /// stack or the shadow stack a compiled language keeps in linear memory. Poisons.
    #[error(
        "stack overflow: the guest exhausted its {}. Recurse less, or raise {}",
        if *shadow { "shadow stack in linear memory" } else { "wasm call stack" },
        if *shadow { "the guest's stack size (link with -zstack-size=N)" } else { "`RuntimeConfig::max_wasm_stack`" }
    )]
    StackOverflow {
        /// The shadow stack in linear memory overflowed (rather than the wasm call stack).
        shadow: bool,
    },
    /// The guest wrote more to stdout and stderr than allowed. Poisons.
    #[error("output limit: the guest wrote more than {limit} bytes to stdout/stderr. Raise `Limits::output_bytes`")]
    OutputLimit {
        /// The cap in bytes.
        limit: usize,
    },
    /// The guest trapped (panic, `unreachable`, out-of-bounds access...). Poisons.
    #[error("guest trapped: {message}")]
    Trap {
        /// The trap and its backtrace, as wasmtime reports them.
        message: String,
    },
    /// The guest called `proc_exit`. Poisons.
    #[error("guest exited with code {code}: environments must not call proc_exit (std::process::exit)")]
    Exit {
        /// The exit code.
        code: i32,
    },
    /// The action is outside the action space or not legal now. The state is unchanged.
    #[error("illegal action {action}: {message}")]
    IllegalAction {
        /// The action, as text.
        action: String,
        /// Why it was refused.
        message: String,
    },
    /// The environment reported an error of its own (for example bad reset options).
    #[error("environment error: {message}")]
    Guest {
        /// The environment's message.
        message: String,
    },
    /// The call is not valid now (for example `step` before `reset` or after the episode ended).
    /// The state is unchanged.
    #[error("invalid call: {message}")]
    InvalidCall {
        /// Why, and what to call instead.
        message: String,
    },
    /// The guest broke the ABI's memory protocol (bad output pointer, undecodable bytes). Poisons.
    #[error("ABI violation by the guest: {message}")]
    Protocol {
        /// What was wrong.
        message: String,
    },
    /// Snapshot bytes are truncated, corrupt, of another format version or of another module.
    #[error("bad snapshot: {reason}")]
    BadSnapshot {
        /// What is wrong with it.
        reason: String,
    },
    /// An earlier call stopped the guest mid-way; restore a snapshot to use the instance again.
    #[error("instance unusable after an earlier error ({cause}): restore a snapshot or create a new instance")]
    Poisoned {
        /// The error that poisoned it.
        cause: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Anything else the engine reported (a bug or resource exhaustion on the host).
    #[error("runtime error: {message}")]
    Runtime {
        /// What the engine said.
        message: String,
    },
}

impl Error {
    /// Whether this error leaves the instance poisoned (see the type's docs).
    pub fn poisons(&self) -> bool {
        matches!(
            self,
            Error::OutOfFuel { .. }
                | Error::Deadline { .. }
                | Error::MemoryLimit { .. }
                | Error::MemoryCap { .. }
                | Error::TableLimit { .. }
                | Error::StackOverflow { .. }
                | Error::OutputLimit { .. }
                | Error::Trap { .. }
                | Error::Exit { .. }
                | Error::Protocol { .. }
                | Error::Runtime { .. }
        )
    }

    /// A short machine-readable name of the variant, for JSON reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidModule { .. } => "invalid_module",
            Error::AbiMismatch { .. } => "abi_mismatch",
            Error::MissingExport { .. } => "missing_export",
            Error::UnknownImport { .. } => "unknown_import",
            Error::Unsupported { .. } => "unsupported",
            Error::ModuleLimit { .. } => "module_limit",
            Error::WrongKind { .. } => "wrong_kind",
            Error::OutOfFuel { .. } => "out_of_fuel",
            Error::Deadline { .. } => "deadline",
            Error::MemoryLimit { .. } => "memory_limit",
            Error::MemoryCap { .. } => "memory_cap",
            Error::TableLimit { .. } => "table_limit",
            Error::StackOverflow { .. } => "stack_overflow",
            Error::OutputLimit { .. } => "output_limit",
            Error::Trap { .. } => "trap",
            Error::Exit { .. } => "exit",
            Error::IllegalAction { .. } => "illegal_action",
            Error::Guest { .. } => "guest_error",
            Error::InvalidCall { .. } => "invalid_call",
            Error::Protocol { .. } => "protocol",
            Error::BadSnapshot { .. } => "bad_snapshot",
            Error::Poisoned { .. } => "poisoned",
            Error::Io { .. } => "io",
            Error::Runtime { .. } => "runtime",
        }
    }
}

/// How to provide export `name`: by the macro of the kind of module it belongs to.
fn export_fix(name: &str) -> &'static str {
    match name {
        "_start" => "build a program with a `fn main` for wasm32-wasip1",
        n if n.starts_with("wasmgym_check") => "export the checker with `export_checker!`",
        n if n.starts_with("wasmgym_") => "export the environment with `export_env!`",
        _ => "export it with the signature above",
    }
}

/// Errors raised by our own host code inside a guest call; carried through wasmtime as the error's
/// payload and turned back into [`Error`] by [`from_wasmtime`].
#[derive(Debug)]
pub(crate) enum HostTrap {
    MemoryLimit {
        requested: u64,
        limit: u64,
    },
    TableLimit {
        requested: u64,
        limit: u64,
    },
    MemoryCap {
        requested: u64,
        in_use: u64,
        cap: u64,
    },
    OutputLimit {
        limit: usize,
    },
    Exit {
        code: i32,
    },
    /// A program slept (on the virtual clock) longer than its deadline: reported as
    /// [`Error::Deadline`], as if it had waited that long.
    SleptPastDeadline {
        limit: Duration,
    },
}

impl std::fmt::Display for HostTrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for HostTrap {}

/// The budgets a call ran under, so limit errors can name them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallBudget {
    pub fuel: u64,
    pub deadline: Duration,
}

/// What the instance looked like after a failed call, read before classifying the error.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TrapContext {
    /// The shadow stack pointer had left linear memory (wrapped below zero or past the end).
    pub shadow_stack_escaped: bool,
}

/// Converts an error from a wasmtime call into an [`Error`]. The only place traps are classified.
pub(crate) fn from_wasmtime(err: wasmtime::Error, budget: CallBudget, context: TrapContext) -> Error {
    if let Some(host) = err.downcast_ref::<HostTrap>() {
        return match *host {
            HostTrap::MemoryLimit { requested, limit } => Error::MemoryLimit { requested, limit },
            HostTrap::TableLimit { requested, limit } => Error::TableLimit { requested, limit },
            HostTrap::MemoryCap { requested, in_use, cap } => Error::MemoryCap { requested, in_use, cap },
            HostTrap::OutputLimit { limit } => Error::OutputLimit { limit },
            HostTrap::Exit { code } => Error::Exit { code },
            HostTrap::SleptPastDeadline { limit } => Error::Deadline { limit },
        };
    }
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::OutOfFuel => Error::OutOfFuel { limit: budget.fuel },
            wasmtime::Trap::Interrupt => Error::Deadline { limit: budget.deadline },
            wasmtime::Trap::StackOverflow => Error::StackOverflow { shadow: false },
            wasmtime::Trap::MemoryOutOfBounds if context.shadow_stack_escaped => Error::StackOverflow { shadow: true },
            _ => Error::Trap { message: format!("{err:#}") },
        };
    }
    Error::Runtime { message: format!("{err:#}") }
}
