//! Test files: a directory of `NAME.in` / `NAME.out` pairs, or JSONL with one test per line.
//!
//! A JSONL line is one of three styles (docs/grading.md, "Test files"):
//! - stdin/stdout: `stdin`, `expected_stdout` (strings);
//! - function call (Python; the APPS / SandboxFusion / verl convention): `fn_name` (string),
//!   `inputs` (an array of argument arrays, one per call) and `outputs` (an array of the same
//!   length: what each call must return, compared on the host);
//! - assert-style (Python; the HumanEval / MBPP convention): `test` (code that defines
//!   `check(candidate)`) and `entry_point` (the name of the solution's function `check` is called
//!   with).
//!
//! and has a `name` (or HumanEval's `task_id`; else `line N`). Optional in every style: `args`
//! (array of strings), `env` (object of strings), `dir` (a directory the test may read, relative to
//! the JSONL file's folder); the data sets' `prompt` and `canonical_solution` are ignored. Other
//! fields are refused, so a typo does not silently change a test.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::GradeError;

/// One test: the program's inputs and what it must do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestCase {
    /// Unique within a batch.
    pub name: String,
    /// What the program reads from stdin.
    pub stdin: Vec<u8>,
    /// What it should print (stdin/stdout tests).
    pub expected_stdout: Vec<u8>,
    /// What the test checks: the output (default), function calls or asserts.
    pub kind: TestKind,
    /// Arguments after `argv[0]`.
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// A host directory the test may read, if any.
    pub dir: Option<PathBuf>,
}

/// What a test checks beyond running to a successful exit.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum TestKind {
    /// The program's stdout against [`TestCase::expected_stdout`].
    #[default]
    Output,
    /// Python: call the solution's function `fn_name` once per entry of `inputs` (each an array
    /// of arguments) and compare what it returns, as JSON, with the matching entry of `outputs`,
    /// on the host (the expected values never enter the sandbox). A function of that name, or a
    /// method of that name on an instance of a class `Solution` (LeetCode style), is called.
    Call {
        /// The function's name.
        fn_name: String,
        /// One array of arguments per call.
        inputs: Vec<serde_json::Value>,
        /// What each call must return; a call may also return the only element of a one-element
        /// array expected (APPS wraps results so).
        outputs: Vec<serde_json::Value>,
    },
    /// Python: run `test` after the solution, then `check(<entry_point>)`; the test passes when
    /// it returns, fails (`wrong_answer`) on an `AssertionError`.
    Assert {
        /// Code defining `check(candidate)`.
        test: String,
        /// The solution's function to check.
        entry_point: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTest {
    #[serde(default, alias = "task_id")]
    name: Option<String>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    expected_stdout: Option<String>,
    #[serde(default)]
    fn_name: Option<String>,
    #[serde(default)]
    inputs: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    outputs: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    test: Option<String>,
    #[serde(default)]
    entry_point: Option<String>,
    #[serde(default, rename = "prompt")]
    _prompt: Option<serde_json::Value>,
    #[serde(default, rename = "canonical_solution")]
    _canonical_solution: Option<serde_json::Value>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    dir: Option<PathBuf>,
}

/// Reads the tests at `path`: a directory of `.in`/`.out` pairs or a `.jsonl` file.
pub fn load_tests(path: &Path) -> Result<Vec<TestCase>, GradeError> {
    let err = |path: &Path, line: Option<usize>, message: String| GradeError::TestFile {
        path: path.display().to_string(),
        line,
        message,
    };
    let tests = if path.is_dir() { load_dir(path)? } else { load_jsonl(path)? };
    if tests.is_empty() {
        return Err(err(path, None, "no tests in it".into()));
    }
    Ok(tests)
}

fn io_error(path: &Path, e: std::io::Error) -> GradeError {
    GradeError::TestFile { path: path.display().to_string(), line: None, message: format!("cannot read it: {e}") }
}

fn load_dir(dir: &Path) -> Result<Vec<TestCase>, GradeError> {
    let mut names = Vec::new();
    let mut outs = HashSet::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let path = entry.map_err(|e| io_error(dir, e))?.path();
        let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else { continue };
        let stem = stem.to_string_lossy().into_owned();
        match ext.to_str() {
            Some("in") => names.push(stem),
            Some("out") => {
                outs.insert(stem);
            }
            _ => {}
        }
    }
    names.sort();
    for name in &names {
        if !outs.contains(name) {
            let file = dir.join(format!("{name}.in"));
            return Err(GradeError::TestFile {
                path: file.display().to_string(),
                line: None,
                message: format!("it has no matching {name}.out: add the expected output or remove the input"),
            });
        }
    }
    let mut orphans: Vec<&String> = outs.iter().filter(|o| !names.contains(o)).collect();
    orphans.sort();
    if let Some(orphan) = orphans.first() {
        let file = dir.join(format!("{orphan}.out"));
        return Err(GradeError::TestFile {
            path: file.display().to_string(),
            line: None,
            message: format!("it has no matching {orphan}.in"),
        });
    }
    names
        .into_iter()
        .map(|name| {
            let read = |ext: &str| {
                let file = dir.join(format!("{name}.{ext}"));
                std::fs::read(&file).map_err(|e| io_error(&file, e))
            };
            Ok(TestCase { stdin: read("in")?, expected_stdout: read("out")?, name, ..TestCase::default() })
        })
        .collect()
}

