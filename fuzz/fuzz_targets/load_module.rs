//! Arbitrary bytes loaded as an environment, a program and a checker; what loads is driven under
//! tight limits. Run with `-timeout=20 -rss_limit_mb=4096 -max_len=300000` (docs/fuzzing.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgym_fuzz::{oracles, runtime, seed_corpus, seeds};

/// The `-max_len` the target is run with; larger built-in modules are not used as seeds.
const MAX_LEN: usize = 300_000;

fuzz_target!(
    init: seed_corpus(|| seeds::modules(MAX_LEN)),
    |data: &[u8]| {
        oracles::load_module(runtime(), data);
    }
);
