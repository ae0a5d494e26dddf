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
/// argument that names a directory, which is where `cargo fuzz run` puts it) as `seed-<name>`,
/// replacing older versions (the built-in modules change). Does nothing when no directory is given
/// (replaying an input, `tmin`).
pub fn seed_corpus(make: impl FnOnce() -> Vec<seeds::Seed>) {
    let Some(dir) = corpus_dir() else { return };
    for (name, bytes) in make() {
        let path = dir.join(format!("seed-{name}"));
        if std::fs::read(&path).ok().as_ref() != Some(&bytes) {
            std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
    }
}

fn corpus_dir() -> Option<PathBuf> {
    std::env::args().skip(1).filter(|a| !a.starts_with('-')).map(PathBuf::from).find(|p| Path::is_dir(p))
}

/// What the `snapshot_bytes` oracle is given for one fuzz input, so that mutations reach the parser:
///
/// - the input resealed ([`reseal`]): without a valid checksum nearly every mutation would stop
///   there; if it claims format 5 (bytes 8..12), resealed with the oracle's key
///   ([`oracles::FUZZ_KEY`]) instead, so mutations get past the authentication;
/// - if the input claims format 2, 3 or 5, also the input with the bytes between the header and
///   the checksum compressed as the zstd body those formats have, then resealed: mutations of the
///   plain body reach the page bitmap, globals and host state, which mutations of compressed bytes
///   rarely do. The seeds include each real snapshot in this plain form ([`plain_snapshot`]).
///
/// Set `WASMGYM_FUZZ_DUMP` to a directory to have every input the oracle sees written there (to
/// save a crash's input under `tests/fuzz/snapshot_bytes/` in the form the oracle decodes).
pub fn snapshot_inputs(data: &[u8]) -> Vec<Vec<u8>> {
    const HEADER: usize = 8 + 4 + 32;
    let mut inputs = vec![reseal(data)];
    if data.len() >= HEADER + 32 && zstd_body(data) {
        let (header, rest) = data.split_at(HEADER);
        let plain = &rest[..rest.len() - 32];
        let mut compressed = header.to_vec();
        compressed.extend_from_slice(&zstd::bulk::compress(plain, 1).expect("zstd compresses"));
        compressed.extend_from_slice(&[0; 32]);
        inputs.push(reseal(&compressed));
    }
    static DUMP: OnceLock<Option<PathBuf>> = OnceLock::new();
    if let Some(dir) = DUMP.get_or_init(|| std::env::var_os("WASMGYM_FUZZ_DUMP").map(PathBuf::from)) {
        for input in &inputs {
            std::fs::write(dir.join(blake3::hash(input).to_hex().as_str()), input).expect("writing a dumped input");
        }
    }
    inputs
}

/// Whether the bytes claim a format whose body is zstd-compressed (2, 3 or 5).
fn zstd_body(bytes: &[u8]) -> bool {
    bytes.get(8..12).is_some_and(|f| [2u32, 3, 5].iter().any(|v| f == v.to_le_bytes()))
}

/// A format 2, 3 or 5 snapshot's bytes with the body decompressed: the plain form
/// [`snapshot_inputs`] compresses again. `None` for other bytes.
pub fn plain_snapshot(bytes: &[u8]) -> Option<Vec<u8>> {
    const HEADER: usize = 8 + 4 + 32;
    if bytes.len() < HEADER + 32 || !zstd_body(bytes) {
        return None;
    }
    let mut plain = bytes[..HEADER].to_vec();
    plain.extend_from_slice(&zstd::decode_all(&bytes[HEADER..bytes.len() - 32]).ok()?);
    plain.extend_from_slice(&[0; 32]);
    Some(reseal(&plain))
}

/// Real snapshots of the built-in environments ([`seeds::snapshots`]), each also in plain form.
pub fn snapshot_seeds() -> Vec<seeds::Seed> {
    let mut out = Vec::new();
    // The oracle's own modules (loaded here, before any input is timed).
    for (name, bytes) in seeds::snapshots_of(oracles::builtin_modules()) {
        if let Some(plain) = plain_snapshot(&bytes) {
            out.push((format!("{name}-plain"), plain));
        }
        out.push((name, bytes));
    }
    out
}

/// The input with its last 32 bytes replaced by the BLAKE3 hash of the others, which is the
/// snapshot format's checksum, or for bytes claiming format 5 their BLAKE3 hash keyed with
/// [`oracles::FUZZ_KEY`]. Inputs shorter than a checksum are returned as they are.
pub fn reseal(data: &[u8]) -> Vec<u8> {
    let Some(body_len) = data.len().checked_sub(32) else { return data.to_vec() };
    let body = &data[..body_len];
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(body);
    if data.get(8..12) == Some(&5u32.to_le_bytes()[..]) {
        out.extend_from_slice(blake3::keyed_hash(&oracles::FUZZ_KEY.0, body).as_bytes());
    } else {
        out.extend_from_slice(blake3::hash(body).as_bytes());
    }
    out
}
