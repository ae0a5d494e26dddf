//! Helpers of wasmgym's fuzz targets (`fuzz_targets/`). The oracles are in
//! `tests/fuzz/oracles.rs`, shared with `cargo test` (`tests/all/fuzz_regressions.rs`); this crate
//! adds what only a libFuzzer run needs: one runtime per process, seeding the corpus, and resealing
//! snapshot checksums. See `docs/fuzzing.md`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use wasmgym::Runtime;

#[path = "../../tests/fuzz/oracles.rs"]
pub mod oracles;
#[path = "../../tests/fuzz/seeds.rs"]
pub mod seeds;

/// The process-wide runtime (creating one spawns its epoch thread, so targets share this one).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new().expect("creating the runtime"))
}

/// Writes the seeds `make` returns into the run's corpus directory (the first command-line
/// argument that names a directory, which is where `cargo fuzz run` puts it), skipping files that
/// exist. Does nothing when no directory is given (replaying an input, `tmin`).
pub fn seed_corpus(make: impl FnOnce() -> Vec<seeds::Seed>) {
    let Some(dir) = corpus_dir() else { return };
    for (name, bytes) in make() {
        let path = dir.join(format!("seed-{name}"));
        if !path.exists() {
            std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
    }
}

fn corpus_dir() -> Option<PathBuf> {
    std::env::args().skip(1).filter(|a| !a.starts_with('-')).map(PathBuf::from).find(|p| Path::is_dir(p))
}

/// The input with its last 32 bytes replaced by the BLAKE3 hash of the others, which is the
/// snapshot format's checksum: without it, almost every mutation would stop at the checksum and
/// the parser behind it would go unfuzzed. Inputs shorter than a checksum are returned as they are.
pub fn reseal(data: &[u8]) -> Vec<u8> {
    let Some(body_len) = data.len().checked_sub(32) else { return data.to_vec() };
    let body = &data[..body_len];
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(body);
    out.extend_from_slice(blake3::hash(body).as_bytes());
    out
}
