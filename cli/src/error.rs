//! What a command can end with, and how each ending is reported: exit status, a one-line message
//! on stderr and, for `--json` commands, an `{"error": {"kind", "message"}}` document on stdout.

use std::io::{self, Write};
use std::process::ExitCode;

/// How a command that ran to the end turned out.
pub enum Outcome {
    /// Everything held: exit 0.
    Passed,
    /// The command ran and reported a failure itself (a failed check, a branch that diverged): exit 1.
    Failed,
}

/// Why a command stopped early.
#[derive(Debug)]
pub enum Error {
    /// The command line asks for something that cannot be (unknown environment, bad player): exit 2.
    Usage(String),
    /// The runtime or the guest refused or failed: exit 1. `context` says what was being done.
    Env { context: String, source: wasmgym::Error },
    /// Reading the terminal or writing the output failed: exit 1.
    Io(io::Error),
    /// Grading could not start (an invalid program or checker, a malformed test file): exit 1.
    Grade(wasmgym_grade::GradeError),
    /// A composite episode failed (a part trapped or hit a limit, a malformed wiring): exit 1.
    Agent(wasmgym_agent::Error),
}

impl From<wasmgym_agent::Error> for Error {
    fn from(e: wasmgym_agent::Error) -> Self {
        Error::Agent(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// Adds what was being done to a runtime error.
pub trait Context<T> {
    /// Wraps the error with `context` (computed only on error).
    fn context(self, context: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> Context<T> for wasmgym::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Env { context: context(), source })
    }
}

impl Error {
    /// The machine-readable kind: the runtime's `Error::kind()`, or `usage` / `io`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::Env { source, .. } => source.kind(),
            Error::Io(_) => "io",
            Error::Grade(e) => e.kind(),
            Error::Agent(wasmgym_agent::Error::Part { source, .. }) => source.kind(),
            Error::Agent(wasmgym_agent::Error::Wiring(_)) => "wiring",
            Error::Agent(_) => "agent",
        }
    }

    /// The message on one line (a compile error keeps its lines).
    pub fn message(&self) -> String {
        let text = match self {
            Error::Usage(message) => message.clone(),
            Error::Env { context, source } => format!("{context}: {source}{}", hint(source)),
            Error::Io(e) => format!("terminal input/output failed: {e}"),
            // A compiler's message keeps its lines (file:line:column each).
            Error::Grade(e @ wasmgym_grade::GradeError::CompileError { .. }) => {
                return crate::output::printable(&e.to_string());
            }
            Error::Grade(e) => e.to_string(),
            Error::Agent(e) => e.to_string(),
        };
        one_line(&text)
    }

    fn exit_code(&self) -> u8 {
        match self {
            // A file named on the command line that cannot be read is a usage error too.
            Error::Usage(_)
            | Error::Env { source: wasmgym::Error::Io { .. }, .. }
            | Error::Grade(wasmgym_grade::GradeError::TestFile { .. }) => 2,
            Error::Env { .. } | Error::Io(_) | Error::Grade(_) | Error::Agent(_) => 1,
        }
    }

    /// Prints the error (stderr, and stdout as JSON when `json`) and gives the exit status.
    pub fn report(self, json: bool) -> ExitCode {
        if let Error::Io(e) = &self
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            // Whoever read stdout stopped reading: nothing left to say to anyone.
            return ExitCode::SUCCESS;
        }
        let message = self.message();
        if json {
            let doc = serde_json::json!({ "error": { "kind": self.kind(), "message": message } });
            let _ = writeln!(io::stdout(), "{doc}");
        }
        let _ = writeln!(io::stderr(), "error: {message}");
        ExitCode::from(self.exit_code())
    }
}

/// Reports a command line clap refused: help and version go to stdout with exit 0; anything else
/// is a usage error (exit 2), also written as JSON when `--json` is among the arguments.
pub fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand { 2 } else { 0 });
    }
    if std::env::args().any(|a| a == "--json") {
        let rendered = e.render().to_string();
        let first = rendered.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
        let message = one_line(first.trim_start_matches("error: "));
        let doc = serde_json::json!({ "error": { "kind": "usage", "message": message } });
        let _ = writeln!(io::stdout(), "{doc}");
    }
    let _ = e.print();
    ExitCode::from(2)
}

/// A fix to suggest where the runtime's message gives none.
fn hint(e: &wasmgym::Error) -> &'static str {
    match e {
        wasmgym::Error::Io { .. } => ". Check the path, or use a built-in name (see `wasmgym envs`)",
        wasmgym::Error::Trap { .. } => ". The environment crashed: fix the bug in it (`wasmgym check` helps find one)",
        _ => "",
    }
}

/// `text` with every run of whitespace (newlines included) turned into one space.
fn one_line(text: &str) -> String {
    crate::output::printable(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}
