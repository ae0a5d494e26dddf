//! SandboxFusion's `POST /run_code` (one program, one stdin, its output) and `POST /grade` (one
//! program on many tests, the grader's report), over the same sandbox as `wasmgym grade`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use wasmgym::{Limits, Runtime, RuntimeConfig};
use wasmgym_grade::{
    Compare, CompileOptions, GradeError, GradeOptions, Grader, Interpreter, Lang, RuntimeError, TestCase, TestResult,
    Verdict,
};

use crate::{App, blocking, error, read_json};

/// The wasm stack graded programs get (as `wasmgym grade` gives them).
const GRADE_WASM_STACK: usize = 256 << 20;

/// Files a request may place next to the program, and their total size.
const MAX_FILES: usize = 64;

/// The runtimes code runs in: one for compiled programs, one (made on first use) for the Python
/// interpreter.
pub(crate) struct Grading {
    runtime: Runtime,
    cache: bool,
    python: Mutex<Option<(Runtime, Interpreter)>>,
}

impl Grading {
    pub(crate) fn new(cache: bool) -> Result<Grading, String> {
        let runtime = Runtime::with_config(RuntimeConfig {
            compile_cache: cache.then(|| wasmgym::cache_dir("modules")).flatten(),
            max_wasm_stack: GRADE_WASM_STACK,
            ..Default::default()
        })
        .map_err(|e| format!("starting the grading runtime: {e}"))?;
        Ok(Grading { runtime, cache, python: Mutex::new(None) })
    }

    /// The Python runtime and interpreter, loaded on first use (minutes the first time on a
    /// machine, then from the compile cache); a failure is not kept, so installing the
    /// interpreter fixes a running server.
    fn python(&self) -> Result<(Runtime, Interpreter), GradeError> {
        let mut python = self.python.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(loaded) = python.as_ref() {
            return Ok(loaded.clone());
        }
        let runtime = Runtime::with_config(RuntimeConfig {
            compile_cache: self.cache.then(|| wasmgym::cache_dir("modules")).flatten(),
            max_wasm_stack: GRADE_WASM_STACK,
            wasm_exceptions: true,
            ..Default::default()
        })
        .map_err(|e| GradeError::Toolchain { message: format!("starting the Python runtime: {e}") })?;
        let interpreter = Interpreter::load(&runtime, &Interpreter::default_dir())?;
        *python = Some((runtime.clone(), interpreter.clone()));
        Ok((runtime, interpreter))
    }

    /// A grader of `code` in `lang`, or why there is none (a compile error, a missing toolchain).
    fn grader(
        &self,
        code: &str,
        lang: Lang,
        options: GradeOptions,
        compile_deadline: Duration,
    ) -> Result<Grader, GradeError> {
        match lang {
            Lang::Python => {
                let (runtime, interpreter) = self.python()?;
                Grader::python(&runtime, &interpreter, code, None, options)
            }
            _ => {
                let compile = CompileOptions {
                    cache: self.cache.then(|| wasmgym::cache_dir("solutions")).flatten(),
                    deadline: compile_deadline,
                    ..CompileOptions::default()
                };
                let program = wasmgym_grade::compile(code.as_bytes(), lang, &compile)?;
                Grader::new(&self.runtime, &program, None, options)
            }
        }
    }
}

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/run_code", post(run_code))
        .route("/grade", post(grade))
        .route("/v1/ping", axum::routing::get(|| async { axum::Json("pong") }))
}

/// SandboxFusion's request. Unknown fields are ignored, as SandboxFusion ignores them.
#[derive(Deserialize)]
struct RunCodeRequest {
    code: String,
    language: String,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    compile_timeout: Option<f64>,
    #[serde(default)]
    run_timeout: Option<f64>,
    #[serde(default, rename = "memory_limit_MB")]
    memory_limit_mb: Option<f64>,
    #[serde(default)]
    files: BTreeMap<String, Option<String>>,
    #[serde(default)]
    fetch_files: Vec<String>,
}

/// The languages this server runs, by SandboxFusion's names (and a few aliases).
fn language(name: &str) -> Option<Lang> {
    match name.to_ascii_lowercase().as_str() {
        "python" | "python3" | "py" => Some(Lang::Python),
        "cpp" | "c++" | "cxx" => Some(Lang::Cpp),
        "c" => Some(Lang::C),
        _ => None,
    }
}

const LANGUAGES: &str = "python, cpp and c";

/// A SandboxFusion reply with `status` and `message` (and no results): for requests that cannot
/// run at all.
fn sandbox_error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = json!({
        "status": "SandboxError", "message": message, "compile_result": null, "run_result": null,
        "executor_pod_name": null, "files": {},
    });
    (status, axum::Json(body)).into_response()
}

