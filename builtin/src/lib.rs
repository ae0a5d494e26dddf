//! The environments that ship with wasmgym, compiled from `envs/` for wasm32-wasip1 by this crate's
//! build script and embedded in the binary.
//!
//! ```
//! let env = wasmgym_builtin::find("tic_tac_toe").unwrap();
//! assert!(env.bytes.starts_with(b"\0asm"));
//! ```

#![deny(missing_docs)]

/// One built-in environment.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinEnv {
    /// The name `wasmgym` commands accept, such as `"connect_four"`.
    pub name: &'static str,
    /// Its source folder, relative to the repository root.
    pub crate_dir: &'static str,
    /// The language it is written in: `"rust"` or `"wat"`.
    pub language: &'static str,
    /// Where the build wrote its `.wasm`.
    pub path: &'static str,
    /// The module's bytes.
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/envs.rs"));

/// The built-in environment called `name`.
pub fn find(name: &str) -> Option<&'static BuiltinEnv> {
    ENVS.iter().find(|e| e.name == name)
}

/// The test-only guest called `name` (from `tests/guests/`).
pub fn find_test_guest(name: &str) -> Option<&'static BuiltinEnv> {
    TEST_GUESTS.iter().find(|e| e.name == name)
}

/// Names of all built-in environments.
pub fn names() -> Vec<&'static str> {
    ENVS.iter().map(|e| e.name).collect()
}

/// The example program, checker or environment called `name` (from `programs/`).
pub fn find_program(name: &str) -> Option<&'static BuiltinEnv> {
    PROGRAMS.iter().find(|e| e.name == name)
}

/// The native executable of the binary crate `name` in `programs/`.
pub fn native_program(name: &str) -> Option<&'static str> {
    NATIVE_PROGRAMS.iter().find(|(n, _)| *n == name).map(|(_, path)| *path)
}
