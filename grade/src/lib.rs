//! Sandboxed grading: run an untrusted program compiled to `wasm32-wasip1` on many tests, in
//! process, and give each test a typed [`Verdict`].
//!
//! ```no_run
//! use std::path::Path;
//! use wasmgym::Runtime;
//! use wasmgym_grade::{GradeOptions, Grader, load_tests};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new()?;
//! let program = std::fs::read("sum.wasm")?;
//! let grader = Grader::new(&runtime, &program, None, GradeOptions::default())?; // compiled once
//! let tests = load_tests(Path::new("tests.jsonl"))?;
//! let report = grader.grade(&tests);                                            // in parallel
//! println!("{}/{} passed", report.summary.passed, report.summary.total);
//! # Ok(())
//! # }
//! ```
//!
//! The program is compiled once; each worker thread instantiates it once and captures the
//! pristine instance; every test restores that state and runs `_start` with the test's stdin,
//! arguments and variables (see [`Program`]). Output is compared token by token
//! ([`Compare::Tokens`], whitespace-insensitive), byte for byte ([`Compare::Exact`]), or by a
//! sandboxed checker module ([`CheckerModule`]) under its own limits.

#![deny(missing_docs)]

pub mod compile;
pub mod python;
mod tests;
mod verdict;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use compile::{CompileOptions, Lang, compile};
pub use python::{Interpreter, Measured};
pub use tests::{TestCase, TestKind, load_tests, parse_jsonl};
pub use verdict::{RuntimeError, TimeLimit, Verdict};

use serde::Serialize;
use serde::ser::SerializeStruct;
use wasmgym::{Checker, CheckerModule, Error, Limits, Program, ProgramModule, RunInput, Runtime};

/// How much of stdout and stderr a [`TestResult`] keeps.
pub const OUTPUT_HEAD_BYTES: usize = 1024;

/// Why a batch could not be graded at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GradeError {
    /// The program is not something that can run: reported once, before any test.
    #[error("invalid program ({}): {source}", reason.name())]
    InvalidProgram {
        /// Which kind of invalid.
        reason: InvalidProgram,
        /// The loader's error.
        source: Error,
    },
    /// The checker module cannot be loaded.
    #[error("invalid checker: {source}")]
    InvalidChecker {
        /// The loader's error.
        source: Error,
    },
    /// The batch would need more memory than the runtime's cap (or, without a cap, the machine)
    /// has: every worker may hold its program and checker at their memory limits at once.
    #[error("{message}")]
    Resources {
        /// What was asked for, what there is, and what to change.
        message: String,
    },
    /// The solution's source does not compile: the compiler's message (or the limit that stopped
    /// it), reported once, before any test.
    #[error("compile error: {message}")]
    CompileError {
        /// What the compiler said, clipped.
        message: String,
    },
    /// The compiler a language needs is missing or could not run: what to install.
    #[error("{message}")]
    Toolchain {
        /// What is missing and how to get it.
        message: String,
    },
    /// A test file is malformed: it names the file and, for JSONL, the line.
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    TestFile {
        /// The file (or, for a missing pair, the file that has no partner).
        path: String,
        /// The 1-based line, for JSONL.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

impl GradeError {
    /// `invalid_program`, `invalid_checker`, `resources`, `test_file`, `compile_error` or
    /// `toolchain`.
    pub fn kind(&self) -> &'static str {
        match self {
            GradeError::InvalidProgram { .. } => "invalid_program",
            GradeError::InvalidChecker { .. } => "invalid_checker",
            GradeError::Resources { .. } => "resources",
            GradeError::TestFile { .. } => "test_file",
            GradeError::CompileError { .. } => "compile_error",
            GradeError::Toolchain { .. } => "toolchain",
        }
    }
}

/// Why a program is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidProgram {
    /// The bytes are not a valid WebAssembly module (or not a core module).
    NotWasm,
    /// It imports something the sandbox does not provide.
    UnknownImport,
    /// It has no `_start () -> ()` entry point.
    NoStart,
    /// It is an environment, a checker or a reactor rather than a command.
    WrongKind,
    /// It is valid WebAssembly but uses what the sandbox does not run (shared memory, no memory).
    Unsupported,
    /// It is over a static bound checked before compiling ([`wasmgym::LoadLimits`]): too large, too
    /// many functions, blocks nested too deep.
    OverLoadLimits,
}

