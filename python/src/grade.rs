//! Grading from Python: `grade` mirrors `wasmgym grade` and returns its JSON report; `Checker`
//! runs a sandboxed checker module on an output or on a fork of an environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use wasmgym::{Limits, Runtime, RuntimeConfig};
use wasmgym_grade::{Compare, CompileOptions, GradeOptions, Grader, Interpreter, Lang, load_tests, parse_jsonl};

use crate::env::{Env, cache_dir};
use crate::errors;

/// The wasm stack graded programs get (as the CLI: recursion as deep as a native judge allows).
const GRADE_WASM_STACK: usize = 256 << 20;

/// The process's grading runtime (`python`: with WebAssembly exceptions, for the trusted CPython
/// interpreter), made on first use.
fn grading_runtime(python: bool) -> PyResult<&'static Runtime> {
    static RUNTIMES: OnceLock<Mutex<HashMap<(u32, bool), &'static Runtime>>> = OnceLock::new();
    let mut runtimes = RUNTIMES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let key = (std::process::id(), python);
    if let Some(runtime) = runtimes.get(&key) {
        return Ok(runtime);
    }
    let config = RuntimeConfig {
        compile_cache: cache_dir("modules"),
        max_wasm_stack: GRADE_WASM_STACK,
        wasm_exceptions: python,
        ..Default::default()
    };
    let runtime: &'static Runtime = Box::leak(Box::new(Runtime::with_config(config).map_err(errors::runtime)?));
    runtimes.insert(key, runtime);
    Ok(runtime)
}

/// The CPython interpreter for WASI (`scripts/get-python.sh`), loaded once per process.
fn interpreter() -> PyResult<&'static Interpreter> {
    static INTERPRETERS: OnceLock<Mutex<HashMap<u32, &'static Interpreter>>> = OnceLock::new();
    let mut interpreters = INTERPRETERS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if let Some(interpreter) = interpreters.get(&pid) {
        return Ok(interpreter);
    }
    let interpreter = Interpreter::load(grading_runtime(true)?, &Interpreter::default_dir()).map_err(errors::grade)?;
    let interpreter: &'static Interpreter = Box::leak(Box::new(interpreter));
    interpreters.insert(pid, interpreter);
    Ok(interpreter)
}

