//! `wasmgym grade <program> --tests <dir|file.jsonl>`: run an untrusted program on tests in the
//! sandbox, with a verdict per test.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wasmgym::Limits;
use wasmgym_grade::{Compare, CompileOptions, GradeOptions, GradeReport, Grader, Interpreter, Lang, load_tests};

use crate::error::{Context, Error, Outcome};
use crate::{load, output};

#[derive(clap::Args)]
pub struct Args {
    /// The program: a .wasm or .wat WASI command, a C, C++ or Python source file (.c, .cpp, .py),
    /// or the name of an example in programs/ (`sum`).
    pub program: String,
    /// The program's language: wasm, c, cpp or python (default: from the file's extension).
    #[arg(long)]
    pub lang: Option<String>,
    /// The tests: a directory of NAME.in / NAME.out pairs, or a .jsonl file with one test per line.
    #[arg(long)]
    pub tests: PathBuf,
    /// A checker module (.wasm, .wat, or an example name such as `sum_checker`) that scores each
    /// output instead of comparing it.
    #[arg(long)]
    pub checker: Option<String>,
    /// Compare byte for byte instead of token by token.
    #[arg(long, conflicts_with = "checker")]
    pub exact: bool,
    /// Fuel per test (about one unit per wasm instruction) [default: 2000000000; Python
    /// 20000000000, about 5 s of interpreted Python].
    #[arg(long, value_parser = crate::at_least_1::<u64>())]
    pub fuel: Option<u64>,
    /// Wall-clock time per test, in milliseconds [default: 2000; Python 20000].
    #[arg(long, value_parser = crate::at_least_1::<u64>())]
    pub time_limit_ms: Option<u64>,
    /// Linear memory per test, in MiB.
    #[arg(long, default_value_t = 256, value_parser = crate::at_least_1::<u64>())]
    pub memory_mib: u64,
    /// Stdout plus stderr per test, in KiB.
    #[arg(long, default_value_t = 1024, value_parser = crate::at_least_1::<usize>())]
    pub output_kib: usize,
    /// Worker threads (default: one per core).
    #[arg(long, value_parser = crate::at_least_1::<usize>())]
    pub jobs: Option<usize>,
    /// A directory every test may read (read-only, preopened as `.`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print one JSON document (compact): {"tests": [...], "summary": {...}}.
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// Print JSON lines as tests finish (in test order): one object per test, then
    /// {"summary": {...}}.
    #[arg(long)]
    pub jsonl: bool,
}

/// The bytes of a module given as a path or as the name of an example in `programs/`.
pub fn module_bytes(arg: &str) -> Result<Vec<u8>, Error> {
    if let Some(example) = wasmgym_builtin::find_program(arg) {
        return Ok(example.bytes.to_vec());
    }
    let path = Path::new(arg);
    if path.is_dir() {
        return Err(Error::Usage(format!("`{arg}` is a directory: pass a .wasm or .wat file")));
    }
    std::fs::read(path).map_err(|source| wasmgym::Error::Io { path: arg.to_owned(), source }).context(|| {
        let examples: Vec<&str> = wasmgym_builtin::PROGRAMS.iter().map(|p| p.name).collect();
        format!("reading the module (the examples are {})", examples.join(", "))
    })
}