impl InvalidProgram {
    /// `not_wasm`, `unknown_import`, `no_start`, `wrong_kind`, `unsupported` or `over_load_limits`.
    pub fn name(self) -> &'static str {
        match self {
            InvalidProgram::NotWasm => "not_wasm",
            InvalidProgram::UnknownImport => "unknown_import",
            InvalidProgram::NoStart => "no_start",
            InvalidProgram::WrongKind => "wrong_kind",
            InvalidProgram::Unsupported => "unsupported",
            InvalidProgram::OverLoadLimits => "over_load_limits",
        }
    }

    fn of(error: &Error) -> InvalidProgram {
        match error {
            Error::UnknownImport { .. } => InvalidProgram::UnknownImport,
            Error::MissingExport { .. } => InvalidProgram::NoStart,
            Error::WrongKind { .. } => InvalidProgram::WrongKind,
            Error::Unsupported { .. } => InvalidProgram::Unsupported,
            Error::ModuleLimit { .. } => InvalidProgram::OverLoadLimits,
            _ => InvalidProgram::NotWasm,
        }
    }
}

/// How output is compared when there is no checker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compare {
    /// The same sequence of whitespace-separated tokens.
    #[default]
    Tokens,
    /// The same bytes.
    Exact,
    /// No comparison: a run that exits with 0 is accepted whatever it prints (running code for
    /// its output, as SandboxFusion's `/run_code` does). A checker, if given, still decides.
    RunOnly,
}

/// How a batch is graded. Plain data.
#[derive(Clone, Debug)]
pub struct GradeOptions {
    /// Limits of each run of the program: fuel and deadline per test, memory, tables, output.
    pub limits: Limits,
    /// Limits of each check (the checker's own, separate from the program's).
    pub checker_limits: Limits,
    /// Comparison when there is no checker.
    pub compare: Compare,
    /// Worker threads (each with its own instance); at least 1.
    pub jobs: usize,
    /// A directory every test may read (a test's own `dir` takes precedence).
    pub dir: Option<PathBuf>,
    /// How much of stdout and of stderr each [`TestResult`] keeps ([`OUTPUT_HEAD_BYTES`] by
    /// default; up to `limits.output_bytes` keeps all of it).
    pub output_head_bytes: usize,
}

impl Default for GradeOptions {
    fn default() -> Self {
        GradeOptions {
            limits: Limits {
                fuel_per_call: Some(2_000_000_000),
                deadline: Some(Duration::from_secs(2)),
                memory_bytes: 256 << 20,
                table_elements: 100_000,
                output_bytes: 1 << 20,
            },
            checker_limits: Limits {
                fuel_per_call: Some(1_000_000_000),
                deadline: Some(Duration::from_secs(2)),
                memory_bytes: 256 << 20,
                table_elements: 100_000,
                output_bytes: 64 << 10,
            },
            compare: Compare::Tokens,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            dir: None,
            output_head_bytes: OUTPUT_HEAD_BYTES,
        }
    }
}

impl GradeOptions {
    /// The defaults for Python solutions: fuel 2×10¹⁰ per test (about 5 s of interpreted Python
    /// here; a loop of 10⁶ iterations takes about 3×10⁹) and a 20 s deadline; the rest as
    /// [`GradeOptions::default`].
    pub fn python() -> GradeOptions {
        let mut options = GradeOptions::default();
        options.limits.fuel_per_call = Some(20_000_000_000);
        options.limits.deadline = Some(Duration::from_secs(20));
        options
    }
}

/// The verdict on one test and what the run used.
#[derive(Clone, Debug, PartialEq)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// 1 for accepted, the checker's score, 0 for any other failure, `None` for a grading error
    /// (which the summary counts as 0).
    pub score: Option<f64>,
    /// The exit code, if the program exited (0 or the code it gave `proc_exit`).
    pub exit_code: Option<i32>,
    /// Fuel the program used.
    pub fuel_used: u64,
    /// Wall-clock time of the run (not including the restore before it).
    pub wall_time: Duration,
    /// Peak linear memory of the run, in bytes.
    pub peak_memory_bytes: u64,
    /// The first [`GradeOptions::output_head_bytes`] of stdout (lossy UTF-8).
    pub stdout_head: String,
    /// The first [`GradeOptions::output_head_bytes`] of stderr (lossy UTF-8).
    pub stderr_head: String,
}

