//! Builds every environment in `envs/` for wasm32-wasip1, so no `.wasm` is ever committed.
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
    let envs_dir = root.join("envs");
    let target = env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let out_dir = target.join("guests");
    for dir in ["envs", "sdk", "abi"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed=Cargo.lock");

    let mut rust = Vec::new();
    let mut wat = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(&envs_dir).expect("reading envs/").map(|e| e.unwrap().path()).collect();
    entries.sort();
    for dir in entries.iter().filter(|p| p.is_dir()) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if dir.join("Cargo.toml").exists() {
            rust.push(name);
        } else if let Some(file) = single_wat(dir) {
            wat.push((name, file));
        } else {
            panic!("envs/{name} is neither a Rust crate (Cargo.toml) nor a WAT environment (one .wat file)");
        }
    }

    let mut built = Vec::new();
    if !rust.is_empty() {
        build_rust(&root, &out_dir, &rust);
        for name in &rust {
            let wasm = out_dir.join("wasm32-wasip1/release").join(format!("{name}.wasm"));
            assert!(wasm.exists(), "building envs/{name} produced no {}", wasm.display());
            built.push((name.clone(), "rust", wasm));
        }
    }
    for (name, file) in &wat {
        let wasm = out_dir.join(format!("{name}.wasm"));
        let bytes = wat::parse_file(file).unwrap_or_else(|e| panic!("envs/{name}: {e}"));
        fs::create_dir_all(&out_dir).unwrap();
        fs::write(&wasm, bytes).unwrap();
        built.push((name.clone(), "wat", wasm));
    }

    let mut code = String::from("/// Every built-in environment, sorted by name.\npub const ENVS: &[BuiltinEnv] = &[\n");
    built.sort();
    for (name, language, wasm) in &built {
        let short = name.strip_suffix("_wat").unwrap_or(name);
        code.push_str(&format!(
            "    BuiltinEnv {{ name: {short:?}, crate_dir: {dir:?}, language: {language:?}, path: {path:?}, bytes: include_bytes!({path:?}) }},\n",
            dir = format!("envs/{name}"),
            path = wasm.display().to_string(),
        ));
    }
    code.push_str("];\n");
    fs::write(PathBuf::from(env::var("OUT_DIR").unwrap()).join("envs.rs"), code).unwrap();
}

fn single_wat(dir: &Path) -> Option<PathBuf> {
    let wats: Vec<_> = fs::read_dir(dir).ok()?.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "wat")).collect();
    (wats.len() == 1).then(|| wats[0].clone())
}

fn build_rust(root: &Path, out_dir: &Path, crates: &[String]) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--target", "wasm32-wasip1", "--target-dir"])
        .arg(out_dir);
    for name in crates {
        cmd.args(["-p", name]);
    }
    // The outer build's settings must not leak into the guest build.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER"] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", format!("-Clink-arg=-zstack-size={GUEST_STACK_BYTES}"))
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    let status = cmd.status().expect("running cargo to build the guests");
    assert!(
        status.success(),
        "building the environments for wasm32-wasip1 failed. If the target is missing, run `rustup target add wasm32-wasip1`"
    );
}