/// Grades `program` (a wasm module's bytes, or source in `language`: "c", "cpp", "python") on
/// tests from `tests_path` (a directory of .in/.out pairs or a .jsonl file) or `tests_jsonl`
/// (JSONL text), with an optional checker module. Returns the report as JSON text (as
/// `wasmgym grade --json` prints it). The GIL is released while grading.
#[pyfunction]
#[pyo3(signature = (program, language, *, tests_path=None, tests_jsonl=None, checker=None, exact=false, fuel=None, time_limit_s=None, memory_mib=256, jobs=None, dir=None))]
#[allow(clippy::too_many_arguments)]
pub fn grade(
    py: Python<'_>,
    program: Vec<u8>,
    language: &str,
    tests_path: Option<PathBuf>,
    tests_jsonl: Option<String>,
    checker: Option<Vec<u8>>,
    exact: bool,
    fuel: Option<u64>,
    time_limit_s: Option<f64>,
    memory_mib: u64,
    jobs: Option<usize>,
    dir: Option<PathBuf>,
) -> PyResult<String> {
    let lang = Lang::from_name(language)
        .ok_or_else(|| PyValueError::new_err(format!("unknown language {language:?}: use wasm, c, cpp or python")))?;
    if memory_mib == 0 || memory_mib > 65_536 {
        return Err(PyValueError::new_err(format!("memory_mib = {memory_mib}: give 1 to 65536")));
    }
    let deadline = match time_limit_s {
        Some(s) if !(s.is_finite() && s > 0.0 && s <= 1e6) => {
            return Err(PyValueError::new_err(format!("time_limit_s = {s}: give a positive number of seconds")));
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let tests = match (tests_path, tests_jsonl) {
        (Some(path), None) => load_tests(&path).map_err(errors::grade)?,
        (None, Some(text)) => parse_jsonl(&text, Path::new("<tests>")).map_err(errors::grade)?,
        _ => return Err(PyValueError::new_err("give the tests as a path or as JSONL text, one of the two")),
    };
    let defaults = if lang == Lang::Python { GradeOptions::python() } else { GradeOptions::default() };
    let options = GradeOptions {
        limits: Limits {
            fuel_per_call: fuel.or(defaults.limits.fuel_per_call),
            deadline: deadline.or(defaults.limits.deadline),
            memory_bytes: memory_mib << 20,
            ..defaults.limits.clone()
        },
        compare: if exact { Compare::Exact } else { Compare::Tokens },
        jobs: jobs.unwrap_or(defaults.jobs).max(1),
        dir,
        ..defaults
    };
    py.detach(|| {
        let grader = match lang {
            Lang::Python => {
                let source = String::from_utf8(program)
                    .map_err(|_| PyValueError::new_err("Python source must be UTF-8 text"))?;
                let runtime = grading_runtime(true)?;
                Grader::python(runtime, interpreter()?, &source, checker.as_deref(), options)
            }
            Lang::Wasm => Grader::new(grading_runtime(false)?, &program, checker.as_deref(), options),
            _ => {
                let compile = CompileOptions { cache: cache_dir("solutions"), ..CompileOptions::default() };
                let program = wasmgym_grade::compile(&program, lang, &compile).map_err(errors::grade)?;
                Grader::new(grading_runtime(false)?, &program, checker.as_deref(), options)
            }
        }
        .map_err(errors::grade)?;
        let report = grader.grade(&tests);
        serde_json::to_string(&report).map_err(|e| PyValueError::new_err(e.to_string()))
    })
}

/// A sandboxed checker module: scores a program's output, or (a reward checker) a fork of an
/// environment's state. Calls take turns; the GIL is released during them.
#[pyclass(module = "wasmgym._core", frozen)]
pub struct Checker(Mutex<wasmgym::Checker>);

#[pymethods]
impl Checker {
    /// Loads a checker from its module bytes (`fuel_per_call`, `deadline_s`: 0 for none).
    #[new]
    #[pyo3(signature = (module, *, fuel_per_call=None, deadline_s=None, memory_mib=None))]
    fn py_new(
        py: Python<'_>,
        module: Vec<u8>,
        fuel_per_call: Option<u64>,
        deadline_s: Option<f64>,
        memory_mib: Option<u64>,
    ) -> PyResult<Checker> {
        let limits = crate::env::limits(fuel_per_call, deadline_s, memory_mib)?;
        let runtime = crate::env::runtime()?;
        let checker =
            py.detach(|| runtime.load_checker(&module).and_then(|m| m.instantiate(limits))).map_err(errors::runtime)?;
        Ok(Checker(Mutex::new(checker)))
    }

    /// The score in [0, 1] and the checker's message for `output` on a task (`input`, `expected`).
    fn check(&self, py: Python<'_>, input: Vec<u8>, expected: Vec<u8>, output: Vec<u8>) -> PyResult<(f64, String)> {
        let score = py
            .detach(|| self.0.lock().unwrap_or_else(|e| e.into_inner()).check(&input, &expected, &output))
            .map_err(errors::runtime)?;
        Ok((score.score, score.message))
    }

    /// The score in [0, 1] and message of `env`'s current state: the checker queries a fork of
    /// it (render, legal actions, steps), which nothing else sees.
    fn reward(&self, py: Python<'_>, env: &Env, input: Vec<u8>, expected: Vec<u8>) -> PyResult<(f64, String)> {
        let score = py
            .detach(|| {
                let mut checker = self.0.lock().unwrap_or_else(|e| e.into_inner());
                checker.reward(&mut env.lock(), &input, &expected)
            })
            .map_err(errors::runtime)?;
        Ok((score.score, score.message))
    }
}

/// The bytes of a built-in example program, checker or environment (`programs/`), by name.
#[pyfunction]
pub fn builtin_program(name: &str) -> PyResult<Vec<u8>> {
    wasmgym_builtin::find_program(name).map(|p| p.bytes.to_vec()).ok_or_else(|| {
        let names: Vec<&str> = wasmgym_builtin::PROGRAMS.iter().map(|p| p.name).collect();
        PyValueError::new_err(format!("no example program {name:?}: the examples are {}", names.join(", ")))
    })
}