/// Totals over a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Tests accepted.
    pub passed: usize,
    /// Tests in the batch.
    pub total: usize,
    /// Tests that got a grading error (counted as failures in `score`: a batch with any is
    /// incomplete, and its score a lower bound).
    pub grading_errors: usize,
    /// Mean score over all tests, a grading error counting 0 (0 for an empty batch).
    pub score: f64,
    /// Wall-clock time of the whole batch.
    pub wall_time: Duration,
}

impl Summary {
    /// The totals of `tests`. A test that could not be graded counts as a failure (score 0): a
    /// batch's score is never higher than what the program earned, and never rises because a
    /// later test could not run.
    pub fn of(tests: &[TestResult], wall_time: Duration) -> Summary {
        // `+ 0.0`: an empty float sum is -0.0, which would print as a score of "-0".
        let earned: f64 = tests.iter().filter_map(|t| t.score).map(|s| s.clamp(0.0, 1.0)).sum::<f64>() + 0.0;
        Summary {
            passed: tests.iter().filter(|t| t.verdict == Verdict::Accepted).count(),
            total: tests.len(),
            grading_errors: tests.iter().filter(|t| matches!(t.verdict, Verdict::GradingError { .. })).count(),
            score: if tests.is_empty() { 0.0 } else { earned / tests.len() as f64 },
            wall_time,
        }
    }
}

/// Everything a batch produced, tests in the order given.
#[derive(Clone, Debug, PartialEq)]
pub struct GradeReport {
    /// One result per test.
    pub tests: Vec<TestResult>,
    /// Totals.
    pub summary: Summary,
}

impl GradeReport {
    /// The report as `{"tests": [...], "summary": {...}}` (a tree; to write it, serialise the report
    /// itself, which is cheaper).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a report serialises")
    }

    /// The summary with the count of each verdict, as the report's JSON has it.
    pub fn summary_json(&self) -> SummaryJson<'_> {
        let mut verdicts = BTreeMap::new();
        for t in &self.tests {
            *verdicts.entry(t.verdict.name()).or_insert(0) += 1;
        }
        SummaryJson { summary: &self.summary, verdicts }
    }
}

impl Serialize for GradeReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut doc = serializer.serialize_struct("GradeReport", 2)?;
        doc.serialize_field("tests", &self.tests)?;
        doc.serialize_field("summary", &self.summary_json())?;
        doc.end()
    }
}

/// One test as JSON: `name`, `verdict`, `message`, `time_limit` (which limit, for
/// `time_limit_exceeded`), `score`, `exit_code`, `fuel_used`, `wall_time_ms`,
/// `peak_memory_bytes`, and the heads of `stdout` and `stderr`.
impl Serialize for TestResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut test = serializer.serialize_struct("TestResult", 11)?;
        test.serialize_field("name", &self.name)?;
        test.serialize_field("verdict", self.verdict.name())?;
        test.serialize_field("message", &self.verdict.message())?;
        test.serialize_field("time_limit", &self.verdict.time_limit())?;
        test.serialize_field("score", &self.score)?;
        test.serialize_field("exit_code", &self.exit_code)?;
        test.serialize_field("fuel_used", &self.fuel_used)?;
        test.serialize_field("wall_time_ms", &(self.wall_time.as_secs_f64() * 1e3))?;
        test.serialize_field("peak_memory_bytes", &self.peak_memory_bytes)?;
        test.serialize_field("stdout", &self.stdout_head)?;
        test.serialize_field("stderr", &self.stderr_head)?;
        test.end()
    }
}

/// A batch's totals as JSON (see [`GradeReport::summary_json`]).
pub struct SummaryJson<'a> {
    summary: &'a Summary,
    verdicts: BTreeMap<&'static str, usize>,
}

impl Serialize for SummaryJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = self.summary;
        let seconds = s.wall_time.as_secs_f64();
        let mut summary = serializer.serialize_struct("Summary", 7)?;
        summary.serialize_field("passed", &s.passed)?;
        summary.serialize_field("total", &s.total)?;
        summary.serialize_field("score", &s.score)?;
        summary.serialize_field("grading_errors", &s.grading_errors)?;
        summary.serialize_field("verdicts", &self.verdicts)?;
        summary.serialize_field("wall_time_s", &seconds)?;
        summary.serialize_field("tests_per_second", &(s.total as f64 / seconds.max(1e-9)))?;
        summary.end()
    }
}

/// A program or a Python solution (and optionally a checker), compiled once, ready to grade
/// batches.
#[derive(Clone, Debug)]
pub struct Grader {
    solution: Solution,
    checker: Option<CheckerModule>,
    options: GradeOptions,
}

