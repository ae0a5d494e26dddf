//! `wasmgym bench grade`: the grader against a process per test, side by side, on the same tests.
//! (`wasmgym bench fork` lives in `bench_fork.rs`.)

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;
use wasmgym_abi::rng::Rng;
use wasmgym_grade::{Compare, GradeOptions, Grader, TestCase, Verdict, compare};

use crate::error::{Context, Error, Outcome};
use crate::{load, output};

/// The program both sides run: the sum of two integers.
const PROGRAM: &str = "sum";

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand)]
pub enum What {
    /// Tests per second of the grader against a native process per test (with rlimits), running
    /// the same program (programs/sum) on the same tests with the same number of workers.
    Grade(GradeArgs),
    /// Restore and fork times against memory size (64 KiB to 64 MiB) and dirty pages (1 to 1024),
    /// next to a full copy of the memory.
    Fork(super::bench_fork::ForkArgs),
}

#[derive(clap::Args)]
pub struct GradeArgs {
    /// Tests in the batch.
    #[arg(long, default_value_t = 2000, value_parser = crate::at_least_1::<usize>())]
    pub tests: usize,
    /// Workers on each side (threads for the grader, concurrent processes for the baseline).
    #[arg(long, default_value_t = 2, value_parser = crate::at_least_1::<usize>())]
    pub jobs: usize,
    /// Times the grader grades the batch (the baseline runs it once) [default: 100; Python 1].
    #[arg(long, value_parser = crate::at_least_1::<usize>())]
    pub rounds: Option<usize>,
    /// What the solution is written in: wasm (programs/sum, against its native build) or python
    /// (the same sum in Python, against a process of the host's python3 per test).
    #[arg(long, default_value = "wasm")]
    pub lang: String,
    /// The Python interpreter of the baseline [default: a venv made in the wasmgym cache from
    /// python3, so site-packages do not slow its start].
    #[arg(long)]
    pub python: Option<String>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    pub fn json(&self) -> bool {
        match &self.what {
            What::Grade(a) => a.json,
            What::Fork(a) => a.json,
        }
    }
}

#[derive(Serialize)]
struct Side {
    /// Tests run (batch size × rounds).
    runs: usize,
    /// Of which accepted.
    accepted: usize,
    seconds: f64,
    tests_per_second: f64,
}

#[derive(Serialize)]
struct Report {
    program: &'static str,
    tests: usize,
    jobs: usize,
    grader: Side,
    process: Side,
    /// grader.tests_per_second / process.tests_per_second
    ratio: f64,
    /// What the process side does per test.
    process_method: &'static str,
    /// What writing one round's report costs (`grade --json`, `--jsonl`), against the pretty
    /// printing `--json` did before.
    json: JsonCost,
}

#[derive(Serialize)]
pub(super) struct JsonCost {
    /// Bytes of the compact document.
    bytes: usize,
    /// Writing the compact document (`--json`), per test.
    compact_ns_per_test: f64,
    /// Writing one line per test and a summary line (`--jsonl`), per test.
    lines_ns_per_test: f64,
    /// Baseline: building a `serde_json::Value` and pretty-printing it, per test.
    pretty_value_ns_per_test: f64,
    /// Grading, wall time per test of one round (all workers), for comparison.
    grading_ns_per_test: f64,
}

/// Times writing `report` as JSON three ways into memory (best of 5 each).
pub(super) fn json_cost(report: &wasmgym_grade::GradeReport) -> Result<JsonCost, Error> {
    let tests = report.tests.len().max(1) as f64;
    let best = |write: &dyn Fn(&mut Vec<u8>) -> serde_json::Result<()>| -> Result<(f64, usize), Error> {
        let mut fastest = f64::MAX;
        let mut bytes = 0;
        for _ in 0..5 {
            let mut out = Vec::new();
            let started = Instant::now();
            write(&mut out).map_err(io::Error::from)?;
            fastest = fastest.min(started.elapsed().as_secs_f64());
            bytes = out.len();
        }
        Ok((fastest * 1e9 / tests, bytes))
    };
    let (compact, bytes) = best(&|out| serde_json::to_writer(out, report))?;
    let (lines, _) = best(&|out| {
        for t in &report.tests {
            serde_json::to_writer(&mut *out, t)?;
            out.push(b'\n');
        }
        serde_json::to_writer(&mut *out, &serde_json::json!({ "summary": report.summary_json() }))
    })?;
    let (pretty, _) = best(&|out| serde_json::to_writer_pretty(out, &report.to_json()))?;
    Ok(JsonCost {
        bytes,
        compact_ns_per_test: compact,
        lines_ns_per_test: lines,
        pretty_value_ns_per_test: pretty,
        grading_ns_per_test: report.summary.wall_time.as_secs_f64() * 1e9 / tests,
    })
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    match args.what {
        What::Grade(a) => grade(a),
        What::Fork(a) => super::bench_fork::run(a),
    }
}

pub(super) fn batch(n: usize) -> Vec<TestCase> {
    let mut rng = Rng::seed_from_u64(7);
    (0..n)
        .map(|i| {
            let (a, b) =
                ((rng.next_u64() % 2_000_000_000) as i64 - 1_000_000_000, (rng.next_u64() % 2_000_000_000) as i64);
            TestCase {
                name: format!("t{i}"),
                stdin: format!("{a} {b}\n").into_bytes(),
                expected_stdout: format!("{}\n", a + b).into_bytes(),
                ..TestCase::default()
            }
        })
        .collect()
}

