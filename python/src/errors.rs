//! One Python exception class per family of the runtime's `Error` (and the search's and grader's
//! errors), each carrying `kind` (the runtime's machine-readable name) and `poisons`.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{PyErr, create_exception};

create_exception!(wasmgym, WasmgymError, PyException, "Base of every error wasmgym raises; `kind` names the cause.");
create_exception!(
    wasmgym,
    ModuleError,
    WasmgymError,
    "The module cannot be loaded: invalid, wrong kind, over the load limits, unknown imports."
);
create_exception!(
    wasmgym,
    AbiMismatchError,
    ModuleError,
    "The module speaks another ABI version: rebuild it against this wasmgym-sdk."
);
create_exception!(
    wasmgym,
    LimitError,
    WasmgymError,
    "A call hit one of its limits (fuel, deadline, memory, table, stack, output); the instance is poisoned."
);
create_exception!(wasmgym, OutOfFuelError, LimitError, "The call used its fuel budget (`fuel_per_call`).");
create_exception!(wasmgym, DeadlineError, LimitError, "The call ran past its deadline (`deadline_s`).");
create_exception!(
    wasmgym,
    MemoryLimitError,
    LimitError,
    "The guest asked for more linear memory than `memory_mib` allows."
);
create_exception!(
    wasmgym,
    MemoryCapError,
    LimitError,
    "The runtime's total memory cap would be exceeded: drop forks and envs you no longer need."
);
create_exception!(
    wasmgym,
    TrapError,
    WasmgymError,
    "The guest trapped, exited or broke the ABI; the instance is poisoned until a snapshot is restored."
);
create_exception!(
    wasmgym,
    IllegalActionError,
    WasmgymError,
    "The action is outside the action space or not legal now; nothing changed."
);
create_exception!(
    wasmgym,
    InvalidCallError,
    WasmgymError,
    "The call is not valid now (step before reset or after the end); nothing changed."
);
create_exception!(
    wasmgym,
    GuestError,
    WasmgymError,
    "The environment reported an error of its own (for example bad reset options)."
);
create_exception!(
    wasmgym,
    BadSnapshotError,
    WasmgymError,
    "Snapshot bytes are corrupt, truncated, of another format or of another module."
);
create_exception!(
    wasmgym,
    PoisonedError,
    WasmgymError,
    "An earlier call stopped the guest mid-way: restore a snapshot or make a new env."
);
create_exception!(
    wasmgym,
    SearchError,
    WasmgymError,
    "A search could not run: nothing to decide, or a callback answered something unusable."
);
create_exception!(
    wasmgym,
    AgentError,
    WasmgymError,
    "A composite episode cannot go on: its host-callback user failed, or its wiring is malformed."
);
create_exception!(
    wasmgym,
    GradeError,
    WasmgymError,
    "A batch could not be graded: the program, the tests, the checker or the toolchain."
);

/// Adds every exception class to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("WasmgymError", py.get_type::<WasmgymError>())?;
    m.add("ModuleError", py.get_type::<ModuleError>())?;
    m.add("AbiMismatchError", py.get_type::<AbiMismatchError>())?;
    m.add("LimitError", py.get_type::<LimitError>())?;
    m.add("OutOfFuelError", py.get_type::<OutOfFuelError>())?;
    m.add("DeadlineError", py.get_type::<DeadlineError>())?;
    m.add("MemoryLimitError", py.get_type::<MemoryLimitError>())?;
    m.add("MemoryCapError", py.get_type::<MemoryCapError>())?;
    m.add("TrapError", py.get_type::<TrapError>())?;
    m.add("IllegalActionError", py.get_type::<IllegalActionError>())?;
    m.add("InvalidCallError", py.get_type::<InvalidCallError>())?;
    m.add("GuestError", py.get_type::<GuestError>())?;
    m.add("BadSnapshotError", py.get_type::<BadSnapshotError>())?;
    m.add("PoisonedError", py.get_type::<PoisonedError>())?;
    m.add("SearchError", py.get_type::<SearchError>())?;
    m.add("GradeError", py.get_type::<GradeError>())?;
    m.add("AgentError", py.get_type::<AgentError>())?;
    Ok(())
}

/// Sets `kind` and `poisons` on a new exception.
fn tagged(err: PyErr, kind: &str, poisons: bool) -> PyErr {
    Python::attach(|py| {
        let value = err.value(py);
        // Setting attributes on a fresh exception instance cannot fail in practice; if it did,
        // the exception still carries its message.
        let _ = value.setattr("kind", kind);
        let _ = value.setattr("poisons", poisons);
    });
    err
}

/// The Python exception for a runtime error.
pub fn runtime(e: wasmgym::Error) -> PyErr {
    let message = e.to_string();
    runtime_with(&e, message)
}

/// The Python exception for a runtime error, with `message` (which names where it happened).
fn runtime_with(e: &wasmgym::Error, message: String) -> PyErr {
    use wasmgym::Error as E;
    let err = match e {
        E::AbiMismatch { .. } => AbiMismatchError::new_err(message),
        E::InvalidModule { .. }
        | E::MissingExport { .. }
        | E::UnknownImport { .. }
        | E::WrongKind { .. }
        | E::Unsupported { .. }
        | E::ModuleLimit { .. }
        | E::Io { .. } => ModuleError::new_err(message),
        E::OutOfFuel { .. } => OutOfFuelError::new_err(message),
        E::Deadline { .. } => DeadlineError::new_err(message),
        E::MemoryLimit { .. } => MemoryLimitError::new_err(message),
        E::MemoryCap { .. } => MemoryCapError::new_err(message),
        E::TableLimit { .. } | E::StackOverflow { .. } | E::OutputLimit { .. } => LimitError::new_err(message),
        E::IllegalAction { .. } => IllegalActionError::new_err(message),
        E::InvalidCall { .. } => InvalidCallError::new_err(message),
        E::Guest { .. } => GuestError::new_err(message),
        E::BadSnapshot { .. } => BadSnapshotError::new_err(message),
        E::Poisoned { .. } => PoisonedError::new_err(message),
        _ => TrapError::new_err(message),
    };
    tagged(err, e.kind(), e.poisons())
}

/// The Python exception for a composite's error: a part's failure keeps the runtime's class (its
/// message names the part); an invalid call is `InvalidCallError`, a bad snapshot
/// `BadSnapshotError`.
pub fn agent(e: wasmgym_agent::Error) -> PyErr {
    use wasmgym_agent::Error as E;
    let message = e.to_string();
    match e {
        E::Part { source, .. } => runtime_with(&source, message),
        E::NotRunning(_) => tagged(InvalidCallError::new_err(message), "invalid_call", false),
        E::Snapshot(_) => tagged(BadSnapshotError::new_err(message), "bad_snapshot", false),
        E::Wiring(_) => tagged(AgentError::new_err(message), "wiring", false),
        E::User { .. } => tagged(AgentError::new_err(message), "user", false),
        _ => tagged(AgentError::new_err(message), "agent", false),
    }
}

/// The Python exception for a search error: an environment failure keeps its own class.
pub fn search(e: wasmgym_search::SearchError) -> PyErr {
    match e {
        wasmgym_search::SearchError::Env(e) => runtime(e),
        other => tagged(SearchError::new_err(other.to_string()), "search", false),
    }
}

/// The Python exception for a grading error.
pub fn grade(e: wasmgym_grade::GradeError) -> PyErr {
    let kind = e.kind();
    tagged(GradeError::new_err(e.to_string()), kind, false)
}
