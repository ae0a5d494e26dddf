//! Hard limits on a guest, each mapped to one [`Error`](crate::Error) variant.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits for one instance and for each call into it. Plain data; `Limits::default()` is a safe
/// starting point for environments.
///
/// What they do not cover: host memory used by snapshots (they live outside the guest), compile
/// time of a module, and the time the host spends between calls. For a graded program a "call" is
/// one run of `_start`; `docs/grading.md` says what each limit does not cover there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Fuel (about one unit per wasm instruction) for one call (`reset`, `step`, ...). Deterministic:
    /// the same call in the same state always uses the same fuel. `None`: no fuel limit.
    /// → [`Error::OutOfFuel`](crate::Error::OutOfFuel).
    pub fuel_per_call: Option<u64>,
    /// Wall-clock time for one call, enforced by epoch interruption with the runtime's tick
    /// (`RuntimeConfig::epoch_tick`) as its resolution. Not deterministic: prefer fuel for budgets
    /// that must reproduce. `None`: no deadline. → [`Error::Deadline`](crate::Error::Deadline).
    pub deadline: Option<Duration>,
    /// Linear memory of the instance, in bytes, including the initial size.
    /// → [`Error::MemoryLimit`](crate::Error::MemoryLimit).
    pub memory_bytes: u64,
    /// Elements in each table. → [`Error::TableLimit`](crate::Error::TableLimit).
    pub table_elements: u64,
    /// Bytes of captured stdout plus stderr held by the instance.
    /// → [`Error::OutputLimit`](crate::Error::OutputLimit).
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel_per_call: Some(1_000_000_000),
            deadline: Some(Duration::from_secs(10)),
            memory_bytes: 256 << 20,
            table_elements: 100_000,
            output_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// No fuel limit and no deadline; memory, table and output caps as in `default()`.
    pub fn unmetered() -> Self {
        Limits { fuel_per_call: None, deadline: None, ..Limits::default() }
    }
}
