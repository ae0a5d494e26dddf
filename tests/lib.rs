//! Shared helpers of the integration tests: built-in modules, compiled once per test process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use wasmgym::{EnvModule, Runtime};

/// The process-wide runtime.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new().expect("creating the runtime"))
}

/// The built-in environment `name`, compiled once and shared.
/// The Python interpreter (`scripts/get-python.sh`) on a runtime set up as `wasmgym grade --lang
/// python` sets it up (so both share the compile cache: the interpreter compiles once, in
/// minutes, on a fresh machine).
pub fn python() -> &'static (Runtime, wasmgym_grade::Interpreter) {
    static PYTHON: OnceLock<(Runtime, wasmgym_grade::Interpreter)> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let cache = std::env::var_os("WASMGYM_CACHE_DIR")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| std::path::Path::new(&d).join("wasmgym")))
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/wasmgym")))
            .filter(|d| !d.as_os_str().is_empty());
        let config = wasmgym::RuntimeConfig {
            compile_cache: cache.map(|c| c.join("modules")),
            max_wasm_stack: 256 << 20,
            wasm_exceptions: true,
            ..Default::default()
        };
        let runtime = Runtime::with_config(config).unwrap();
        let interpreter = wasmgym_grade::Interpreter::load(&runtime, &wasmgym_grade::Interpreter::default_dir())
            .unwrap_or_else(|e| panic!("{e} (the test command runs scripts/install-toolchains.sh, which fetches it)"));
        (runtime, interpreter)
    })
}

pub fn module(name: &str) -> EnvModule {
    cached(name, wasmgym_builtin::find)
}

/// The test-only guest `name` (from `tests/guests/`), compiled once and shared.
pub fn test_guest(name: &str) -> EnvModule {
    cached(name, wasmgym_builtin::find_test_guest)
}

/// A grading test with `stdin` and the `expected` stdout, and nothing else.
pub fn test_case(name: &str, stdin: &str, expected: &str) -> wasmgym_grade::TestCase {
    wasmgym_grade::TestCase {
        name: name.into(),
        stdin: stdin.as_bytes().to_vec(),
        expected_stdout: expected.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A composite of `wiring`, its modules found among the built-in environments, programs and
/// test guests.
pub fn composite(wiring: wasmgym_agent::Wiring) -> wasmgym_agent::CompositeModule {
    let finders = [wasmgym_builtin::find, wasmgym_builtin::find_program, wasmgym_builtin::find_test_guest];
    let bytes_of = |name: &str| {
        finders.iter().find_map(|f| f(name)).map(|g| g.bytes.to_vec()).ok_or_else(|| format!("no built-in {name}"))
    };
    wasmgym_agent::CompositeModule::load(runtime(), wiring, &bytes_of).unwrap_or_else(|e| panic!("{e}"))
}

/// Every built-in environment's name.
pub fn all_envs() -> Vec<&'static str> {
    wasmgym_builtin::names()
}

fn cached(name: &str, find: fn(&str) -> Option<&'static wasmgym_builtin::BuiltinEnv>) -> EnvModule {
    static CACHE: OnceLock<Mutex<HashMap<String, EnvModule>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(m) = cache.lock().unwrap().get(name) {
        return m.clone();
    }
    let guest = find(name).unwrap_or_else(|| panic!("no guest called {name}"));
    let module = runtime().load(guest.bytes).unwrap_or_else(|e| panic!("loading {name}: {e}"));
    cache.lock().unwrap().insert(name.to_owned(), module.clone());
    module
}
