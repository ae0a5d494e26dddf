//! `EnvSpec` from arbitrary JSON, `validate`, and the JSON round trip of what validates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgym_fuzz::{oracles, runtime, seed_corpus, seeds};

fuzz_target!(
    init: seed_corpus(|| seeds::specs(runtime())),
    |data: &[u8]| {
        oracles::spec_json(data);
    }
);