/// Fuel per second of `run_timeout`: about what the language runs in a second here (compiled
/// code about 2×10⁹ wasm instructions, the Python interpreter about 4×10⁹ units), so that the
/// deterministic limit and the wall-clock one agree.
fn fuel_per_second(lang: Lang) -> f64 {
    if lang == Lang::Python { 4e9 } else { 2e9 }
}

/// The limits of one run: the language's defaults, with the request's time (and fuel in
/// proportion, [`fuel_per_second`]) and memory, within the server's bounds.
fn limits(app: &App, lang: Lang, run_timeout: Option<f64>, memory_mib: Option<f64>) -> Result<Limits, String> {
    let mut limits = if lang == Lang::Python { GradeOptions::python() } else { GradeOptions::default() }.limits;
    if let Some(seconds) = run_timeout {
        if !(seconds > 0.0 && seconds.is_finite()) {
            return Err(format!("run_timeout is a positive number of seconds, not {seconds}"));
        }
        let seconds = seconds.min(app.config.max_run_timeout.as_secs_f64());
        limits.deadline = Some(Duration::from_secs_f64(seconds));
        limits.fuel_per_call = Some((fuel_per_second(lang) * seconds) as u64);
    }
    if let Some(mib) = memory_mib.filter(|&m| m > 0.0) {
        if !mib.is_finite() {
            return Err(format!("memory_limit_MB is a number of MiB, not {mib}"));
        }
        limits.memory_bytes = (mib.min(app.config.max_memory_mib as f64) as u64).max(1) << 20;
    }
    Ok(limits)
}

/// The compiler's deadline: `compile_timeout` within the server's bound, else the default.
fn compile_deadline(app: &App, compile_timeout: Option<f64>) -> Duration {
    match compile_timeout {
        Some(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s.min(app.config.max_run_timeout.as_secs_f64())),
        _ => CompileOptions::default().deadline,
    }
}

/// Writes the request's files (base64) into a fresh directory the program may read as `.`.
fn write_files(files: &BTreeMap<String, Option<String>>, limit: usize) -> Result<Option<Scratch>, String> {
    let files: Vec<_> = files.iter().filter_map(|(name, content)| content.as_ref().map(|c| (name, c))).collect();
    if files.is_empty() {
        return Ok(None);
    }
    if files.len() > MAX_FILES {
        return Err(format!("{} files; at most {MAX_FILES} may be sent", files.len()));
    }
    let scratch = Scratch::new().map_err(|e| format!("cannot make a directory for the files: {e}"))?;
    let mut total = 0;
    for (name, content) in files {
        let relative = Path::new(name);
        let plain = relative.components().all(|c| matches!(c, Component::Normal(_)));
        if name.is_empty() || !plain {
            return Err(format!("file name {name:?} must be a relative path without `..`"));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| format!("file {name:?} is not base64: {e}"))?;
        total += bytes.len();
        if total > limit {
            return Err(format!("the files are over {limit} bytes together"));
        }
        let path = scratch.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("writing {name:?}: {e}"))?;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("writing {name:?}: {e}"))?;
    }
    Ok(Some(scratch))
}

