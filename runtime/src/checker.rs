//! [`CheckerModule`] (a compiled checker, shareable) and [`Checker`] (one sandboxed instance):
//! untrusted code that scores a program's output, or an environment's final state, under its own
//! limits.
//!
//! The checker ABI (`docs/abi.md`): a custom section `wasmgym_checker_abi` holding version 1
//! (`u32`, little-endian), and two exports:
//!
//! ```text
//! wasmgym_checker_alloc(len: i32) -> i32         a guest buffer of len bytes
//! wasmgym_check(ptr: i32, input_len: i32, expected_len: i32, output_len: i32) -> i64
//!     reads input ‖ expected ‖ output at ptr; returns (out_ptr << 32) | out_len, the output being
//!     score: f64 (little-endian, in [0, 1]) then a UTF-8 message
//! ```
//!
//! A reward checker may also import `wasmgym_env::render` and `wasmgym_env::step` to query the
//! fork of an environment it is given (see [`Checker::reward`]); the real episode never sees it.
//! Every check starts from the checker's pristine state (captured after `_initialize`), so checks
//! cannot influence each other.

use std::sync::Arc;

use wasmgym_abi::checker::{ALLOC, CHECK, CHECKER_ABI_SECTION, CHECKER_ABI_VERSION};
use wasmtime::TypedFunc;

use crate::error::{Error, Result};
use crate::instance::Env;
use crate::limits::Limits;
use crate::module::{ModuleInner, Runtime, to_binary};
use crate::program::{Imports, compile};
use crate::rewrite::Options;
use crate::sandbox::Sandbox;
use crate::snapshot::SnapshotData;
use crate::wasi::Io;

/// A compiled checker; cloning is cheap and clones share the compiled code.
#[derive(Clone)]
pub struct CheckerModule {
    inner: Arc<ModuleInner>,
}

impl std::fmt::Debug for CheckerModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckerModule").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Compiles a checker module (binary or WAT): it must carry the `wasmgym_checker_abi` stamp
    /// and export `wasmgym_checker_alloc` and `wasmgym_check` (the SDK's `export_checker!` does).
    pub fn load_checker(&self, wasm: &[u8]) -> Result<CheckerModule> {
        let binary = to_binary(wasm)?;
        let version = checker_version(&binary);
        let inner = compile(self, &binary, Options::default(), Imports::ForkQueries, &|layout| {
            if version.is_none() && layout.exports.iter().any(|e| e == "_start") {
                return Err(Error::WrongKind {
                    message: "it is a program (it exports `_start`), not a checker: export one with `export_checker!`"
                        .into(),
                });
            }
            if version.is_none() && layout.abi_version.is_some() {
                return Err(Error::WrongKind {
                    message: "it is an environment (it carries the `wasmgym_abi` stamp), not a checker: run it with \
                              `wasmgym run`, or build a checker with `export_checker!`"
                        .into(),
                });
            }
            match version {
                Some(CHECKER_ABI_VERSION) => Ok(()),
                found => Err(Error::AbiMismatch { found, supported: CHECKER_ABI_VERSION, what: "checker" }),
            }
        })?;
        let module = inner.pre.module();
        for (name, expected) in [(ALLOC, "(i32) -> i32"), (CHECK, "(i32, i32, i32, i32) -> i64")] {
            let expected = format!("a function {expected}");
            let Some(ty) = module.get_export(name).and_then(|e| e.func().cloned()) else {
                return Err(Error::MissingExport { name: name.into(), expected });
            };
            // The signature as `(i32, ...) -> i64`, compared with the one the ABI needs.
            let list = |types: &mut dyn Iterator<Item = wasmtime::ValType>| {
                types.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
            };
            let found = format!("a function ({}) -> {}", list(&mut ty.params()), list(&mut ty.results()));
            if found != expected {
                return Err(Error::MissingExport { name: name.into(), expected: format!("{expected}, found {ty}") });
            }
        }
        inner.layout.require_memory()?;
        Ok(CheckerModule { inner: Arc::new(inner) })
    }
}

/// The version in a module's `wasmgym_checker_abi` section, if it has a well-formed one.
fn checker_version(binary: &[u8]) -> Option<u32> {
    for payload in wasmparser::Parser::new(0).parse_all(binary) {
        if let Ok(wasmparser::Payload::CustomSection(section)) = payload
            && section.name() == CHECKER_ABI_SECTION
        {
            return section.data().try_into().ok().map(u32::from_le_bytes);
        }
    }
    None
}

