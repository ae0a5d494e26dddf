//! Prints where cargo put the Python extension (`lib_core.so`) built with this example.
//!
//! `cargo test --release --workspace` builds examples, and with this one the package's library,
//! so the README's test command compiles the extension in the same build as everything else
//! (one feature resolution, no second build of wasmtime); `scripts/test-python.sh` then installs
//! that library into a virtual environment. `pip install ./python` (maturin) builds it on its own.

fn main() {
    let exe = std::env::current_exe().expect("the example's own path");
    // target/<profile>/examples/extension_path -> target/<profile>/deps/lib_core.so (where a test
    // build leaves it; a plain build also copies it up to target/<profile>/).
    let profile_dir = exe.parent().and_then(|p| p.parent()).expect("an examples/ folder in a profile folder");
    let name = format!("{}_core{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    println!("{}", profile_dir.join("deps").join(name).display());
}
