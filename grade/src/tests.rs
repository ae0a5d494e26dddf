//! Test files: a directory of `NAME.in` / `NAME.out` pairs, or JSONL with one test per line.
//!
//! JSONL fields: `name`, `stdin`, `expected_stdout` (strings, required); `args` (array of strings),
//! `env` (object of strings), `dir` (a directory the test may read, relative to the JSONL file's
//! folder) are optional. Unknown fields are refused, so a typo does not silently change a test.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::GradeError;

/// One test: the program's inputs and the expected output.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestCase {
    /// Unique within a batch.
    pub name: String,
    /// What the program reads from stdin.
    pub stdin: Vec<u8>,
    /// What it should print.
    pub expected_stdout: Vec<u8>,
    /// Arguments after `argv[0]`.
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// A host directory the test may read, if any.
    pub dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTest {
    name: String,
    stdin: String,
    expected_stdout: String,
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
                "not a test ({e}); each line must be a JSON object with \"name\", \"stdin\", \"expected_stdout\" \
                 and optionally \"args\", \"env\", \"dir\""
            ))
        })?;
        if !seen.insert(t.name.clone()) {
            return Err(at(format!("a second test named {:?}: names must be unique", t.name)));
        }
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
            name: t.name,
            stdin: t.stdin.into_bytes(),
            expected_stdout: t.expected_stdout.into_bytes(),
            args: t.args,
            env: t.env.into_iter().collect(),
            dir,
        });
    }
    Ok(tests)
}
