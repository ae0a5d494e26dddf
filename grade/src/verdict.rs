//! [`Verdict`]: what a test comes to, one variant per outcome, and how run endings map to it.

use std::time::Duration;

use wasmgym::{Error, RunEnd, RunReport};

/// The verdict on one test.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Verdict {
    /// The output matched (or the checker gave a score of 1).
    Accepted,
    /// The program ran to a successful exit but its output is wrong (or the checker gave less than 1).
    WrongAnswer {
        /// Where the output first differs, or the checker's message.
        message: String,
    },
    /// The program trapped, overflowed its stack, or exited with a non-zero code.
    RuntimeError(RuntimeError),
    /// The program used up its fuel or its time.
    TimeLimitExceeded(TimeLimit),
    /// The program asked for more linear memory than allowed (or more table elements: tables hold
    /// function references, and growing one without end is a memory bomb too).
    MemoryLimitExceeded {
        /// What it asked for, in bytes of memory or in table elements.
        requested: u64,
        /// The cap, in the same unit.
        limit: u64,
        /// It was a table, not linear memory.
        table: bool,
    },
    /// The program wrote more than allowed to stdout and stderr together.
    OutputLimitExceeded {
        /// The cap in bytes.
        limit: usize,
    },
    /// The test could not be graded: the checker trapped, exceeded one of its limits or answered
    /// nonsense, or the host failed. Has no score of its own; the batch's score counts it as 0.
    GradingError {
        /// What went wrong.
        message: String,
    },
}

/// How a program failed at run time.
#[derive(Clone, Debug, PartialEq)]
pub enum RuntimeError {
    /// A trap: a panic (`unreachable`), an out-of-bounds access, a division by zero... with
    /// wasmtime's message and backtrace.
    Trap {
        /// What trapped.
        message: String,
    },
    /// The wasm call stack or the shadow stack in linear memory overflowed (unbounded recursion).
    StackOverflow,
    /// An interpreted solution raised an exception nothing caught (Python: the traceback's last
    /// line, such as `ZeroDivisionError: division by zero`).
    Exception {
        /// The exception and its message.
        message: String,
    },
    /// The program exited with a non-zero code.
    Exit {
        /// The exit code.
        code: i32,
    },
}

/// Which limit ran out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeLimit {
    /// The deterministic budget, about one unit per wasm instruction.
    Fuel {
        /// The budget.
        limit: u64,
    },
    /// The wall-clock deadline (or, for a program that sleeps, the virtual clock passing it).
    Deadline {
        /// The deadline.
        limit: Duration,
    },
}

impl Verdict {
    /// The verdict's name in JSON: `accepted`, `wrong_answer`, `runtime_error`,
    /// `time_limit_exceeded`, `memory_limit_exceeded`, `output_limit_exceeded`, `grading_error`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::WrongAnswer { .. } => "wrong_answer",
            Verdict::RuntimeError(_) => "runtime_error",
            Verdict::TimeLimitExceeded(_) => "time_limit_exceeded",
            Verdict::MemoryLimitExceeded { .. } => "memory_limit_exceeded",
            Verdict::OutputLimitExceeded { .. } => "output_limit_exceeded",
            Verdict::GradingError { .. } => "grading_error",
        }
    }

    /// A one-line explanation (empty for `accepted`).
    pub fn message(&self) -> String {
        match self {
            Verdict::Accepted => String::new(),
            Verdict::WrongAnswer { message } | Verdict::GradingError { message } => message.clone(),
            Verdict::RuntimeError(RuntimeError::Trap { message }) => {
                // wasmtime puts the cause last, after the backtrace.
                let last = message.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
                let cause = last.rfind("wasm trap: ").map_or(last, |at| &last[at + "wasm trap: ".len()..]);
                format!("trap: {cause}")
            }
            Verdict::RuntimeError(RuntimeError::StackOverflow) => "stack overflow".into(),
            Verdict::RuntimeError(RuntimeError::Exception { message }) => message.clone(),
            Verdict::RuntimeError(RuntimeError::Exit { code }) => format!("exited with code {code}"),
            Verdict::TimeLimitExceeded(TimeLimit::Fuel { limit }) => format!("out of fuel ({limit})"),
            Verdict::TimeLimitExceeded(TimeLimit::Deadline { limit }) => {
                format!("deadline of {} ms exceeded", limit.as_millis())
            }
            Verdict::MemoryLimitExceeded { requested, limit, table: false } => {
                format!("asked for {requested} bytes of memory, the limit is {limit}")
            }
            Verdict::MemoryLimitExceeded { requested, limit, table: true } => {
                format!("asked for {requested} table elements, the limit is {limit}")
            }
            Verdict::OutputLimitExceeded { limit } => format!("wrote more than {limit} bytes"),
        }
    }

    /// `fuel` or `deadline` for a time limit.
    pub fn time_limit(&self) -> Option<&'static str> {
        match self {
            Verdict::TimeLimitExceeded(TimeLimit::Fuel { .. }) => Some("fuel"),
            Verdict::TimeLimitExceeded(TimeLimit::Deadline { .. }) => Some("deadline"),
            _ => None,
        }
    }

    /// The verdict for a program stopped by `error` (a trap, a limit, `proc_exit`).
    pub fn from_error(error: &Error) -> Verdict {
        match *error {
            Error::OutOfFuel { limit } => Verdict::TimeLimitExceeded(TimeLimit::Fuel { limit }),
            Error::Deadline { limit } => Verdict::TimeLimitExceeded(TimeLimit::Deadline { limit }),
            Error::MemoryLimit { requested, limit } => Verdict::MemoryLimitExceeded { requested, limit, table: false },
            Error::TableLimit { requested, limit } => Verdict::MemoryLimitExceeded { requested, limit, table: true },
            Error::OutputLimit { limit } => Verdict::OutputLimitExceeded { limit },
            Error::StackOverflow { .. } => Verdict::RuntimeError(RuntimeError::StackOverflow),
            Error::Exit { code } if code != 0 => Verdict::RuntimeError(RuntimeError::Exit { code }),
            Error::Trap { ref message } => Verdict::RuntimeError(RuntimeError::Trap { message: message.clone() }),
            ref other => Verdict::GradingError { message: format!("the host failed to run the program: {other}") },
        }
    }

    /// The verdict for a run that did not exit successfully, or `None` if it exited with 0 (and
    /// its output must be compared).
    pub(crate) fn from_run(report: &RunReport) -> Option<Verdict> {
        match &report.end {
            RunEnd::Exited { code: 0 } => None,
            RunEnd::Exited { code } => Some(Verdict::RuntimeError(RuntimeError::Exit { code: *code })),
            RunEnd::Stopped(e) => Some(Verdict::from_error(e)),
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.message() {
            m if m.is_empty() => f.write_str(self.name()),
            m => write!(f, "{}: {m}", self.name()),
        }
    }
}
