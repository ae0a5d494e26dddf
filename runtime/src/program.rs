//! [`ProgramModule`] (a compiled WASI command, shareable) and [`Program`] (one instance that runs
//! it again and again, each run from the same pristine state).
//!
//! A program is an ordinary `wasm32-wasip1` command: it exports `_start`, reads stdin, writes
//! stdout and exits. Loading compiles it once; [`ProgramModule::instantiate`] creates an instance
//! and captures its complete state before `_start` ever ran; every [`Program::run`] writes that
//! pristine state back (memories, mutable globals, host state), hands the run its own WASI inputs
//! and calls `_start`. So a run can neither see nor disturb another, and costs a memory copy
//! instead of an instantiation.
//!
//! Programs that mutate tables or drop segments at run time (`table.grow`, `elem.drop`...), whose
//! effects a snapshot does not hold, are accepted too, and get a fresh instance for every run
//! instead (correct, slower).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{ExternType, Linker, TypedFunc};

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::module::{ModuleInner, Runtime, to_binary};
use crate::rewrite::Options;
use crate::sandbox::Sandbox;
use crate::snapshot::SnapshotData;
use crate::wasi::{self, Io};

/// A compiled program: validated, rewritten and linked once; cloning is cheap and clones share
/// the compiled code (one per worker thread is the way to run programs in parallel).
#[derive(Clone)]
pub struct ProgramModule {
    inner: Arc<ModuleInner>,
}

impl std::fmt::Debug for ProgramModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgramModule").field("fresh_instance_per_run", &self.fresh_instance_per_run()).finish()
    }
}

/// What a module may import besides WASI preview 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Imports {
    /// WASI only (programs).
    Wasi,
    /// WASI and the fork queries of `wasmgym_env` (checkers).
    ForkQueries,
    /// WASI and `host.call`, stubbed (reactor interpreters).
    HostCall,
}

/// Compiles `binary` rewritten with `options` (refused by `check` on its layout before any
/// compiling) and links it against our WASI.
pub(crate) fn compile(
    runtime: &Runtime,
    binary: &[u8],
    options: Options,
    imports: Imports,
    check: &dyn Fn(&crate::rewrite::Layout) -> Result<()>,
) -> Result<ModuleInner> {
    let options = Options { limits: runtime.config().load_limits.clone(), ..options };
    let crate::module::Prepared { module, layout, hash } = runtime.prepare(binary, &options, check)?;
    let mut linker = Linker::new(runtime.engine());
    wasi::link_all(&mut linker, &module, imports == Imports::ForkQueries, imports == Imports::HostCall)?;
    let pre = linker.instantiate_pre(&module).map_err(|e| Error::InvalidModule { message: format!("{e:#}") })?;
    let slotted = runtime.slotted(&module, |linker, module| {
        wasi::link_all(linker, module, imports == Imports::ForkQueries, imports == Imports::HostCall)
    });
    Ok(ModuleInner {
        pre,
        slotted,
        initial_images: Default::default(),
        slot_memory: Default::default(),
        types: Default::default(),
        ticker: runtime.ticker().clone(),
        layout,
        hash,
        spec: None,
        size: binary.len(),
        budget: runtime.budget().clone(),
        cow_fork_min_bytes: usize::MAX,
        snapshot_key: None,
        max_wasm_stack: runtime.config().max_wasm_stack,
        env_exports_checked: Default::default(),
    })
}

