//! `wasmgym bench grade --lang python`: grading a tiny Python solution in the sandbox (CPython for
//! WASI, initialised once per worker, restored per test) against a `python3` process per test, on
//! the same tests with the same number of workers. The sandbox's total counts its one-off costs:
//! loading the interpreter (from the compile cache, or compiling it) and starting each worker.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use serde::Serialize;
use wasmgym_grade::{GradeOptions, Grader, Interpreter, Verdict};

use super::bench::{GradeArgs, JsonCost, batch, json_cost, processes};
use crate::error::{Context, Error, Outcome};
use crate::{load, output};

/// The solution both sides run.
const SOLUTION: &str = "a, b = map(int, input().split())\nprint(a + b)\n";

#[derive(Serialize)]
struct Report {
    solution: &'static str,
    tests: usize,
    jobs: usize,
    /// Loading the interpreter: deserialising it from the compile cache, or compiling it.
    load_seconds: f64,
    /// Creating the grader: starting one interpreter and checking the solution's syntax.
    grader_seconds: f64,
    /// Grading the batch `rounds` times (the first round starts the other workers' interpreters).
    grading_seconds: f64,
    rounds: usize,
    accepted: usize,
    /// Tests per second counting every one-off cost: runs / (load + grader + grading).
    total_tests_per_second: f64,
    /// Tests per second of grading alone.
    grading_tests_per_second: f64,
    /// Median cost of one test on one instance: restore and turn, in µs, and the pages it dirties.
    restore_us: f64,
    turn_us: f64,
    dirty_pages: usize,
    /// Mean fuel per test.
    fuel_per_test: f64,
    process: ProcessSide,
    /// total_tests_per_second / process.tests_per_second
    ratio: f64,
    /// grading_tests_per_second / process.tests_per_second
    steady_ratio: f64,
    json: JsonCost,
}

#[derive(Serialize)]
struct ProcessSide {
    interpreter: String,
    method: &'static str,
    runs: usize,
    accepted: usize,
    seconds: f64,
    tests_per_second: f64,
}