fn grade(args: GradeArgs) -> Result<Outcome, Error> {
    if args.tests == 0 || args.jobs == 0 || args.rounds == Some(0) {
        return Err(Error::Usage("--tests, --jobs and --rounds must be at least 1".into()));
    }
    match args.lang.as_str() {
        "wasm" => {}
        "python" | "py" => return super::bench_python::run(args),
        other => return Err(Error::Usage(format!("unknown language `{other}`: use wasm or python"))),
    }
    let rounds = args.rounds.unwrap_or(100);
    let native = wasmgym_builtin::native_program(PROGRAM)
        .filter(|p| std::path::Path::new(p).exists())
        .ok_or_else(|| Error::Usage(format!("the native build of programs/{PROGRAM} is missing: rebuild wasmgym")))?;
    let wasm = wasmgym_builtin::find_program(PROGRAM).expect("programs/sum is built into the binary").bytes;
    let tests = batch(args.tests);

    let runtime = load::runtime()?;
    let options = GradeOptions { jobs: args.jobs, ..GradeOptions::default() };
    let grader = Grader::new(&runtime, wasm, None, options).map_err(Error::Grade)?;
    grader.grade(&tests[..tests.len().min(10)]); // warm up: page in the compiled code
    let bar = output::progress((rounds * tests.len()) as u64, 0, "grader");
    let started = Instant::now();
    let mut accepted = 0;
    let mut last = None;
    for _ in 0..rounds {
        let report = grader.grade_each(&tests, &|_, _| bar.inc(1));
        accepted += report.tests.iter().filter(|t| t.verdict == Verdict::Accepted).count();
        last = Some(report);
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let json = json_cost(&last.expect("at least one round"))?;
    let runs = rounds * tests.len();
    let grader_side = Side { runs, accepted, seconds, tests_per_second: runs as f64 / seconds };

    let bar = output::progress(tests.len() as u64, 0, "processes");
    let started = Instant::now();
    let accepted = processes(&[native], &tests, args.jobs, &|| bar.inc(1)).context(|| format!("running {native}"))?;
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let process_side = Side { runs: tests.len(), accepted, seconds, tests_per_second: tests.len() as f64 / seconds };

    let report = Report {
        program: PROGRAM,
        tests: tests.len(),
        jobs: args.jobs,
        ratio: grader_side.tests_per_second / process_side.tests_per_second,
        grader: grader_side,
        process: process_side,
        json,
        process_method: "fork+exec of the native build per test, stdin/stdout piped, RLIMIT_CPU 2 s and RLIMIT_AS 1 GiB set in pre_exec",
    };
    let all_accepted = report.grader.accepted == report.grader.runs && report.process.accepted == report.process.runs;
    if args.json {
        output::print_json(&report)?;
    } else {
        let mut out = io::stdout().lock();
        writeln!(out, "programs/{PROGRAM} on {} tests, {} workers each", report.tests, report.jobs)?;
        for (name, s) in [
            ("grader (wasm, restore per test)", &report.grader),
            ("process per test (native, rlimits)", &report.process),
        ] {
            writeln!(
                out,
                "  {name:<36} {:>9.0} tests/s  ({} runs in {:.3} s, {} accepted)",
                s.tests_per_second, s.runs, s.seconds, s.accepted
            )?;
        }
        writeln!(out, "ratio {:.1}×", report.ratio)?;
        let j = &report.json;
        writeln!(
            out,
            "report as JSON: {:.0} ns/test compact ({} bytes), {:.0} ns/test as lines, {:.0} ns/test pretty \
             (before); grading {:.0} ns/test",
            j.compact_ns_per_test, j.bytes, j.lines_ns_per_test, j.pretty_value_ns_per_test, j.grading_ns_per_test
        )?;
    }
    Ok(if all_accepted { Outcome::Passed } else { Outcome::Failed })
}

/// Runs `native` once per test in `jobs` concurrent workers; returns how many outputs were right.
pub(super) fn processes(
    command: &[&str],
    tests: &[TestCase],
    jobs: usize,
    tick: &(dyn Fn() + Sync),
) -> wasmgym::Result<usize> {
    let next = AtomicUsize::new(0);
    let accepted = AtomicUsize::new(0);
    let failure = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                while let Some(test) = tests.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match run_process(command, &test.stdin) {
                        Ok(stdout) => {
                            if compare(Compare::Tokens, &test.expected_stdout, &stdout).is_none() {
                                accepted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            *failure.lock().unwrap() = Some(e);
                            return;
                        }
                    }
                    tick();
                }
            });
        }
    });
    match failure.into_inner().unwrap() {
        Some(source) => Err(wasmgym::Error::Io { path: command.join(" "), source }),
        None => Ok(accepted.into_inner()),
    }
}

fn run_process(command: &[&str], stdin: &[u8]) -> io::Result<Vec<u8>> {
    let mut cmd = Command::new(command[0]);
    cmd.args(&command[1..]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec and only calls setrlimit,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let limit = |resource, value: libc::rlim_t| {
                let rl = libc::rlimit { rlim_cur: value, rlim_max: value };
                if libc::setrlimit(resource, &rl) != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
            };
            limit(libc::RLIMIT_CPU, 2)?;
            limit(libc::RLIMIT_AS, 1 << 30)
        });
    }
    let mut child = cmd.spawn()?;
    child.stdin.take().expect("piped").write_all(stdin)?;
    let out = child.wait_with_output()?;
    Ok(out.stdout)
}