impl CheckerModule {
    /// An instance under `limits` (which apply to each check), captured pristine.
    pub fn instantiate(&self, limits: Limits) -> Result<Checker> {
        let mut sandbox = Sandbox::new(&self.inner, limits, true)?;
        let pristine = sandbox.capture()?;
        let alloc = sandbox.func(ALLOC)?;
        let check = sandbox.func(CHECK)?;
        Ok(Checker { sandbox, pristine, alloc, check, used: false })
    }
}

/// A checker's verdict on one output.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// In [0, 1]; 1 means fully correct.
    pub score: f64,
    /// The checker's explanation (may be empty).
    pub message: String,
    /// Fuel the check used.
    pub fuel_used: u64,
}

/// One sandboxed checker instance; owns its store (one per thread).
pub struct Checker {
    sandbox: Sandbox,
    pristine: SnapshotData,
    alloc: TypedFunc<i32, i32>,
    check: TypedFunc<(i32, i32, i32, i32), i64>,
    used: bool,
}

impl Checker {
    /// Scores `output` against `expected` for a test whose input was `input`.
    ///
    /// Every failure of the checker is an `Err`: a trap or a limit (the checker's own), a score
    /// that is not a number in [0, 1], a malformed answer ([`Error::Protocol`]). Callers must treat
    /// it as "not graded", never as a score of 0.
    pub fn check(&mut self, input: &[u8], expected: &[u8], output: &[u8]) -> Result<Score> {
        self.run(input, expected, output, None)
    }

    /// A reward for an environment's current state: the checker runs with `input` and `expected`
    /// (the task, as the caller knows it) and an empty output, and may query a fork of `env`
    /// through `wasmgym_env::render` / `wasmgym_env::step`. `env` itself is only forked: nothing
    /// the checker does reaches it.
    pub fn reward(&mut self, env: &mut Env, input: &[u8], expected: &[u8]) -> Result<Score> {
        let fork = env.fork()?;
        self.run(input, expected, &[], Some(Box::new(fork)))
    }

    fn run(&mut self, input: &[u8], expected: &[u8], output: &[u8], fork: Option<Box<Env>>) -> Result<Score> {
        if self.used && self.sandbox.restore(&self.pristine)? {
            self.alloc = self.sandbox.func(ALLOC)?;
            self.check = self.sandbox.func(CHECK)?;
        }
        self.used = true;
        let protocol = |message: String| Error::Protocol { message: format!("checker: {message}") };
        let total = input.len() + expected.len() + output.len();
        let len = |n: usize| i32::try_from(n).map_err(|_| protocol(format!("{n} bytes do not fit its ABI")));
        let (input_len, expected_len, output_len) = (len(input.len())?, len(expected.len())?, len(output.len())?);
        len(total)?;
        self.sandbox.store.data_mut().io = Io { fork, ..Io::default() };
        let fuel_before = self.sandbox.store.data().vars.fuel_consumed;
        let result = self.call(total as i32, [input, expected, output], (input_len, expected_len, output_len));
        self.sandbox.store.data_mut().io = Io::default();
        let fuel_used = self.sandbox.store.data().vars.fuel_consumed - fuel_before;
        let out = result?;
        let (score, message) =
            out.split_at_checked(8).ok_or_else(|| protocol("its answer is shorter than 8 bytes".into()))?;
        let score = f64::from_le_bytes(score.try_into().expect("8 bytes"));
        if !(0.0..=1.0).contains(&score) {
            return Err(protocol(format!("its score {score} is not a number in [0, 1]")));
        }
        let message = String::from_utf8(message.to_vec()).map_err(|_| protocol("its message is not UTF-8".into()))?;
        Ok(Score { score, message, fuel_used })
    }

    fn call(&mut self, total: i32, parts: [&[u8]; 3], lens: (i32, i32, i32)) -> Result<Vec<u8>> {
        let ptr = self.sandbox.call(&self.alloc, total)?;
        let memory = self.sandbox.memory();
        let mut at = ptr as u32;
        for part in parts {
            self.sandbox.write_memory(at, part).map_err(|_| Error::Protocol {
                message: format!("checker: {ALLOC} returned {ptr:#x}, outside memory for {total} bytes"),
            })?;
            at = at.wrapping_add(part.len() as u32);
        }
        let packed = self.sandbox.call(&self.check, (ptr, lens.0, lens.1, lens.2))?;
        let (out_ptr, out_len) = wasmgym_abi::unpack(packed);
        let data = memory.data(&self.sandbox.store);
        (out_ptr as usize)
            .checked_add(out_len as usize)
            .and_then(|end| data.get(out_ptr as usize..end))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| Error::Protocol {
                message: format!("checker: its answer at {out_ptr:#x} of {out_len} bytes lies outside its memory"),
            })
    }
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker").finish_non_exhaustive()
    }
}
