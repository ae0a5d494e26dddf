//! Turning the `<env>` argument (a built-in name or a path to a `.wasm` / `.wat` file) into a
//! compiled module.

use std::path::Path;

use wasmgym::{EnvModule, Runtime};

use crate::error::{Context, Error};

/// A compiled environment and where it came from.
pub struct Loaded {
    pub module: EnvModule,
    /// `builtin:<name>` or the path as given.
    pub source: String,
}

/// Loads `env`: a built-in by name, otherwise a file. A name that is neither a built-in nor looks
/// like a path is a usage error that lists the built-ins.
pub fn load(runtime: &Runtime, env: &str) -> Result<Loaded, Error> {
    if let Some(builtin) = wasmgym_builtin::find(env) {
        let module = runtime.load(builtin.bytes).context(|| format!("loading built-in `{env}`"))?;
        return Ok(Loaded { module, source: format!("builtin:{env}") });
    }
    if !looks_like_path(env) {
        let names = wasmgym_builtin::names();
        return Err(Error::Usage(format!(
            "unknown environment `{env}`.{} The built-ins are {}; a path to a .wasm or .wat file works too",
            crate::output::did_you_mean(env, names.iter().copied()),
            names.join(", ")
        )));
    }
    if Path::new(env).exists() && !Path::new(env).is_file() {
        return Err(Error::Usage(format!(
            "`{env}` is not a regular file: pass a .wasm or .wat file, or a built-in name"
        )));
    }
    let module = runtime.load_file(env).context(|| format!("loading `{env}`"))?;
    Ok(Loaded { module, source: env.to_owned() })
}

/// A runtime with the default settings, keeping compiled modules in `<cache>/modules`.
pub fn runtime() -> Result<Runtime, Error> {
    let config = wasmgym::RuntimeConfig { compile_cache: cache_dir("modules"), ..Default::default() };
    Runtime::with_config(config).context(|| "starting the WebAssembly runtime".into())
}

/// The wasm stack graded programs get: recursion as deep as a native judge allows (a depth-first
/// search over 10⁶ nodes), on the grader's worker threads, which are sized for it.
pub const GRADE_WASM_STACK: usize = 256 << 20;

/// [`runtime`] for grading: [`GRADE_WASM_STACK`] of wasm stack.
pub fn grading_runtime() -> Result<Runtime, Error> {
    let config = wasmgym::RuntimeConfig {
        compile_cache: cache_dir("modules"),
        max_wasm_stack: GRADE_WASM_STACK,
        ..Default::default()
    };
    Runtime::with_config(config).context(|| "starting the WebAssembly runtime".into())
}

/// [`grading_runtime`] for Python: with WebAssembly exceptions, which CPython for WASI uses (only
/// the trusted interpreter is loaded by this runtime).
pub fn python_runtime() -> Result<Runtime, Error> {
    let config = wasmgym::RuntimeConfig {
        compile_cache: cache_dir("modules"),
        max_wasm_stack: GRADE_WASM_STACK,
        wasm_exceptions: true,
        ..Default::default()
    };
    Runtime::with_config(config).context(|| "starting the WebAssembly runtime".into())
}

/// Set by `--no-cache`: compile everything afresh and keep nothing.
pub static NO_CACHE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `what` in wasmgym's cache folder ([`wasmgym::cache_dir`]), or `None` under `--no-cache`.
pub fn cache_dir(what: &str) -> Option<std::path::PathBuf> {
    match NO_CACHE.load(std::sync::atomic::Ordering::Relaxed) {
        true => None,
        false => wasmgym::cache_dir(what),
    }
}

/// An existing file, or something written like a path (a separator or a wasm extension).
fn looks_like_path(arg: &str) -> bool {
    let path = Path::new(arg);
    path.exists()
        || arg.contains('/')
        || arg.contains(std::path::MAIN_SEPARATOR)
        || path.extension().is_some_and(|e| e == "wasm" || e == "wat")
}

/// A composite for `target`: a built-in composite (`wasmgym_agent::BUILTIN`), a wiring `.json` file
/// (its module paths relative to the file), or an environment on its own.
pub fn composite(runtime: &Runtime, target: &str) -> Result<wasmgym_agent::CompositeModule, Error> {
    if !is_composite(target) {
        // Fails with the usual message (and a did-you-mean) if it is neither a built-in nor a file.
        load(runtime, target)?;
    }
    let (wiring, base) = wasmgym_agent::wiring_for(target).map_err(Error::Usage)?;
    let builtin =
        |name: &str| wasmgym_builtin::find(name).or_else(|| wasmgym_builtin::find_program(name)).map(|g| g.bytes);
    let bytes_of = |name: &str| wasmgym_agent::module_bytes(name, base.as_deref(), builtin);
    Ok(wasmgym_agent::CompositeModule::load(runtime, wiring, &bytes_of)?)
}

/// Whether `target` names a composite rather than a plain environment: a built-in composite, a
/// wiring file or wiring JSON text.
pub fn is_composite(target: &str) -> bool {
    wasmgym_agent::Wiring::builtin(target).is_some()
        || target.ends_with(".json")
        || target.trim_start().starts_with('{')
}
