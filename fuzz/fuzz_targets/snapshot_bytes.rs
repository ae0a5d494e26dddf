//! `Snapshot::from_bytes` on arbitrary bytes with a valid checksum, and for inputs claiming format
//! 2 also with their body compressed (`snapshot_inputs`); what decodes must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgym_fuzz::{oracles, seed_corpus, snapshot_inputs, snapshot_seeds};

fuzz_target!(
    init: seed_corpus(snapshot_seeds),
    |data: &[u8]| {
        for input in snapshot_inputs(data) {
            oracles::snapshot_bytes(&input);
        }
    }
);