/// The solution's language: `--lang`, else from its extension.
fn language(args: &Args) -> Result<Lang, Error> {
    match &args.lang {
        Some(name) => Lang::from_name(name)
            .ok_or_else(|| Error::Usage(format!("unknown language `{name}`: use wasm, c, cpp or python"))),
        None if wasmgym_builtin::find_program(&args.program).is_some() => Ok(Lang::Wasm),
        None => Lang::of_path(Path::new(&args.program)).ok_or_else(|| {
            let examples: Vec<&str> = wasmgym_builtin::PROGRAMS.iter().map(|p| p.name).collect();
            if !Path::new(&args.program).exists()
                && let Some(name) = crate::output::closest(&args.program, examples.iter().copied())
            {
                return Error::Usage(format!(
                    "no program `{}`. Did you mean the example `{name}`? (the examples are {})",
                    args.program,
                    examples.join(", ")
                ));
            }
            Error::Usage(format!(
                "cannot tell the language of `{}` from its extension: name a .wasm, .wat, .c, .cpp or .py file, or \
                 pass --lang wasm|c|cpp|python",
                args.program
            ))
        }),
    }
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    let lang = language(&args)?;
    let runtime = match lang {
        Lang::Python => load::python_runtime()?,
        _ => load::grading_runtime()?,
    };
    let source = module_bytes(&args.program)?;
    let checker = args.checker.as_deref().map(module_bytes).transpose()?;
    let defaults = if lang == Lang::Python { GradeOptions::python() } else { GradeOptions::default() };
    let options = GradeOptions {
        limits: Limits {
            fuel_per_call: args.fuel.or(defaults.limits.fuel_per_call),
            deadline: args.time_limit_ms.map(Duration::from_millis).or(defaults.limits.deadline),
            memory_bytes: args.memory_mib << 20,
            output_bytes: args.output_kib << 10,
            ..defaults.limits.clone()
        },
        compare: if args.exact { Compare::Exact } else { Compare::Tokens },
        jobs: args.jobs.unwrap_or(defaults.jobs).max(1),
        dir: args.dir.clone(),
        ..defaults
    };
    let grader = match lang {
        Lang::Python => {
            let source = String::from_utf8(source)
                .map_err(|_| Error::Usage(format!("`{}` is not UTF-8 text: Python source must be", args.program)))?;
            let spinner = output::spinner("loading the Python interpreter (compiled once, minutes the first time)");
            let interpreter = Interpreter::load(&runtime, &Interpreter::default_dir());
            spinner.finish_and_clear();
            Grader::python(&runtime, &interpreter.map_err(Error::Grade)?, &source, checker.as_deref(), options)
        }
        Lang::Wasm => Grader::new(&runtime, &source, checker.as_deref(), options),
        _ => {
            let options_c = CompileOptions { cache: load::cache_dir("solutions"), ..CompileOptions::default() };
            let program = wasmgym_grade::compile(&source, lang, &options_c).map_err(Error::Grade)?;
            Grader::new(&runtime, &program, checker.as_deref(), options)
        }
    }
    .map_err(Error::Grade)?;
    let tests = load_tests(&args.tests).map_err(Error::Grade)?;
    let bar = output::progress(tests.len() as u64, 1000, "grading");
    let done = AtomicUsize::new(0);
    let lines = args.jsonl.then(|| Mutex::new(InOrder::new()));
    let report = grader.grade_each(&tests, &|i, result| {
        bar.set_position(done.fetch_add(1, Ordering::Relaxed) as u64 + 1);
        if let Some(lines) = &lines {
            let line = serde_json::to_string(result).expect("a test result serialises");
            lines.lock().unwrap_or_else(|e| e.into_inner()).put(i, line);
        }
    });
    bar.finish_and_clear();
    if let Some(lines) = lines {
        lines.into_inner().unwrap_or_else(|e| e.into_inner()).finish()?;
        output::print_json_line(&serde_json::json!({ "summary": report.summary_json() }))?;
    } else if args.json {
        output::print_json_line(&report)?;
    } else {
        print_table(&report, &args, grader.options().jobs)?;
    }
    Ok(if report.summary.passed == report.summary.total { Outcome::Passed } else { Outcome::Failed })
}

/// Lines that arrive in any order, printed in index order as soon as every earlier one has come.
struct InOrder {
    next: usize,
    waiting: BTreeMap<usize, String>,
    out: io::BufWriter<io::Stdout>,
    /// The first write error (a closed pipe): later lines are dropped, and `finish` reports it.
    failed: Option<io::Error>,
}

impl InOrder {
    fn new() -> InOrder {
        InOrder { next: 0, waiting: BTreeMap::new(), out: io::BufWriter::new(io::stdout()), failed: None }
    }

    fn put(&mut self, index: usize, line: String) {
        self.waiting.insert(index, line);
        while let Some(line) = self.waiting.remove(&self.next) {
            self.next += 1;
            if self.failed.is_none()
                && let Err(e) = writeln!(self.out, "{line}")
            {
                self.failed = Some(e);
            }
        }
        // Flush when caught up, so a reader sees each result soon after it is graded.
        if self.waiting.is_empty()
            && self.failed.is_none()
            && let Err(e) = self.out.flush()
        {
            self.failed = Some(e);
        }
    }

    fn finish(mut self) -> io::Result<()> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }
}

fn print_table(report: &GradeReport, args: &Args, jobs: usize) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let s = &report.summary;
    writeln!(out, "grade {} on {} tests ({}), {jobs} jobs", args.program, s.total, args.tests.display())?;
    if report.tests.len() <= 200 {
        let width = report.tests.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
        writeln!(
            out,
            "  {:<width$}  {:<22} {:>9} {:>13} {:>10}  message",
            "test", "verdict", "time", "fuel", "memory"
        )?;
        for t in &report.tests {
            writeln!(
                out,
                "  {:<width$}  {:<22} {:>6.2} ms {:>13} {:>6} KiB  {}",
                output::printable(&t.name),
                t.verdict.name(),
                t.wall_time.as_secs_f64() * 1e3,
                t.fuel_used,
                t.peak_memory_bytes >> 10,
                output::printable(t.verdict.message().lines().next().unwrap_or(""))
            )?;
        }
    } else {
        let mut counts = std::collections::BTreeMap::new();
        for t in &report.tests {
            *counts.entry(t.verdict.name()).or_insert(0) += 1;
        }
        for (verdict, n) in counts {
            writeln!(out, "  {verdict:<22} {n}")?;
        }
    }
    let errors = if s.grading_errors > 0 {
        format!(" ({} grading errors, counted as failures)", s.grading_errors)
    } else {
        String::new()
    };
    writeln!(
        out,
        "passed {}/{}, score {:.3}{errors}, in {:.3} s ({:.0} tests/s)",
        s.passed,
        s.total,
        s.score,
        s.wall_time.as_secs_f64(),
        s.total as f64 / s.wall_time.as_secs_f64().max(1e-9)
    )?;
    Ok(())
}