pub fn run(args: GradeArgs) -> Result<Outcome, Error> {
    let rounds = args.rounds.unwrap_or(1);
    let tests = batch(args.tests);
    let runtime = load::python_runtime()?;

    let started = Instant::now();
    let spinner = output::spinner("loading the Python interpreter (compiled once, minutes the first time)");
    let interpreter = Interpreter::load(&runtime, &Interpreter::default_dir()).map_err(Error::Grade);
    spinner.finish_and_clear();
    let interpreter = interpreter?;
    let load_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let options = GradeOptions { jobs: args.jobs, ..GradeOptions::python() };
    let grader = Grader::python(&runtime, &interpreter, SOLUTION, None, options).map_err(Error::Grade)?;
    let grader_seconds = started.elapsed().as_secs_f64();

    let bar = output::progress((rounds * tests.len()) as u64, 0, "grader");
    let started = Instant::now();
    let (mut accepted, mut fuel) = (0, 0u128);
    let mut last = None;
    for _ in 0..rounds {
        let report = grader.grade_each(&tests, &|_, _| bar.inc(1));
        accepted += report.tests.iter().filter(|t| t.verdict == Verdict::Accepted).count();
        fuel += report.tests.iter().map(|t| u128::from(t.fuel_used)).sum::<u128>();
        last = Some(report);
    }
    let grading_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let json = json_cost(&last.expect("at least one round"))?;
    let measured = interpreter.measure(SOLUTION, &tests[0], 200).context(|| "measuring one test".into())?;

    let python = match &args.python {
        Some(python) => python.clone(),
        None => baseline_python()?,
    };
    let script = std::env::temp_dir().join(format!("wasmgym-bench-{}.py", std::process::id()));
    std::fs::write(&script, SOLUTION)
        .map_err(|source| wasmgym::Error::Io { path: script.display().to_string(), source })
        .context(|| "writing the baseline's script".into())?;
    let bar = output::progress(tests.len() as u64, 0, "processes");
    let started = Instant::now();
    let command = [python.as_str(), "-I", script.to_str().expect("a UTF-8 temporary path")];
    let process_accepted = processes(&command, &tests, args.jobs, &|| bar.inc(1));
    let process_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let _ = std::fs::remove_file(&script);
    let process_accepted = process_accepted.context(|| format!("running {python}"))?;
    let process = ProcessSide {
        interpreter: python,
        method: "fork+exec of `python -I solution.py` per test, stdin/stdout piped, RLIMIT_CPU 2 s and RLIMIT_AS 1 GiB",
        runs: tests.len(),
        accepted: process_accepted,
        seconds: process_seconds,
        tests_per_second: tests.len() as f64 / process_seconds,
    };

    let runs = rounds * tests.len();
    let total_tests_per_second = runs as f64 / (load_seconds + grader_seconds + grading_seconds);
    let grading_tests_per_second = runs as f64 / grading_seconds;
    let report = Report {
        solution: SOLUTION,
        tests: tests.len(),
        jobs: args.jobs,
        load_seconds,
        grader_seconds,
        grading_seconds,
        rounds,
        accepted,
        total_tests_per_second,
        grading_tests_per_second,
        restore_us: measured.restore.as_secs_f64() * 1e6,
        turn_us: measured.turn.as_secs_f64() * 1e6,
        dirty_pages: measured.dirty_pages,
        fuel_per_test: fuel as f64 / runs as f64,
        ratio: total_tests_per_second / process.tests_per_second,
        steady_ratio: grading_tests_per_second / process.tests_per_second,
        process,
        json,
    };
    let all_accepted = report.accepted == runs && report.process.accepted == report.process.runs;
    if args.json {
        output::print_json(&report)?;
        return Ok(if all_accepted { Outcome::Passed } else { Outcome::Failed });
    }
    let mut out = io::stdout().lock();
    writeln!(out, "python sum on {} tests, {} workers each", report.tests, report.jobs)?;
    writeln!(
        out,
        "  sandbox (CPython 3.15 for WASI)   {:>7.0} tests/s in total: load {:.2} s + grader {:.2} s + grading {:.2} s \
         ({} runs, {} accepted; {:.0} tests/s grading alone)",
        report.total_tests_per_second,
        report.load_seconds,
        report.grader_seconds,
        report.grading_seconds,
        runs,
        report.accepted,
        report.grading_tests_per_second
    )?;
    writeln!(
        out,
        "  process per test ({})  {:>7.0} tests/s  ({} runs in {:.2} s, {} accepted)",
        report.process.interpreter,
        report.process.tests_per_second,
        report.process.runs,
        report.process.seconds,
        report.process.accepted
    )?;
    writeln!(out, "ratio {:.1}× in total, {:.1}× grading alone", report.ratio, report.steady_ratio)?;
    writeln!(
        out,
        "one test: restore {:.0} µs + turn {:.0} µs, {} dirty pages, {:.0} fuel",
        report.restore_us, report.turn_us, report.dirty_pages, report.fuel_per_test
    )?;
    Ok(if all_accepted { Outcome::Passed } else { Outcome::Failed })
}

/// A venv's python in the wasmgym cache, made from the host's `python3` on first use: a real
/// interpreter (not a version manager's shim) without the base installation's site-packages.
fn baseline_python() -> Result<String, Error> {
    let venv = wasmgym::cache_dir("bench-venv").unwrap_or_else(|| std::env::temp_dir().join("wasmgym-bench-venv"));
    let python: PathBuf = venv.join("bin/python3");
    if !python.exists() {
        let status = Command::new("python3")
            .args(["-m", "venv", "--without-pip"])
            .arg(&venv)
            .status()
            .map_err(|source| wasmgym::Error::Io { path: "python3".into(), source })
            .context(|| "making the baseline's venv (pass --python PATH to use another interpreter)".into())?;
        if !status.success() {
            return Err(Error::Usage(format!(
                "`python3 -m venv {}` failed: pass --python PATH to use another interpreter",
                venv.display()
            )));
        }
    }
    Ok(python.display().to_string())
}