/// What is graded.
#[derive(Clone, Debug)]
enum Solution {
    Program(ProgramModule),
    Python(python::Solution),
}

impl Grader {
    /// Compiles the program (and the checker). An invalid program is reported here, once.
    pub fn new(
        runtime: &Runtime,
        program: &[u8],
        checker: Option<&[u8]>,
        options: GradeOptions,
    ) -> Result<Grader, GradeError> {
        let program = runtime
            .load_program(program)
            .map_err(|source| GradeError::InvalidProgram { reason: InvalidProgram::of(&source), source })?;
        let checker = checker
            .map(|bytes| runtime.load_checker(bytes))
            .transpose()
            .map_err(|source| GradeError::InvalidChecker { source })?;
        check_resources(runtime, &options, checker.is_some())?;
        Ok(Grader { solution: Solution::Program(program), checker, options })
    }

    /// A grader from modules already loaded (the caller checks resources with
    /// [`check_resources`] if it wants to).
    pub fn from_modules(program: ProgramModule, checker: Option<CheckerModule>, options: GradeOptions) -> Grader {
        Grader { solution: Solution::Program(program), checker, options }
    }

    /// A grader of Python `source` run by `interpreter` (see [`python`]). The interpreter is
    /// initialised and the source compiled here, once: a syntax error is
    /// [`GradeError::CompileError`]. `options` as for programs; [`GradeOptions::python`] has
    /// limits sized for an interpreter.
    pub fn python(
        runtime: &Runtime,
        interpreter: &Interpreter,
        source: &str,
        checker: Option<&[u8]>,
        options: GradeOptions,
    ) -> Result<Grader, GradeError> {
        let checker = checker
            .map(|bytes| runtime.load_checker(bytes))
            .transpose()
            .map_err(|source| GradeError::InvalidChecker { source })?;
        check_resources(runtime, &options, checker.is_some())?;
        let solution = match python::Solution::new(interpreter, source, options.limits.clone()) {
            Ok(Ok(solution)) => solution,
            Ok(Err(message)) => return Err(GradeError::CompileError { message }),
            Err(e) => {
                return Err(GradeError::Toolchain { message: format!("the Python interpreter cannot start: {e}") });
            }
        };
        Ok(Grader { solution: Solution::Python(solution), checker, options })
    }

    /// The options batches are graded with.
    pub fn options(&self) -> &GradeOptions {
        &self.options
    }

    /// Grades `tests` on `options.jobs` threads; results come in test order.
    pub fn grade(&self, tests: &[TestCase]) -> GradeReport {
        self.grade_each(tests, &|_, _| {})
    }

    /// [`Grader::grade`], calling `each` with a test's index and result as soon as it is graded
    /// (from the worker threads, in the order tests finish): for progress, or to stream results.
    pub fn grade_each(&self, tests: &[TestCase], each: &(dyn Fn(usize, &TestResult) + Sync)) -> GradeReport {
        let started = Instant::now();
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<TestResult>>> = Mutex::new(vec![None; tests.len()]);
        let no_worker: Mutex<Option<String>> = Mutex::new(None);
        let jobs = self.options.jobs.clamp(1, tests.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                // Each worker's stack holds the guest's wasm stack (RuntimeConfig::max_wasm_stack).
                let worker = std::thread::Builder::new().name("wasmgym-grade".into());
                let stack = match &self.solution {
                    Solution::Program(program) => program.thread_stack_bytes(),
                    Solution::Python(python) => python.interpreter.thread_stack_bytes(),
                };
                let worker = worker.stack_size(stack);
                let spawned = worker.spawn_scoped(scope, || {
                    let mut worker = Worker::new(self);
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(test) = tests.get(i) else { break };
                        let result = worker.grade(test);
                        each(i, &result);
                        mine.push((i, result));
                    }
                    let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
                    for (i, r) in mine {
                        results[i] = Some(r);
                    }
                });
                if let Err(e) = spawned {
                    *no_worker.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                }
            }
        });
        // Tests no worker took (no thread could be started) are grading errors, never dropped.
        let no_worker = no_worker.into_inner().unwrap_or_else(|e| e.into_inner()).unwrap_or_default();
        let tests: Vec<TestResult> = (results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter())
            .zip(tests)
            .map(|(result, test)| {
                result.unwrap_or_else(|| {
                    let message = format!("no worker thread could be started: {no_worker}");
                    failed(test, Verdict::GradingError { message })
                })
            })
            .collect();
        let summary = Summary::of(&tests, started.elapsed());
        GradeReport { tests, summary }
    }
}

