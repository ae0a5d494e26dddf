//! The randomness an environment may use: the host's generator, seeded by `reset(seed)`.

/// Random numbers from the host's generator.
///
/// In WebAssembly every draw goes to the host (WASI `random_get`), whose generator state is part of
/// every snapshot; natively (for tests and baselines) the same generator runs in-process, so both
/// builds draw the same numbers from the same seed.
pub struct Rng {
    #[cfg(not(target_family = "wasm"))]
    inner: wasmgym_abi::rng::Rng,
}

#[cfg(target_family = "wasm")]
#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    #[link_name = "random_get"]
    fn wasi_random_get(buf: *mut u8, len: usize) -> u16;
}

impl Rng {
    pub(crate) fn new() -> Self {
        Rng {
            #[cfg(not(target_family = "wasm"))]
            inner: wasmgym_abi::rng::Rng::seed_from_u64(0),
        }
    }

    /// A copy of the generator's state, to put back after a refused reset (on WebAssembly the
    /// host holds the state and puts it back itself).
    pub(crate) fn saved(&self) -> Rng {
        Rng {
            #[cfg(not(target_family = "wasm"))]
            inner: self.inner.clone(),
        }
    }

    /// Reseeds the generator; on WebAssembly the host has already done it.
    #[cfg_attr(target_family = "wasm", allow(unused_variables))]
    pub(crate) fn reseed(&mut self, seed: u64) {
        #[cfg(not(target_family = "wasm"))]
        {
            self.inner = wasmgym_abi::rng::Rng::seed_from_u64(seed);
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        #[cfg(target_family = "wasm")]
        {
            let mut buf = [0u8; 8];
            // SAFETY: `buf` is valid for 8 bytes. The host's `random_get` never fails for a valid
            // buffer; if it did, the zeroed buffer is still a deterministic value.
            unsafe { wasi_random_get(buf.as_mut_ptr(), buf.len()) };
            u64::from_le_bytes(buf)
        }
        #[cfg(not(target_family = "wasm"))]
        {
            self.inner.next_u64()
        }
    }

    /// A uniform integer in `0..n` (`n` > 0), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0) has no values");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform float in `[low, high)`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit_f64()
    }

    /// `true` with probability `p`.
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.unit_f64() < p
    }
}