impl Runtime {
    /// Compiles a WASI command module (binary or WAT) as a program.
    ///
    /// Refused: bytes that are not WebAssembly ([`Error::InvalidModule`]), imports the sandbox does
    /// not provide ([`Error::UnknownImport`]), no `_start` of type `() -> ()`
    /// ([`Error::MissingExport`]), and environments or checkers ([`Error::WrongKind`]).
    pub fn load_program(&self, wasm: &[u8]) -> Result<ProgramModule> {
        let binary = to_binary(wasm)?;
        let options = Options { allow_table_mutation: true, ..Options::default() };
        let inner = compile(self, &binary, options, Imports::Wasi, &|layout| match layout
            .exports
            .iter()
            .find(|e| e.starts_with("wasmgym_"))
        {
            Some(name) => Err(Error::WrongKind {
                message: format!(
                    "it exports `{name}`, so it is a wasmgym environment or checker, not a program: pass a \
                         WASI command (a `fn main` built for wasm32-wasip1)"
                ),
            }),
            None => Ok(()),
        })?;
        let exports = &inner.layout.exports;
        let start = inner.pre.module().get_export("_start");
        match start {
            Some(ExternType::Func(ty)) if ty.params().len() == 0 && ty.results().len() == 0 => {}
            Some(_) => {
                return Err(Error::MissingExport {
                    name: "_start".into(),
                    expected: "a function () -> (), the entry point of a WASI command".into(),
                });
            }
            None if exports.iter().any(|e| e == "_initialize") => {
                return Err(Error::WrongKind {
                    message: "it is a WASI reactor (`_initialize`, no `_start`), not a command: build a binary \
                              crate (`fn main`), not a library"
                        .into(),
                });
            }
            None => {
                return Err(Error::MissingExport {
                    name: "_start".into(),
                    expected: "a function () -> (), the entry point of a WASI command: build a binary with `fn main`"
                        .into(),
                });
            }
        }
        inner.layout.require_memory()?;
        Ok(ProgramModule { inner: Arc::new(inner) })
    }
}

impl ProgramModule {
    /// An instance under `limits`, captured pristine (before `_start`). Fails with the limit
    /// error if the module cannot even be instantiated under them (for example a declared initial
    /// memory over `Limits::memory_bytes`).
    pub fn instantiate(&self, limits: Limits) -> Result<Program> {
        let mut sandbox = Sandbox::new(&self.inner, limits.clone(), false)?;
        let pristine = if self.fresh_instance_per_run() { None } else { Some(sandbox.capture()?) };
        let start = sandbox.func("_start")?;
        Ok(Program { module: self.clone(), limits, sandbox, pristine, start, used: false })
    }

    /// Whether runs get a fresh instance each rather than a restored snapshot (the module mutates
    /// tables or drops segments, state a snapshot does not hold).
    pub fn fresh_instance_per_run(&self) -> bool {
        self.inner.layout.unsnapshotted.is_some()
    }

    /// BLAKE3 hash of the module's bytes.
    pub fn hash(&self) -> [u8; 32] {
        self.inner.hash
    }

    /// The native stack a thread needs to run this program: the runtime's
    /// [`RuntimeConfig::max_wasm_stack`](crate::RuntimeConfig::max_wasm_stack) and 4 MiB for the
    /// host's own frames.
    pub fn thread_stack_bytes(&self) -> usize {
        self.inner.max_wasm_stack + (4 << 20)
    }
}

/// What one run gets: its WASI world. Everything else is empty: no arguments beyond `argv[0]`, no
/// variables, no files.
#[derive(Clone, Debug, Default)]
pub struct RunInput {
    /// Arguments after `argv[0]` (which is `"program"`).
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// The bytes stdin reads before end of file.
    pub stdin: Vec<u8>,
    /// A host directory the run may read (preopened as `.`, read-only), if any.
    pub dir: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug)]
pub enum RunEnd {
    /// `_start` returned (code 0) or the program called `proc_exit(code)`.
    Exited {
        /// The exit code.
        code: i32,
    },
    /// A trap or a limit stopped it: [`Error::Trap`], [`Error::OutOfFuel`], [`Error::Deadline`],
    /// [`Error::MemoryLimit`], [`Error::TableLimit`], [`Error::StackOverflow`], [`Error::OutputLimit`].
    Stopped(Error),
}

/// The outcome of one run, with what it used.
#[derive(Debug)]
pub struct RunReport {
    /// How it ended.
    pub end: RunEnd,
    /// Everything it wrote to stdout (bounded by `Limits::output_bytes`, with stderr).
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// Fuel used by `_start`.
    pub fuel_used: u64,
    /// Wall-clock time of `_start`, as the host measured it (the program never sees it).
    pub wall_time: Duration,
    /// Size of its linear memory at the end: its peak, since memory never shrinks during a run.
    pub memory_bytes: u64,
}