/// Refuses a batch whose workers could together hold more memory than the runtime's cap, or, with
/// no cap, than the machine has: `jobs` × (the program's memory limit + the checker's, and against
/// the machine also the wasm stack, `RuntimeConfig::max_wasm_stack`).
pub fn check_resources(runtime: &Runtime, options: &GradeOptions, checker: bool) -> Result<(), GradeError> {
    let memory = options.limits.memory_bytes + if checker { options.checker_limits.memory_bytes } else { 0 };
    // The cap counts what instances hold; the machine also gives each worker its wasm stack.
    let (available, what, per_worker, stack) = match runtime.config().memory_cap {
        Some(cap) => (cap, "the runtime's memory cap", memory, ""),
        None => {
            let stack = runtime.config().max_wasm_stack as u64;
            (physical_memory(), "this machine's memory", memory + stack, " and the wasm stack")
        }
    };
    let jobs = options.jobs.max(1) as u64;
    let needed = per_worker.saturating_mul(jobs);
    if needed > available {
        let fit = (available / per_worker.max(1)).max(1);
        return Err(GradeError::Resources {
            message: format!(
                "{jobs} workers × {} MiB each (the program's memory limit{}{stack}) is {} MiB, more than {what} \
                 ({} MiB): use at most {fit} jobs, or a lower memory limit",
                per_worker >> 20,
                if checker { " plus the checker's" } else { "" },
                needed >> 20,
                available >> 20
            ),
        });
    }
    Ok(())
}

/// Physical memory of the machine in bytes (`u64::MAX` where it cannot be read).
fn physical_memory() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf has no preconditions.
        let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
        if pages > 0 && size > 0 {
            return (pages as u64).saturating_mul(size as u64);
        }
    }
    u64::MAX
}

/// One thread's instances: a program or an interpreter (or why it cannot be instantiated) and a
/// checker.
struct Worker<'a> {
    grader: &'a Grader,
    runner: Result<Runner, Error>,
    checker: Option<Result<Checker, Error>>,
}

enum Runner {
    Program(Program),
    Python(Box<python::Solution>, python::Worker),
}