fn load_jsonl(file: &Path) -> Result<Vec<TestCase>, GradeError> {
    let text = std::fs::read_to_string(file).map_err(|e| io_error(file, e))?;
    parse_jsonl(&text, file)
}

/// Parses JSONL test text as if read from `file` (named in errors; a test's `dir` is relative to
/// its folder and must exist).
pub fn parse_jsonl(text: &str, file: &Path) -> Result<Vec<TestCase>, GradeError> {
    let base = file.parent().unwrap_or(Path::new("."));
    let mut tests = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let at =
            |message: String| GradeError::TestFile { path: file.display().to_string(), line: Some(i + 1), message };
        if line.trim().is_empty() {
            continue;
        }
        let t: JsonTest = serde_json::from_str(line).map_err(|e| {
            at(format!(
                "not a test ({e}); each line must be a JSON object with \"stdin\" and \"expected_stdout\", or \
                 \"fn_name\", \"inputs\" and \"outputs\", or \"test\" and \"entry_point\"; optionally \
                 \"name\", \"args\", \"env\", \"dir\""
            ))
        })?;
        let name = t.name.clone().unwrap_or_else(|| format!("line {}", i + 1));
        if !seen.insert(name.clone()) {
            return Err(at(format!("a second test named {name:?}: names must be unique")));
        }
        let (kind, stdin, expected_stdout) = kind_of(&t).map_err(at)?;
        let dir = match t.dir {
            Some(dir) => {
                let dir = base.join(dir);
                if !dir.is_dir() {
                    return Err(at(format!("its \"dir\" {} is not a directory", dir.display())));
                }
                Some(dir)
            }
            None => None,
        };
        tests.push(TestCase {
            name,
            stdin,
            expected_stdout,
            kind,
            args: t.args,
            env: t.env.into_iter().collect(),
            dir,
        });
    }
    Ok(tests)
}

/// The style of a JSONL test from the fields it has (exactly one style's), with its stdin and
/// expected stdout.
fn kind_of(t: &JsonTest) -> Result<(TestKind, Vec<u8>, Vec<u8>), String> {
    let output = t.expected_stdout.is_some();
    let call = t.fn_name.is_some() || t.inputs.is_some() || t.outputs.is_some();
    let assert = t.test.is_some() || t.entry_point.is_some();
    if usize::from(output) + usize::from(call) + usize::from(assert) != 1 {
        return Err("a test has exactly one style: \"expected_stdout\" (with \"stdin\"), or \"fn_name\", \
                    \"inputs\" and \"outputs\", or \"test\" and \"entry_point\""
            .into());
    }
    let stdin = t.stdin.clone().unwrap_or_default().into_bytes();
    if output {
        let Some(stdin_text) = &t.stdin else { return Err("an output test needs \"stdin\" (it may be \"\")".into()) };
        let expected = t.expected_stdout.clone().unwrap_or_default().into_bytes();
        return Ok((TestKind::Output, stdin_text.clone().into_bytes(), expected));
    }
    if call {
        let (Some(fn_name), Some(inputs), Some(outputs)) = (&t.fn_name, &t.inputs, &t.outputs) else {
            return Err("a function-call test needs all of \"fn_name\", \"inputs\" and \"outputs\"".into());
        };
        if inputs.len() != outputs.len() || inputs.is_empty() {
            return Err(format!(
                "\"inputs\" ({}) and \"outputs\" ({}) must be non-empty arrays of the same length: one entry per call",
                inputs.len(),
                outputs.len()
            ));
        }
        if let Some(at) = inputs.iter().position(|args| !args.is_array()) {
            return Err(format!("\"inputs\"[{at}] is not an array of arguments: write [[1, 2]] for one call f(1, 2)"));
        }
        if !is_identifier(fn_name) {
            return Err(format!("\"fn_name\" {fn_name:?} is not a Python identifier"));
        }
        let kind = TestKind::Call { fn_name: fn_name.clone(), inputs: inputs.clone(), outputs: outputs.clone() };
        return Ok((kind, stdin, Vec::new()));
    }
    let (Some(test), Some(entry_point)) = (&t.test, &t.entry_point) else {
        return Err("an assert-style test needs both \"test\" and \"entry_point\"".into());
    };
    if !is_identifier(entry_point) {
        return Err(format!("\"entry_point\" {entry_point:?} is not a Python identifier"));
    }
    Ok((TestKind::Assert { test: test.clone(), entry_point: entry_point.clone() }, stdin, Vec::new()))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic()) && chars.all(|c| c == '_' || c.is_alphanumeric())
}
