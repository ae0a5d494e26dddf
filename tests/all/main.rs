//! wasmgym's integration tests, one binary (as in wasmtime's `tests/all`).

mod abi_doc;
mod agent;
mod agreement;
mod bad_input;
mod cache;
mod conformance;
mod forks;
mod fuzz_regressions;
mod grade;
mod hardening;
mod limits;
mod properties;
mod python;
mod source;
