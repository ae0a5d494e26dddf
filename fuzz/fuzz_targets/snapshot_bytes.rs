//! `Snapshot::from_bytes` on arbitrary bytes with a valid checksum; what decodes must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgym_fuzz::{oracles, reseal, runtime, seed_corpus, seeds};

fuzz_target!(
    init: seed_corpus(|| seeds::snapshots(runtime())),
    |data: &[u8]| {
        oracles::snapshot_bytes(&reseal(data));
    }
);