impl<'a> Worker<'a> {
    fn new(grader: &'a Grader) -> Worker<'a> {
        let options = &grader.options;
        let runner = match &grader.solution {
            Solution::Program(program) => program.instantiate(options.limits.clone()).map(Runner::Program),
            Solution::Python(solution) => {
                solution.worker(options.limits.clone()).map(|worker| Runner::Python(Box::new(solution.clone()), worker))
            }
        };
        Worker {
            grader,
            runner,
            checker: grader.checker.as_ref().map(|c| c.instantiate(options.checker_limits.clone())),
        }
    }

    fn grade(&mut self, test: &TestCase) -> TestResult {
        let runner = match &mut self.runner {
            Ok(runner) => runner,
            // The module cannot be instantiated under the limits (a 4 GiB initial memory, a start
            // function that traps): every test gets that verdict.
            Err(e) => return failed(test, Verdict::from_error(e)),
        };
        let input = RunInput {
            args: test.args.clone(),
            env: test.env.clone(),
            stdin: test.stdin.clone(),
            dir: test.dir.clone().or_else(|| self.grader.options.dir.clone()),
        };
        let ran = match runner {
            Runner::Program(_) if test.kind != TestKind::Output => {
                let message = "function-call and assert-style tests need a Python solution (--lang python)".into();
                return failed(test, Verdict::GradingError { message });
            }
            Runner::Program(program) => program.run(&input).map(|report| (report, None)),
            Runner::Python(solution, worker) => solution.run(worker, test, &input),
        };
        let (report, decided) = match ran {
            Ok(ran) => ran,
            Err(e) => return failed(test, Verdict::GradingError { message: format!("the host failed: {e}") }),
        };
        let (verdict, score) = match decided.or_else(|| Verdict::from_run(&report)) {
            // Stopped by the host (the runtime's memory cap): not a score the program earned.
            Some(verdict @ Verdict::GradingError { .. }) => (verdict, None),
            Some(Verdict::Accepted) => (Verdict::Accepted, Some(1.0)),
            Some(verdict) => (verdict, Some(0.0)),
            None => self.judge(test, &report.stdout),
        };
        TestResult {
            name: test.name.clone(),
            verdict,
            score,
            exit_code: report.exit_code(),
            fuel_used: report.fuel_used,
            wall_time: report.wall_time,
            peak_memory_bytes: report.memory_bytes,
            stdout_head: head(&report.stdout, self.grader.options.output_head_bytes),
            stderr_head: head(&report.stderr, self.grader.options.output_head_bytes),
        }
    }

    /// The verdict on the output of a successful run.
    fn judge(&mut self, test: &TestCase, output: &[u8]) -> (Verdict, Option<f64>) {
        match &mut self.checker {
            None => match compare(self.grader.options.compare, &test.expected_stdout, output) {
                None => (Verdict::Accepted, Some(1.0)),
                Some(message) => (Verdict::WrongAnswer { message }, Some(0.0)),
            },
            Some(Err(e)) => {
                (Verdict::GradingError { message: format!("the checker cannot be instantiated: {e}") }, None)
            }
            Some(Ok(checker)) => match checker.check(&test.stdin, &test.expected_stdout, output) {
                Ok(s) if s.score >= 1.0 => (Verdict::Accepted, Some(1.0)),
                Ok(s) => (Verdict::WrongAnswer { message: s.message }, Some(s.score)),
                Err(e) => (Verdict::GradingError { message: format!("the checker failed: {e}") }, None),
            },
        }
    }
}

/// A result for a test that never ran.
fn failed(test: &TestCase, verdict: Verdict) -> TestResult {
    let score = if matches!(verdict, Verdict::GradingError { .. }) { None } else { Some(0.0) };
    TestResult {
        name: test.name.clone(),
        verdict,
        score,
        exit_code: None,
        fuel_used: 0,
        wall_time: Duration::ZERO,
        peak_memory_bytes: 0,
        stdout_head: String::new(),
        stderr_head: String::new(),
    }
}

fn head(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

/// `None` if `output` matches `expected`, otherwise where it first differs.
pub fn compare(mode: Compare, expected: &[u8], output: &[u8]) -> Option<String> {
    match mode {
        Compare::Exact => {
            if expected == output {
                return None;
            }
            let at = expected.iter().zip(output).take_while(|(a, b)| a == b).count();
            Some(format!("byte {at} differs (expected {} bytes, got {})", expected.len(), output.len()))
        }
        Compare::RunOnly => None,
        Compare::Tokens => {
            let tokens = |b: &[u8]| -> Vec<Vec<u8>> {
                b.split(|c| c.is_ascii_whitespace()).filter(|t| !t.is_empty()).map(<[u8]>::to_vec).collect()
            };
            let (e, o) = (tokens(expected), tokens(output));
            let shown = |t: &[u8]| {
                let s = String::from_utf8_lossy(&t[..t.len().min(40)]).into_owned();
                if t.len() > 40 { format!("{s}…") } else { s }
            };
            for (i, (a, b)) in e.iter().zip(&o).enumerate() {
                if a != b {
                    return Some(format!("token {}: expected `{}`, got `{}`", i + 1, shown(a), shown(b)));
                }
            }
            (e.len() != o.len()).then(|| format!("expected {} tokens, got {}", e.len(), o.len()))
        }
    }
}

/// Whether two JSON values are equal as Python compares what they decode to: numbers by value
/// (`1 == 1.0`, `True == 1`), arrays and objects element by element.
pub fn compare_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    let number = |v: &Value| match v {
        Value::Number(n) => n.as_f64().map(|f| (f, n.as_i64().or_else(|| n.as_u64().map(|u| u as i64)))),
        Value::Bool(b) => Some((f64::from(u8::from(*b)), Some(i64::from(*b)))),
        _ => None,
    };
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| compare_json(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| compare_json(v, w)))
        }
        _ => match (number(a), number(b)) {
            (Some((_, Some(i))), Some((_, Some(j)))) => i == j,
            (Some((f, _)), Some((g, _))) => f == g,
            _ => a == b,
        },
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn a_batch_of_grading_errors_scores_positive_zero() {
        let test = TestCase { name: "t".into(), ..TestCase::default() };
        let errors = vec![failed(&test, Verdict::GradingError { message: "host".into() }); 3];
        let summary = Summary::of(&errors, Duration::ZERO);
        assert_eq!((summary.score, summary.grading_errors), (0.0, 3));
        assert!(summary.score.is_sign_positive(), "{}", summary.score);
        assert!(Summary::of(&[], Duration::ZERO).score.is_sign_positive());
    }
}