/// A fresh directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wasmgym-serve-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `POST /run_code`: runs the code once on `stdin`; SandboxFusion's reply.
async fn run_code(State(app): State<Arc<App>>, body: Body) -> Response {
    let body = match read_json(body, app.config.max_body_bytes).await {
        Ok(body) => body,
        Err(_) => {
            let message = format!("the body is not JSON or is over {} bytes", app.config.max_body_bytes);
            return sandbox_error(StatusCode::BAD_REQUEST, message);
        }
    };
    let request: RunCodeRequest = match serde_json::from_value(body) {
        Ok(request) => request,
        Err(e) => {
            let message =
                format!("bad request ({e}): send {{\"code\": \"...\", \"language\": \"python\", \"stdin\": \"...\"}}");
            return sandbox_error(StatusCode::UNPROCESSABLE_ENTITY, message);
        }
    };
    let Some(lang) = language(&request.language) else {
        let message = format!("language `{}` is not supported here: this server runs {LANGUAGES}", request.language);
        return sandbox_error(StatusCode::UNPROCESSABLE_ENTITY, message);
    };
    if !request.fetch_files.is_empty() {
        return sandbox_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "fetch_files is not supported: the sandbox's files are read-only; print what you need",
        );
    }
    let limits = match limits(&app, lang, request.run_timeout, request.memory_limit_mb) {
        Ok(limits) => limits,
        Err(message) => return sandbox_error(StatusCode::UNPROCESSABLE_ENTITY, message),
    };
    let compile_deadline = compile_deadline(&app, request.compile_timeout);
    let permit = match app.runs.acquire(1).await {
        Ok(permit) => permit,
        Err(response) => return response,
    };
    let app2 = app.clone();
    let result = blocking(move || {
        let _permit = permit;
        let files = match write_files(&request.files, app2.config.max_body_bytes) {
            Ok(files) => files,
            Err(message) => return Err(message),
        };
        let options = GradeOptions {
            limits: limits.clone(),
            compare: Compare::RunOnly,
            jobs: 1,
            dir: files.as_ref().map(|f| f.0.clone()),
            output_head_bytes: limits.output_bytes,
            ..GradeOptions::default()
        };
        let started = Instant::now();
        let grader = match app2.grading.grader(&request.code, lang, options, compile_deadline) {
            Ok(grader) => grader,
            Err(e) => return Ok(not_run(e, lang, started.elapsed())),
        };
        let compiled = started.elapsed();
        let test = TestCase {
            name: "run".into(),
            stdin: request.stdin.unwrap_or_default().into_bytes(),
            ..TestCase::default()
        };
        let report = grader.grade(std::slice::from_ref(&test));
        Ok(ran(&report.tests[0], lang, compiled))
    });
    match result.await {
        Ok(Ok(body)) => axum::Json(body).into_response(),
        Ok(Err(message)) => sandbox_error(StatusCode::UNPROCESSABLE_ENTITY, message),
        Err(response) => response,
    }
}

fn command(status: &str, seconds: f64, return_code: Option<i32>, stdout: &str, stderr: &str) -> Value {
    json!({"status": status, "execution_time": seconds, "return_code": return_code, "stdout": stdout, "stderr": stderr})
}

/// The reply for code that did not get to run: a compile error (for Python, the syntax error a
/// run of `python3` would print), or the sandbox's own failure.
fn not_run(error: GradeError, lang: Lang, took: Duration) -> Value {
    let seconds = took.as_secs_f64();
    let (compile_result, run_result) = match &error {
        GradeError::CompileError { message } if lang == Lang::Python => {
            (Value::Null, command("Finished", seconds, Some(1), "", &format!("{message}\n")))
        }
        GradeError::CompileError { message } => {
            let status = if message.contains("time limit") || message.contains("deadline") {
                "TimeLimitExceeded"
            } else {
                "Finished"
            };
            (command(status, seconds, Some(1), "", message), Value::Null)
        }
        other => {
            return json!({
                "status": "SandboxError", "message": other.to_string(), "compile_result": null, "run_result": null,
                "executor_pod_name": null, "files": {},
            });
        }
    };
    json!({
        "status": "Failed", "message": "", "compile_result": compile_result, "run_result": run_result,
        "executor_pod_name": null, "files": {},
    })
}

/// The reply for a run: `Success` for an exit with 0; otherwise `Failed`, with the exit code a
/// native process would have had (a trap as SIGABRT, -6, a stack overflow as SIGSEGV, -11, a
/// memory or output limit as SIGKILL, -9) and the reason appended to stderr. A time limit is
/// `TimeLimitExceeded`; the host failing is `SandboxError`.
fn ran(test: &TestResult, lang: Lang, compiled: Duration) -> Value {
    let seconds = test.wall_time.as_secs_f64();
    let compile_result = match lang {
        Lang::Python => Value::Null,
        _ => command("Finished", compiled.as_secs_f64(), Some(0), "", ""),
    };
    let note = |stderr: &str, what: String| {
        let sep = if stderr.is_empty() || stderr.ends_with('\n') { "" } else { "\n" };
        format!("{stderr}{sep}wasmgym: {what}\n")
    };
    let (status, code, stderr) = match &test.verdict {
        Verdict::Accepted => ("Finished", test.exit_code.or(Some(0)), test.stderr_head.clone()),
        Verdict::RuntimeError(RuntimeError::Exit { code }) => ("Finished", Some(*code), test.stderr_head.clone()),
        Verdict::RuntimeError(RuntimeError::Exception { .. }) => {
            ("Finished", test.exit_code.filter(|&c| c != 0).or(Some(1)), test.stderr_head.clone())
        }
        Verdict::RuntimeError(RuntimeError::StackOverflow) => {
            ("Finished", Some(-11), note(&test.stderr_head, test.verdict.message()))
        }
        Verdict::RuntimeError(_) => ("Finished", Some(-6), note(&test.stderr_head, test.verdict.message())),
        Verdict::TimeLimitExceeded(_) => ("TimeLimitExceeded", None, note(&test.stderr_head, test.verdict.message())),
        Verdict::MemoryLimitExceeded { .. } | Verdict::OutputLimitExceeded { .. } => {
            ("Finished", Some(-9), note(&test.stderr_head, test.verdict.message()))
        }
        Verdict::GradingError { message } => {
            return json!({
                "status": "SandboxError", "message": message, "compile_result": compile_result,
                "run_result": command("Error", seconds, None, &test.stdout_head, &test.stderr_head),
                "executor_pod_name": null, "files": {},
            });
        }
        other => ("Finished", test.exit_code.filter(|&c| c != 0).or(Some(1)), note(&test.stderr_head, other.message())),
    };
    let success = status == "Finished" && code == Some(0);
    json!({
        "status": if success { "Success" } else { "Failed" },
        "message": "",
        "compile_result": compile_result,
        "run_result": command(status, seconds, code, &test.stdout_head, &stderr),
        "executor_pod_name": null,
        "files": {},
    })
}