impl RunReport {
    /// The exit code, if the program exited.
    pub fn exit_code(&self) -> Option<i32> {
        match self.end {
            RunEnd::Exited { code } => Some(code),
            RunEnd::Stopped(_) => None,
        }
    }
}

/// One instance of a program that runs it any number of times, each run from the pristine state.
/// Owns its store: use one per thread.
pub struct Program {
    module: ProgramModule,
    limits: Limits,
    sandbox: Sandbox,
    /// The state before `_start` (none for modules that get a fresh instance per run).
    pristine: Option<SnapshotData>,
    start: TypedFunc<(), ()>,
    /// `_start` ran in this instance since it was last made pristine.
    used: bool,
}

impl Program {
    /// The limits runs are under (fuel and deadline per run).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs the program once on `input`, from the pristine state. Every way the program can end is
    /// in the report (`Ok`); `Err` is a failure of the host: the granted directory cannot be opened,
    /// or the pristine state cannot be written back.
    pub fn run(&mut self, input: &RunInput) -> Result<RunReport> {
        self.make_pristine()?;
        let root = match &input.dir {
            Some(path) => Some(Arc::new(
                cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())
                    .map_err(|source| Error::Io { path: path.display().to_string(), source })?,
            )),
            None => None,
        };
        let mut args = vec!["program".to_owned()];
        args.extend(input.args.iter().cloned());
        self.sandbox.store.data_mut().io = Io {
            args,
            env: input.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            stdin: input.stdin.clone(),
            root,
            virtual_sleep: true,
            ..Io::default()
        };
        self.used = true;
        let fuel_before = self.sandbox.store.data().vars.fuel_consumed;
        let started = Instant::now();
        let result = self.sandbox.call(&self.start, ());
        let wall_time = started.elapsed();
        let state = self.sandbox.store.data_mut();
        state.io = Io::default(); // closes the run's files
        let fuel_used = state.vars.fuel_consumed - fuel_before;
        let stdout = std::mem::take(&mut state.vars.stdout);
        let stderr = std::mem::take(&mut state.vars.stderr);
        let end = match result {
            Ok(()) => RunEnd::Exited { code: 0 },
            Err(Error::Exit { code }) => RunEnd::Exited { code },
            Err(e) => RunEnd::Stopped(e),
        };
        Ok(RunReport { end, stdout, stderr, fuel_used, wall_time, memory_bytes: self.sandbox.memory_bytes() })
    }

    /// Puts the instance back in its state before `_start`: a restore, or a fresh instance for
    /// modules whose state a snapshot does not hold.
    fn make_pristine(&mut self) -> Result<()> {
        if !self.used {
            return Ok(());
        }
        match &self.pristine {
            Some(pristine) => {
                if self.sandbox.restore(pristine)? {
                    self.start = self.sandbox.func("_start")?;
                }
            }
            None => {
                self.sandbox.renew()?;
                self.start = self.sandbox.func("_start")?;
            }
        }
        self.used = false;
        Ok(())
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program").field("module", &self.module).field("limits", &self.limits).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::MemoryImage;

    // Issue 9, item 7: a snapshot whose memory is smaller than the module's minimum restored.
    #[test]
    fn a_snapshot_the_memory_could_never_hold_is_refused_and_changes_nothing() {
        let runtime = Runtime::new().unwrap();
        let wasm = wat::parse_str(r#"(module (memory 2 4) (func (export "_start")))"#).unwrap();
        let mut program = runtime.load_program(&wasm).unwrap().instantiate(Limits::default()).unwrap();
        let mut data = program.sandbox.capture().unwrap();
        for pages in [1, 5] {
            data.memories[0] = MemoryImage::from_bytes(&vec![1; pages * 65536]);
            let e = program.sandbox.restore(&data).unwrap_err().to_string();
            assert!(e.contains("can never hold"), "{e}");
            assert!(!program.sandbox.is_poisoned());
        }
        data.memories[0] = MemoryImage::from_bytes(&vec![0; 2 * 65536]);
        data.globals.push(crate::snapshot::GlobalValue::I32(0));
        assert!(program.sandbox.restore(&data).is_err(), "a global the module does not have");
        assert!(program.run(&RunInput::default()).is_ok());
    }
}
