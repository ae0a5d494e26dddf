//! `Snapshot::from_bytes` (and `EnvModule::snapshot_from_bytes` for bytes naming a built-in
//! environment) on arbitrary bytes with a valid checksum, and for inputs claiming format 2 or 3
//! also with their body compressed (`snapshot_inputs`); what decodes must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgym_fuzz::{oracles, seed_corpus, snapshot_inputs, snapshot_seeds};

fuzz_target!(
    init: {
        // Load the modules the oracle decodes with before any input is timed.
        oracles::builtin_modules();
        seed_corpus(snapshot_seeds)
    },
    |data: &[u8]| {
        for input in snapshot_inputs(data) {
            oracles::snapshot_bytes(&input);
        }
    }
);
