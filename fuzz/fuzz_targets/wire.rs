//! The ABI's wire decoders (`wasmgym_abi::wire`) on arbitrary bytes; what decodes must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgym_fuzz::oracles;

fuzz_target!(|data: &[u8]| {
    oracles::wire(data);
});