/// `POST /grade`'s request: one program, many tests (the grader's JSONL objects, as an array or
/// as JSONL text).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GradeRequest {
    code: String,
    language: String,
    #[serde(default)]
    tests: Option<Vec<Value>>,
    #[serde(default)]
    tests_jsonl: Option<String>,
    #[serde(default)]
    compare: Option<String>,
    #[serde(default)]
    run_timeout: Option<f64>,
    #[serde(default, rename = "memory_limit_MB")]
    memory_limit_mb: Option<f64>,
    #[serde(default)]
    compile_timeout: Option<f64>,
    #[serde(default)]
    jobs: Option<usize>,
}

/// `POST /grade`: the grader's report, `{"tests": [...], "summary": {...}}`, as `wasmgym grade
/// --json` prints it; a program that cannot be graded (a compile error) is
/// `{"error": {"kind", "message"}}`.
async fn grade(State(app): State<Arc<App>>, body: Body) -> Response {
    let body = match read_json(body, app.config.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request: GradeRequest = match serde_json::from_value(body) {
        Ok(request) => request,
        Err(e) => {
            let e = format!(
                "bad request ({e}): send {{\"code\", \"language\", \"tests\": [{{\"stdin\", \"expected_stdout\"}}, ...]}}"
            );
            return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e);
        }
    };
    let Some(lang) = language(&request.language) else {
        let e = format!("language `{}` is not supported here: this server runs {LANGUAGES}", request.language);
        return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e);
    };
    let lines: Vec<String> = match (&request.tests, &request.tests_jsonl) {
        (Some(tests), None) => tests.iter().map(Value::to_string).collect(),
        (None, Some(text)) => text.lines().map(str::to_owned).collect(),
        _ => {
            let e = "give the tests as `tests` (an array of objects) or `tests_jsonl` (text), one of the two";
            return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e);
        }
    };
    // A test's `dir` names a directory on the server: never from the wire.
    for (i, line) in lines.iter().enumerate() {
        if serde_json::from_str::<Value>(line).ok().is_some_and(|t| t.get("dir").is_some()) {
            let e = format!("test {}: `dir` names a directory on the server and is not accepted over the wire", i + 1);
            return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e);
        }
    }
    let tests = match wasmgym_grade::parse_jsonl(&lines.join("\n"), Path::new("tests")) {
        Ok(tests) => tests,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e.to_string()),
    };
    let compare = match request.compare.as_deref() {
        None | Some("tokens") => Compare::Tokens,
        Some("exact") => Compare::Exact,
        Some(other) => {
            let e = format!("compare is `tokens` or `exact`, not `{other}`");
            return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e);
        }
    };
    let limits = match limits(&app, lang, request.run_timeout, request.memory_limit_mb) {
        Ok(limits) => limits,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", e),
    };
    let compile_deadline = compile_deadline(&app, request.compile_timeout);
    let jobs = request.jobs.unwrap_or(app.config.jobs).clamp(1, app.config.jobs).min(tests.len().max(1));
    let permit = match app.runs.acquire(jobs).await {
        Ok(permit) => permit,
        Err(response) => return response,
    };
    let app2 = app.clone();
    let result = blocking(move || {
        let _permit = permit;
        let options = GradeOptions { limits, compare, jobs, ..GradeOptions::default() };
        match app2.grading.grader(&request.code, lang, options, compile_deadline) {
            Ok(grader) => grader.grade(&tests).to_json(),
            Err(e) => json!({"error": {"kind": e.kind(), "message": e.to_string()}}),
        }
    });
    match result.await {
        Ok(report) => axum::Json(report).into_response(),
        Err(response) => response,
    }
}
