//! The fuzz targets' oracles (`tests/fuzz/oracles.rs`, the code libFuzzer runs) over every saved
//! input in `tests/fuzz/<target>/`: seeds, and each crash a fuzzer found, minimised. Plus the seeds
//! made at run time: real snapshots, the built-in modules and their specs. See `docs/fuzzing.md`.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

use wasmgym_tests::runtime;

#[path = "../fuzz/oracles.rs"]
mod oracles;
#[path = "../fuzz/seeds.rs"]
mod seeds;

/// The files in `tests/fuzz/<target>/`, sorted; fails if there are none, so no target goes untested.
fn saved_inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "{} holds no saved inputs: keep at least one seed per target", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (path.display().to_string(), bytes)
        })
        .collect()
}

/// Runs `oracle` on every input and returns how many it accepted; a failure names the input.
fn replay(inputs: &[(String, Vec<u8>)], oracle: impl Fn(&[u8]) -> bool) -> usize {
    let mut accepted = 0;
    for (name, bytes) in inputs {
        match catch_unwind(AssertUnwindSafe(|| oracle(bytes))) {
            Ok(ok) => accepted += usize::from(ok),
            Err(panic) => {
                eprintln!("the oracle failed on {name} ({} bytes)", bytes.len());
                resume_unwind(panic);
            }
        }
    }
    accepted
}

/// Replays the saved inputs of `target`, asserting that at least one is accepted (so the oracle's
/// properties, not only its error paths, run).
fn replay_saved(target: &str, oracle: impl Fn(&[u8]) -> bool) {
    let accepted = replay(&saved_inputs(target), oracle);
    assert!(accepted > 0, "no saved input of {target} was accepted: the seeds no longer reach the properties");
}

/// Replays inputs that must all be accepted.
fn replay_all_accepted(inputs: Vec<(String, Vec<u8>)>, oracle: impl Fn(&[u8]) -> bool) {
    assert!(!inputs.is_empty());
    for input in &inputs {
        assert!(replay(std::slice::from_ref(input), &oracle) == 1, "{} was not accepted", input.0);
    }
}

#[test]
fn every_target_has_saved_inputs() {
    for target in oracles::TARGETS {
        assert!(!saved_inputs(target).is_empty());
    }
}

#[test]
fn snapshot_bytes() {
    replay_saved("snapshot_bytes", oracles::snapshot_bytes);
    let real = seeds::snapshots(runtime());
    assert_eq!(real.len(), 6 * wasmgym_builtin::ENVS.len(), "two states, each plain, against the module and signed");
    replay_all_accepted(real, oracles::snapshot_bytes);
}

#[test]
fn wire() {
    replay_saved("wire", oracles::wire);
}

#[test]
fn spec_json() {
    replay_saved("spec_json", oracles::spec_json);
    replay_all_accepted(seeds::specs(runtime()), oracles::spec_json);
}

#[test]
fn test_jsonl() {
    replay_saved("test_jsonl", oracles::test_jsonl);
}

#[test]
fn load_module() {
    let runtime = runtime();
    replay_saved("load_module", |data| oracles::load_module(runtime, data));
    let stub = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/load_module/seed-stub-env.wat")).unwrap();
    assert!(runtime.load(&stub).is_ok(), "the stub environment seed no longer loads as an environment");
    replay_all_accepted(seeds::modules(usize::MAX), |data| oracles::load_module(runtime, data));
}
