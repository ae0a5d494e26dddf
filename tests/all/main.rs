//! wasmgym's integration tests, one binary (as in wasmtime's `tests/all`).

mod agreement;
mod bad_input;
mod conformance;
mod forks;
mod grade;
mod limits;
mod properties;
