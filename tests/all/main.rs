//! wasmgym's integration tests, one binary (as in wasmtime's `tests/all`).

mod bad_input;
mod conformance;
mod limits;
