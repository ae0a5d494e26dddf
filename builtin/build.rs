//! Builds every environment in `envs/` (and every guest in `tests/guests/` and `programs/`) for
//! wasm32-wasip1, so no `.wasm` is ever committed. Binary crates in `programs/` are also built
//! natively, for the process-per-test baseline of `wasmgym bench grade`.
//!
//! Rust environments (a folder with a `Cargo.toml`) are built by a nested cargo into
//! `target/guests/` (a separate target directory, so the outer build's lock is not contended);
//! WAT environments (a folder with one `.wat` file) are assembled into the same place. A folder in
//! `envs/` that is neither fails the build, so no environment is silently left out.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// Stack size of Rust guests: small stacks keep snapshots small.
const GUEST_STACK_BYTES: u32 = 128 << 10;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let target = env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let out_dir = target.join("guests");
    for dir in ["envs", "sdk", "abi"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());

    let envs = discover(&root, "envs");
    let test_guests = discover(&root, "tests/guests");
    println!("cargo:rerun-if-changed={}", root.join("tests/guests").display());
    let programs = discover(&root, "programs");
    println!("cargo:rerun-if-changed={}", root.join("programs").display());

    // One cargo invocation for every Rust guest, so they share one build.
    let rust: Vec<&Guest> = envs.iter().chain(&test_guests).chain(&programs).filter(|g| g.wat.is_none()).collect();
    if !rust.is_empty() {
        build_rust(&root, &out_dir, &rust);
    }
    // Binary crates, natively too.
    let native: Vec<&Guest> = programs.iter().filter(|g| root.join(&g.dir).join("src/main.rs").exists()).collect();
    if !native.is_empty() {
        build_native(&root, &out_dir, &native);
    }
    let mut code = String::new();
    code += &listing("ENVS", "Every built-in environment, sorted by name.", &envs, &out_dir);
    code +=
        &listing("TEST_GUESTS", "Guests that exist only for the test suite (`tests/guests/`).", &test_guests, &out_dir);
    code += &listing(
        "PROGRAMS",
        "Example programs, checkers and the reward-checker example environment (`programs/`).",
        &programs,
        &out_dir,
    );
    code += "/// Binary crates of `programs/` built natively: `(name, path of the executable)`.\npub const NATIVE_PROGRAMS: &[(&str, &str)] = &[\n";
    for guest in &native {
        let exe = out_dir.join("release").join(format!("{}{}", guest.name, env::consts::EXE_SUFFIX));
        assert!(exe.exists(), "building {} natively produced no {}", guest.dir, exe.display());
        code += &format!("    ({:?}, {:?}),\n", guest.name, exe.display().to_string());
    }
    code += "];\n";
    fs::write(PathBuf::from(env::var("OUT_DIR").unwrap()).join("envs.rs"), code).unwrap();
}

struct Guest {
    /// Folder name, which is also the crate name of a Rust guest.
    name: String,
    /// Folder relative to the repository root.
    dir: String,
    /// The `.wat` file of a WAT guest.
    wat: Option<PathBuf>,
}

/// The guests in `root/folder`: each subfolder is a Rust crate or holds one `.wat` file.
fn discover(root: &Path, folder: &str) -> Vec<Guest> {
    let Ok(entries) = fs::read_dir(root.join(folder)) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs.iter()
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let wat = if dir.join("Cargo.toml").exists() {
                None
            } else {
                Some(single_wat(dir).unwrap_or_else(|| {
                    panic!("{folder}/{name} is neither a Rust crate (Cargo.toml) nor a WAT environment (one .wat file)")
                }))
            };
            Guest { dir: format!("{folder}/{name}"), name, wat }
        })
        .collect()
}

/// Rust source for `pub const NAME: &[BuiltinEnv]`, assembling WAT guests on the way.
fn listing(name: &str, doc: &str, guests: &[Guest], out_dir: &Path) -> String {
    let mut code = format!("/// {doc}\npub const {name}: &[BuiltinEnv] = &[\n");
    for guest in guests {
        let (short, language, wasm) = match &guest.wat {
            None => {
                let wasm = out_dir.join("wasm32-wasip1/release").join(format!("{}.wasm", guest.name));
                assert!(wasm.exists(), "building {} produced no {}", guest.dir, wasm.display());
                (guest.name.as_str(), "rust", wasm)
            }
            Some(file) => {
                let wasm = out_dir.join(format!("{}.wasm", guest.name));
                let bytes = wat::parse_file(file).unwrap_or_else(|e| panic!("{}: {e}", guest.dir));
                fs::create_dir_all(out_dir).unwrap();
                fs::write(&wasm, bytes).unwrap();
                (guest.name.strip_suffix("_wat").unwrap_or(&guest.name), "wat", wasm)
            }
        };
        code += &format!(
            "    BuiltinEnv {{ name: {short:?}, crate_dir: {dir:?}, language: {language:?}, path: {path:?}, bytes: include_bytes!({path:?}) }},\n",
            dir = guest.dir,
            path = wasm.display().to_string(),
        );
    }
    code + "];\n"
}

fn single_wat(dir: &Path) -> Option<PathBuf> {
    let wats: Vec<_> = fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wat"))
        .collect();
    (wats.len() == 1).then(|| wats[0].clone())
}

/// A cargo command building `crates` in release into `out_dir`, free of the outer build's settings.
fn nested_cargo(root: &Path, out_dir: &Path, crates: &[&Guest]) -> Command {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["build", "--release", "--target-dir"]).arg(out_dir);
    for guest in crates {
        cmd.args(["-p", &guest.name]);
    }
    // The outer build's settings must not leak into the guest build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn build_native(root: &Path, out_dir: &Path, crates: &[&Guest]) {
    let mut cmd = nested_cargo(root, out_dir, crates);
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    let status = cmd.status().expect("running cargo to build the programs natively");
    assert!(status.success(), "building the programs natively failed");
}

fn build_rust(root: &Path, out_dir: &Path, crates: &[&Guest]) {
    let mut cmd = nested_cargo(root, out_dir, crates);
    cmd.args(["--target", "wasm32-wasip1"]);
    cmd.env("CARGO_ENCODED_RUSTFLAGS", format!("-Clink-arg=-zstack-size={GUEST_STACK_BYTES}"))
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    let status = cmd.status().expect("running cargo to build the guests");
    assert!(
        status.success(),
        "building the environments for wasm32-wasip1 failed. If the target is missing, run `rustup target add wasm32-wasip1`"
    );
}
