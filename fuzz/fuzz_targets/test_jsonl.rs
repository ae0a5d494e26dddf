//! `grade::parse_jsonl` on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgym_fuzz::oracles;

fuzz_target!(|data: &[u8]| {
    oracles::test_jsonl(data);
});
