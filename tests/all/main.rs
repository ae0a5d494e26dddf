//! wasmgym's integration tests, one binary (as in wasmtime's `tests/all`).

mod conformance;
