//! `sin` and `cos` of an `f64` that return exactly what glibc 2.36's x86-64 `sin` and `cos` return
//! on a CPU with FMA and AVX2, for every `|x| < 0.85546875`.
//!
//! # What this reproduces
//!
//! On x86-64, glibc's `sin`/`cos` are IFUNCs: when the CPU has FMA and AVX2 the dynamic loader
//! binds them to `__sin_fma`/`__cos_fma`, which are `sysdeps/ieee754/dbl-64/s_sin.c` (the IBM
//! Accurate Mathematical Library's `usncs.c`) compiled with `-mfma -mavx2`
//! (`sysdeps/x86_64/fpu/multiarch/s_sin-fma.c`), so GCC contracted some `a * b + c` into fused
//! multiply-adds. Python's `math.sin` and numpy's `np.sin` on `float64` call these, which is where
//! Gymnasium's CartPole gets its sine and cosine. The functions below are a re-implementation in
//! Rust of that numeric algorithm for `|x| < 0.85546875` (glibc's first range, `k < 0x3feb6000`),
//! with every rounding where the compiled code has one and every fused multiply-add where it has
//! one. The operation order was read off the disassembly of Debian 12's `libm.so.6`
//! (glibc 2.36-9+deb12u14; `__sin_fma` at 0x702c0, `__cos_fma` at 0x70ad0, symbols from
//! `libc6-dbg`):
//!
//! * `sin`: `|x| < 2^-26` returns `x`; `|x| < 0.126` evaluates `TAYLOR_SIN`, a degree-11 odd
//!   polynomial; otherwise `do_sin`: `x = j/128 + r`, `sin(j/128)` and `cos(j/128)` (each as a
//!   double plus a correction) from the table, and short polynomials in `r`;
//! * `cos`: `|x| < 2^-27` returns `1`; otherwise `do_cos`, the same table and polynomials.
//!
//! The fused multiply-adds are correctly rounded, so their result is unique: natively with
//! [`libm::fma`] (the FMA instruction where the CPU has one, integer arithmetic elsewhere), and in
//! WebAssembly with relaxed SIMD's `f64x2.relaxed_madd`, which the runtime compiles in its
//! deterministic mode, fused on every host (session 10; before, `libm::fma` in software: 9,349 fuel
//! per step against 5,549 now). So the functions return the same bits natively and in WebAssembly. Outside
//! `|x| < 0.85546875`, and for NaN and the infinities, they return [`libm::sin`]/[`libm::cos`],
//! which may differ from glibc in the last bit. A CartPole step takes the sine and cosine of the
//! angle before it, and an episode ends as soon as `|theta| > 12°` (0.2094 rad), so only a reset to
//! an angle of 0.855 rad or more gets there.
//!
//! The tests compare both functions with the C library's bit for bit on x86-64 Linux machines with
//! glibc 2.36 and FMA and AVX2.
//!
//! # Provenance and license
//!
//! glibc's `s_sin.c` and `sincostab.c` are Copyright (C) 2001-2022 Free Software Foundation, Inc.,
//! written by IBM (IBM Accurate Mathematical Library), and licensed under the GNU LGPL 2.1 or later.
//! This file contains no glibc source code; it implements the same published numeric algorithm. Its
//! constants are glibc's: the polynomial coefficients of `s_sin.c` and `usncs.h`, and
//! `SINCOSTAB`, glibc's `__sincostab` table (`sysdeps/ieee754/dbl-64/sincostab.c`), copied as
//! bit patterns from the `.rodata` of Debian's glibc 2.36 `libm.so.6` (at 0xa9d40) and identical,
//! all 440 entries, to the little-endian table of `sincostab.c` at the `glibc-2.36` tag.

/// `|x|` below which the functions reproduce glibc: `0.85546875 = 0x3feb6000_00000000`, the end of
/// glibc's first range, where `x` is used without range reduction.
pub const EXACT_BELOW: f64 = 0.85546875;

/// `2^-26`: below it glibc's `sin(x)` is `x`.
const SIN_TINY: f64 = 1.0 / (1u64 << 26) as f64;
/// `2^-27`: below it glibc's `cos(x)` is `1`.
const COS_TINY: f64 = 1.0 / (1u64 << 27) as f64;
/// Below it `sin` uses the Taylor polynomial rather than the table.
const TAYLOR_BELOW: f64 = 0.126;
/// `big = 0x1.8p45`: `|x| + BIG` rounds `|x|` to a multiple of 1/128 and puts that multiple's
/// numerator in the low bits.
const BIG: f64 = f64::from_bits(0x42c8_0000_0000_0000);

// `TAYLOR_SIN` coefficients (glibc's usncs.h: s1 .. s5).
const S1: f64 = f64::from_bits(0xbfc5_5555_5555_5555);
const S2: f64 = f64::from_bits(0x3f81_1111_1111_0ece);
const S3: f64 = f64::from_bits(0xbf2a_01a0_19db_08b8);
const S4: f64 = f64::from_bits(0x3ec7_1de2_7b9a_7ed9);
const S5: f64 = f64::from_bits(0xbe5a_ddff_c2fc_df59);

// `do_sin`/`do_cos` coefficients (glibc's s_sin.c: sn3, sn5, cs2, cs4, cs6).
const SN3: f64 = f64::from_bits(0xbfc5_5555_5555_5515);
const SN5: f64 = f64::from_bits(0x3f81_1110_e829_872f);
const CS2: f64 = 0.5;
const CS4: f64 = f64::from_bits(0xbfa5_5555_5555_5535);
const CS6: f64 = f64::from_bits(0x3f56_c16b_edd9_e239);

/// `a * b + c` with a single rounding (`vfmadd` in glibc's compiled code).
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn fma(a: f64, b: f64, c: f64) -> f64 {
    libm::fma(a, b, c)
}

/// `a * b + c` with a single rounding, in one instruction: relaxed SIMD's `f64x2.relaxed_madd`,
/// which wasmgym's runtime compiles in deterministic mode (`relaxed_simd_deterministic`), where it
/// is fused on every machine: the host's FMA instruction, or a correctly rounded `fma` where the
/// host has none. So it gives what [`libm::fma`] gives (the native build's path), about 40 times
/// cheaper than that in software. On an engine whose relaxed SIMD is not deterministic it could be
/// unfused: this environment needs the deterministic mode.
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128,relaxed-simd")]
fn fma(a: f64, b: f64, c: f64) -> f64 {
    use core::arch::wasm32::{f64x2_extract_lane, f64x2_relaxed_madd, f64x2_splat};
    f64x2_extract_lane::<0>(f64x2_relaxed_madd(f64x2_splat(a), f64x2_splat(b), f64x2_splat(c)))
}

/// glibc 2.36's `sin(x)` on the x86-64 FMA path, bit for bit for `|x| < 0.85546875`; elsewhere
/// [`libm::sin`].
pub fn sin(x: f64) -> f64 {
    let ax = x.abs();
    if ax < SIN_TINY {
        return x;
    }
    if ax >= EXACT_BELOW || ax.is_nan() {
        return libm::sin(x);
    }
    if ax < TAYLOR_BELOW {
        // TAYLOR_SIN (xx, x, 0): ((POLYNOMIAL (xx) * x - 0.5 * 0) * xx + 0) + x, where the Horner
        // steps and the final `* xx + 0` are fused and `POLYNOMIAL (xx) * x - 0.0` is a plain
        // product (GCC emitted `fma (p, x, -0.0)`, which rounds the same).
        let xx = x * x;
        let p = fma(xx, S5, S4);
        let p = fma(xx, p, S3);
        let p = fma(xx, p, S2);
        let p = fma(xx, p, S1);
        let t = fma(x * p, xx, 0.0);
        return x + t;
    }
    // do_sin (x, 0). Each `fma` is a `vfmadd`/`vfnmadd` of `__sin_fma`, each `*`, `+` and `-` a
    // separately rounded `vmulsd`, `vaddsd` or `vsubsd`.
    let dx = if x > 0.0 { 0.0 } else { -0.0 };
    let u = ax + BIG;
    let r = ax - (u - BIG);
    let [sn, ssn, cs, ccs] = table_row(u);
    let xx = r * r;
    let s = r + fma(r * xx, fma(xx, SN5, SN3), dx);
    let c = fma(r, dx, xx * fma(xx, fma(xx, CS6, CS4), CS2));
    let cor = fma(s, cs, fma(-c, sn, fma(s, ccs, ssn)));
    (sn + cor).copysign(x)
}

/// glibc 2.36's `cos(x)` on the x86-64 FMA path, bit for bit for `|x| < 0.85546875`; elsewhere
/// [`libm::cos`].
pub fn cos(x: f64) -> f64 {
    let ax = x.abs();
    if ax < COS_TINY {
        return 1.0;
    }
    if ax >= EXACT_BELOW || ax.is_nan() {
        return libm::cos(x);
    }
    // do_cos (x, 0), fused where `__cos_fma` is.
    let dx = if x < 0.0 { -0.0 } else { 0.0 };
    let u = ax + BIG;
    let r = (ax - (u - BIG)) + dx;
    let [sn, ssn, cs, ccs] = table_row(u);
    let xx = r * r;
    let s = fma(r * xx, fma(xx, SN5, SN3), r);
    let c = xx * fma(xx, fma(xx, CS6, CS4), CS2);
    let cor = fma(-s, sn, fma(-c, cs, fma(-s, ssn, ccs)));
    cs + cor
}

/// `[sin(j/128), its correction, cos(j/128), its correction]` for the `j` that `u = |x| + BIG`
/// encodes in its low bits (glibc's `SINCOS_TABLE_LOOKUP`).
#[inline(always)]
fn table_row(u: f64) -> [f64; 4] {
    let k = 4 * (u.to_bits() as u32 as usize);
    [SINCOSTAB[k], SINCOSTAB[k + 1], SINCOSTAB[k + 2], SINCOSTAB[k + 3]].map(f64::from_bits)
}

/// glibc's `__sincostab`: for `j = 0 ..= 109`, `sin(j/128)`, a correction that it plus the first
/// is `sin(j/128)` to about 106 bits, then the same for `cos(j/128)`, as IEEE-754 bit patterns.
#[rustfmt::skip]
const SINCOSTAB: [u64; 440] = [
    0x0000000000000000, 0x0000000000000000, 0x3ff0000000000000, 0x0000000000000000, // 0/128
    0x3f7fffeaaaaeeeef, 0xbc1e45e2ec67b77c, 0x3fefffc000155552, 0x3c8f4a01a0196dae, // 1/128
    0x3f8fffaaaaeeeed5, 0xbc02ab639a9f0777, 0x3fefff000155549f, 0x3c828a28a03a5ef3, // 2/128
    0x3f97ff7001033255, 0x3bfefe2b51527336, 0x3feffdc006bff7e6, 0x3c8ae6dae86977bd, // 3/128
    0x3f9ffeaaaeeee86f, 0xbc3cd406fb224ae2, 0x3feffc00155527d3, 0xbc83b54492d89b5b, // 4/128
    0x3fa3feb2b12d45d5, 0x3c34ec54203d1c11, 0x3feff9c03414a7ba, 0x3c6991f4be6c59bf, // 5/128
    0x3fa7fdc01032fba9, 0xbc4599bdf46e997a, 0x3feff7006bfdf99f, 0xbc78b3b560648d5f, // 6/128
    0x3fabfc6d78586dac, 0x3c18e4fd03dbf236, 0x3feff3c0c8103a31, 0x3c74856dbddc0e66, // 7/128
    0x3faffaaaeeed4edb, 0xbc42d16d32684b69, 0x3feff0015549f4d3, 0x3c8328387b99426f, // 8/128
    0x3fb1fc343d808bef, 0xbc5f3d32e6f3be4f, 0x3fefebc222a8ef9f, 0x3c57934934f54c77, // 9/128
    0x3fb3facb12d1755b, 0xbc5921915299468c, 0x3fefe7034129ef6f, 0xbc6cbf4337c96f97, // 10/128
    0x3fb5f911fd10b737, 0xbc50184f02be9102, 0x3fefe1c4c3c873eb, 0xbc35a9c9057c4a02, // 11/128
    0x3fb7f701032550e4, 0x3c3afc2d1800501a, 0x3fefdc06bf7e6b9b, 0x3c831902b535f8db, // 12/128
    0x3fb9f4902d55d1f9, 0x3c52696d7eac1dc1, 0x3fefd5c94b43e000, 0xbc62e768cb4f92f9, // 13/128
    0x3fbbf1b78568391d, 0x3c5e91841dea4cc8, 0x3fefcf0c800e99b1, 0x3c6ea3d786d186ac, // 14/128
    0x3fbdee6f16c1cce6, 0xbc450f8e2fb71673, 0x3fefc7d078d1bc88, 0x3c8075d2447db685, // 15/128
    0x3fbfeaaeee86ee36, 0xbc4afcb2bcc6f03b, 0x3fefc015527d5bd3, 0x3c8b68f35094efb8, // 16/128
    0x3fc0f3378ddd71d1, 0x3c6d8468724f0f9e, 0x3fefb7db2bfe0695, 0x3c821dadf4f65ab1, // 17/128
    0x3fc1f0d3d7afceaf, 0xbc66ef95099769a5, 0x3fefaf22263c4bd3, 0xbc552ace133a2769, // 18/128
    0x3fc2ee285e4ab88f, 0xbc6e4d0f05dee058, 0x3fefa5ea641c36f2, 0x3c404da6ed17cc7c, // 19/128
    0x3fc3eb312c5d66cb, 0x3c647d666b66cb91, 0x3fef9c340a7cc428, 0x3c8c5b6b063b7462, // 20/128
    0x3fc4e7ea4dc5f27b, 0x3c5949db2ac072fc, 0x3fef91ff40374d01, 0xbc67d03f4d3a9e4c, // 21/128
    0x3fc5e44fcfa126f3, 0xbc66f443063f89b6, 0x3fef874c2e1eecf6, 0xbc8c6514e1332b16, // 22/128
    0x3fc6e05dc05a4d4c, 0xbbd32c5c8b81c940, 0x3fef7c1afeffde24, 0xbc78f55bc47540b1, // 23/128
    0x3fc7dc102fbaf2b5, 0x3c45ab50e23c97c3, 0x3fef706bdf9ece1c, 0xbc8698c80c36dcb4, // 24/128
    0x3fc8d7632efaa944, 0xbc620fa262cbb953, 0x3fef643efeb82acd, 0x3c76b00ac1fe28ac, // 25/128
    0x3fc9d252d0cec312, 0x3c59c43d80b1137d, 0x3fef57948cff6797, 0x3c6e3a0d3e03b1d5, // 26/128
    0x3fcaccdb297a0765, 0xbc59883b57d6cdeb, 0x3fef4a6cbd1e3a79, 0x3c813df0edaebb57, // 27/128
    0x3fcbc6f84edc6199, 0x3c69c1a56a7b0cab, 0x3fef3cc7c3b3d16e, 0xbc621a3ad28a3494, // 28/128
    0x3fccc0a6588289a3, 0xbc6868d09bc87c6b, 0x3fef2ea5d753ffed, 0x3c8cc4215f56d583, // 29/128
    0x3fcdb9e15fb5a5d0, 0xbc632e20d6cc6fc2, 0x3fef20073086649f, 0x3c7b940416c1984b, // 30/128
    0x3fceb2a57f8ae5a3, 0xbc60be06af572ceb, 0x3fef10ec09c5873b, 0x3c8d9072762c1283, // 31/128
    0x3fcfaaeed4f31577, 0xbc615d88508e32b8, 0x3fef01549f7deea1, 0x3c8d3c1e99e5cafd, // 32/128
    0x3fd0515cbf65155c, 0xbc79b8c29dfd8ec8, 0x3feef141300d2f26, 0xbc82aa1b08ded372, // 33/128
    0x3fd0cd00cef36436, 0xbc79fb0a0c93e2b5, 0x3feee0b1fbc0f11c, 0xbc4bfd2380bbc3b1, // 34/128
    0x3fd14861aa94ddeb, 0xbc6be881b5b615a4, 0x3feecfa744d5efa1, 0xbc556d0a4af541d0, // 35/128
    0x3fd1c37d64c6b876, 0x3c746076fe0dcff5, 0x3feebe214f76efa8, 0xbc802f9f12ba543e, // 36/128
    0x3fd23e52111aaf36, 0xbc74f080334eff18, 0x3feeac2061bbaf4f, 0x3c62c1d53e94658d, // 37/128
    0x3fd2b8ddc43eb49f, 0x3c61553899f2d807, 0x3fee99a4c3a7cd83, 0xbc82264b1bc53ce8, // 38/128
    0x3fd3331e94049f87, 0x3c7e0cb6b40c302c, 0x3fee86aebf29a9ed, 0x3c89397afdbb58a7, // 39/128
    0x3fd3ad129769d3d8, 0x3c003d5504878398, 0x3fee733ea0193d40, 0xbc86428b3546ce13, // 40/128
    0x3fd426b7e69ee697, 0xbc7f09c75705c59f, 0x3fee5f54b436e9d0, 0x3c87eb0fd02fc8bc, // 41/128
    0x3fd4a00c9b0f3d20, 0x3c7823ba6bb08ead, 0x3fee4af14b2a449c, 0xbc868ca02e8a6833, // 42/128
    0x3fd5190ecf68a77a, 0x3c7b357155eef0f3, 0x3fee3614b680d6a5, 0xbc727793aa015237, // 43/128
    0x3fd591bc9fa2f597, 0x3c67c74bac3fe0cb, 0x3fee20bf49acd6c1, 0xbc5660aec7ef636c, // 44/128
    0x3fd60a1429078775, 0x3c5b1fd80ba89133, 0x3fee0af15a03dbce, 0x3c5fe8e702771ae6, // 45/128
    0x3fd682138a38d7f7, 0xbc7d889202444aad, 0x3fedf4ab3ebd875e, 0xbc8e2d8a7e6736c4, // 46/128
    0x3fd6f9b8e33a0255, 0x3c742bc14ee9da0d, 0x3feddded50f228d6, 0xbc6e80c8d42ba2bf, // 47/128
    0x3fd7710255764214, 0xbc66ead7314bb6ce, 0x3fedc6b7eb995912, 0x3c54b364776dcd35, // 48/128
    0x3fd7e7ee03c86d4e, 0xbc7b63bcdabf5af2, 0x3fedaf0b6b888e83, 0x3c8a249e2b5e5cea, // 49/128
    0x3fd85e7a12826949, 0x3c78a40e9b5face0, 0x3fed96e82f71a9dc, 0x3c8ff61bd5d2039d, // 50/128
    0x3fd8d4a4a774992f, 0x3c744a02ea766326, 0x3fed7e4e97e17b4a, 0xbc63b770352bed94, // 51/128
    0x3fd94a6be9f546c5, 0xbc769ce13e683f58, 0x3fed653f073e4040, 0xbc876236434bec37, // 52/128
    0x3fd9bfce02e80510, 0x3c709e39a320b0a4, 0x3fed4bb9e1c619e0, 0x3c8f34bb77858f61, // 53/128
    0x3fda34c91cc50cca, 0xbc5a310e3b50cecd, 0x3fed31bf8d8d7c06, 0x3c7e60dd3089cbdd, // 54/128
    0x3fdaa95b63a09277, 0xbc66293eb13c0381, 0x3fed1750727d94f0, 0x3c80d52b1ec1a48e, // 55/128
    0x3fdb1d8305321617, 0xbc7ae242cb99f519, 0x3fecfc6cfa52ad9f, 0x3c88b5b5508f2a0d, // 56/128
    0x3fdb913e30dbac43, 0xbc7e38ad2f6c3ff1, 0x3fece115909a82e5, 0x3c81f139bb31109a, // 57/128
    0x3fdc048b17b140a3, 0x3c619fe6757e9fa7, 0x3fecc54aa2b2972e, 0x3c64ee162ba83a98, // 58/128
    0x3fdc7767ec7fd19e, 0xbc5eb14d1a3d5826, 0x3feca90c9fc67d0b, 0xbc646a81485e3462, // 59/128
    0x3fdce9d2e3d4a51f, 0xbc62fc8a12dae298, 0x3fec8c5bf8ce1a84, 0x3c7ab3d1a1590123, // 60/128
    0x3fdd5bca34047661, 0x3c728a44a75fc29c, 0x3fec6f39208be53b, 0xbc8741dbfbaadb42, // 61/128
    0x3fddcd4c15329c9a, 0x3c70d4c6e171fd9a, 0x3fec51a48b8b175e, 0xbc61bbb43b9aa880, // 62/128
    0x3fde3e56c1582a69, 0xbc50a4821099f88f, 0x3fec339eb01ddd81, 0xbc8caaf5ee82c5c0, // 63/128
    0x3fdeaee8744b05f0, 0xbc5789b43c9b027d, 0x3fec1528065b7d50, 0xbc8892111312e828, // 64/128
    0x3fdf1eff6bc4f97b, 0x3c717212f8a7525c, 0x3febf641081e7536, 0x3c8b7bd71628a9a1, // 65/128
    0x3fdf8e99e76abc97, 0x3c59d950af2d00a3, 0x3febd6ea310294f5, 0x3c731bbcc88c109d, // 66/128
    0x3fdffdb628d2f57a, 0x3c6f4a992e905b6a, 0x3febb723fe630f32, 0x3c772bd2452d0a39, // 67/128
    0x3fe0362939c69955, 0xbc82d8cd78397b01, 0x3feb96eeef58840e, 0x3c545a3cc78fade0, // 68/128
    0x3fe06d3686946e5b, 0x3c83f5ae4538ff1b, 0x3feb764b84b704c2, 0xbc8f5848c21b389b, // 69/128
    0x3fe0a4021e9e1001, 0xbc86f643a13914f6, 0x3feb553a410c104e, 0x3c58ff7947027a16, // 70/128
    0x3fe0da8b26b5672e, 0xbc8a58def0bee909, 0x3feb33bba89c8948, 0x3c8ea6a51d1f6ca9, // 71/128
    0x3fe110d0c4b69c3b, 0x3c8d918998809981, 0x3feb11d04162a4c6, 0x3c71dd561efbc0c2, // 72/128
    0x3fe146d21f8b7f82, 0x3c7bf9535e2739a8, 0x3feaef78930bd275, 0xbc7f836279746f94, // 73/128
    0x3fe17c8e5f2eedb0, 0x3c635e57102e2488, 0x3feaccb526f69de5, 0x3c88fb6a8dd6b6cc, // 74/128
    0x3fe1b204acb02fdd, 0xbc5f190c70cbb5ff, 0x3feaa98688308913, 0xbc0b83d607cd5070, // 75/128
    0x3fe1e7343236574c, 0x3c722a3fa4f41d5a, 0x3fea85ed4373e02d, 0x3c69be06385ec792, // 76/128
    0x3fe21c1c1b0394cf, 0x3c5e5b324b23aa31, 0x3fea61e9e72586af, 0x3c858330e2fd453f, // 77/128
    0x3fe250bb93788bbb, 0x3c7ea3d02457bcce, 0x3fea3d7d0352bdcf, 0xbc868dbaeca19669, // 78/128
    0x3fe28511c917a067, 0xbc801df1d9a16b70, 0x3fea18a729aee445, 0x3c395e25736c0358, // 79/128
    0x3fe2b91dea88421e, 0xbc8fa371db216ab0, 0x3fe9f368ed912f85, 0xbc81d200c5791606, // 80/128
    0x3fe2ecdf279a3082, 0x3c8d3557e0e7e37e, 0x3fe9cdc2e3f25e5c, 0x3c83f99112993f62, // 81/128
    0x3fe32054b148bc4f, 0x3c8f6b42095a135b, 0x3fe9a7b5a36a6514, 0x3c8722cfcc9fa7a9, // 82/128
    0x3fe3537db9be0367, 0x3c6b327e7af040f0, 0x3fe98141c42e1310, 0x3c8d1ff80488f08d, // 83/128
    0x3fe386597456282b, 0xbc710fada93b07a8, 0x3fe95a67e00cb1fd, 0xbc80befda21f862d, // 84/128
    0x3fe3b8e715a2840a, 0xbc797653a7d2f07b, 0x3fe93328926d9e92, 0xbc8bb77003600cda, // 85/128
    0x3fe3eb25d36cd53a, 0xbc5be570e1570fc0, 0x3fe90b84784ddaf7, 0xbc70feb10ab93b87, // 86/128
    0x3fe41d14e4ba6790, 0x3c84608fd287ecf5, 0x3fe8e37c303d9ad1, 0xbc6463a4b53d4bf8, // 87/128
    0x3fe44eb381cf386b, 0xbc83ed6c1e6a5505, 0x3fe8bb105a5dc900, 0x3c8863e03e9474c1, // 88/128
    0x3fe48000e431159f, 0xbc8b194a7463ed10, 0x3fe89241985d871f, 0x3c8c48d9c413ed84, // 89/128
    0x3fe4b0fc46aab761, 0x3c20da05738cc59a, 0x3fe869108d77a6c6, 0x3c7338ffe2bfe9dd, // 90/128
    0x3fe4e1a4e54ed51b, 0xbc8a492f89b7c76a, 0x3fe83f7dde701ca0, 0xbc4152cf609bc6e8, // 91/128
    0x3fe511f9fd7b351c, 0xbc85c0e861c48831, 0x3fe8158a31916d5d, 0xbc6de8b90b8228de, // 92/128
    0x3fe541facddbb724, 0x3c7232c28520d391, 0x3fe7eb362eaa1488, 0x3c5a1d65a4a5959f, // 93/128
    0x3fe571a6966d59b3, 0x3c5c843b4d0fb198, 0x3fe7c0827f09e54f, 0xbc6c73d6d72aee68, // 94/128
    0x3fe5a0fc98813a12, 0xbc8d82e2b7d4227b, 0x3fe7956fcd7f6543, 0xbc8ab276e9d45ae4, // 95/128
    0x3fe5cffc16bf8f0d, 0x3c896cb370eb578a, 0x3fe769fec655211f, 0xbc6827d5cf8c68c5, // 96/128
    0x3fe5fea4552a9e57, 0x3c80b6cef7ee20b7, 0x3fe73e30174efba1, 0xbc65d3ae3d94ad5f, // 97/128
    0x3fe62cf49921ac79, 0xbc8edd9855b6241a, 0x3fe712046fa77678, 0x3c8425b0a5029c81, // 98/128
    0x3fe65aec2963e755, 0x3c8126f96b71053c, 0x3fe6e57c800cf55e, 0x3c860286dedbd0a6, // 99/128
    0x3fe6888a4e134b2f, 0xbc86b7d37644d5e6, 0x3fe6b898fa9efb5d, 0x3c715ac786ccf4b2, // 100/128
    0x3fe6b5ce50b7821a, 0xbc65d5158f702e0f, 0x3fe68b5a92eb6253, 0xbc89a91ad985f89c, // 101/128
    0x3fe6e2b77c40bde1, 0xbc70e729857fad53, 0x3fe65dc1fdeb8cba, 0xbc597c1b47337c77, // 102/128
    0x3fe70f451d0a8c40, 0x3c697ede3885770d, 0x3fe62fcff20191c7, 0x3c6d9143895756ef, // 103/128
    0x3fe73b7680dea578, 0xbc72248306dc12a2, 0x3fe6018526f563df, 0x3c846ca5e0e432d0, // 104/128
    0x3fe7674af6f7b524, 0x3c7e9d3f94ac84a8, 0x3fe5d2e255f1f17a, 0x3c80314104c8892b, // 105/128
    0x3fe792c1d0041d52, 0xbc8abf05eeb354eb, 0x3fe5a3e839824077, 0x3c8428aa2759be62, // 106/128
    0x3fe7bdda5e28b3c2, 0x3c4ad1197ccd0393, 0x3fe574978d8e83f2, 0x3c8f4714af282d23, // 107/128
    0x3fe7e893f5037959, 0x3c80eefbaa650c4c, 0x3fe544f10f592ca5, 0xbc8e7ae8e6c7a62f, // 108/128
    0x3fe812ede9ae4ba4, 0xbc87830adf402dda, 0x3fe514f57d7bf3da, 0x3c747a108073c259, // 109/128
];

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgym_abi::rng::Rng;

    /// Uniform in `(-1, 1)`: a random multiple of 2^-53 below 1, with a random sign.
    fn symmetric(rng: &mut Rng) -> f64 {
        let v = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        if rng.next_u64() & 1 == 0 { v } else { -v }
    }

    /// `x` and its `n` neighbours on each side, by bit pattern, with both signs.
    fn around(x: f64, n: u64) -> impl Iterator<Item = f64> {
        let b = x.abs().to_bits();
        (b.saturating_sub(n)..=b + n).flat_map(|b| [f64::from_bits(b), -f64::from_bits(b)])
    }

    /// Where glibc's code changes branch or table row, and what lies next to it: zeros,
    /// subnormals, `2^-27`, `2^-26`, `0.126`, every `j/128` and `(j + 1/2)/128` (the table rows and
    /// the boundaries between them) and `0.85546875`.
    fn boundaries() -> Vec<f64> {
        let mut v = vec![0.0, -0.0, f64::MIN_POSITIVE, 5e-324, -5e-324, 1e-300, 1e-10, 1e-8];
        v.extend(around(f64::from_bits(0x000f_ffff_ffff_ffff), 2));
        for x in [COS_TINY, SIN_TINY, TAYLOR_BELOW, EXACT_BELOW, THETA_LIMIT] {
            v.extend(around(x, 64));
        }
        for j in 1..=220 {
            v.extend(around(j as f64 / 256.0, 8));
        }
        v
    }

    /// The angles the tests compare: [`boundaries`], then `n` each of uniform in
    /// `[-THETA_LIMIT, THETA_LIMIT]`, log-uniform magnitudes in `[2^-30, THETA_LIMIT]` (random bit
    /// patterns) and uniform in `(-EXACT_BELOW, EXACT_BELOW)`.
    fn angles(n: usize) -> impl Iterator<Item = f64> {
        let mut rng = Rng::seed_from_u64(0x5eed_cafe);
        let (lo, hi) = ((2.0f64).powi(-30).to_bits(), THETA_LIMIT.to_bits());
        boundaries().into_iter().chain((0..3 * n).map(move |i| match i % 3 {
            0 => symmetric(&mut rng) * THETA_LIMIT,
            1 => f64::from_bits(lo + rng.next_u64() % (hi - lo)).copysign(symmetric(&mut rng)),
            _ => symmetric(&mut rng) * EXACT_BELOW,
        }))
    }

    /// A margin over CartPole's angles: an episode ends once `|theta|` exceeds 0.2094.
    const THETA_LIMIT: f64 = 0.25;

    #[test]
    fn outside_the_reproduced_range_is_libms() {
        let mut rng = Rng::seed_from_u64(1);
        let mut xs = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, 1.0, -2.5, 1e10, 3.0];
        xs.extend(around(EXACT_BELOW, 0).chain(around(EXACT_BELOW, 0).map(|x| x * 1.0001)));
        xs.extend((0..1000).map(|_| symmetric(&mut rng) * 100.0).filter(|x| x.abs() >= EXACT_BELOW));
        for x in xs {
            assert_eq!(sin(x).to_bits(), libm::sin(x).to_bits(), "sin {x:e}");
            assert_eq!(cos(x).to_bits(), libm::cos(x).to_bits(), "cos {x:e}");
        }
    }

    #[test]
    fn tiny_angles() {
        for x in [0.0, -0.0, 5e-324, -5e-324, f64::MIN_POSITIVE, 1e-300, -1e-20, 1.4e-8, -1.4e-8] {
            assert_eq!(sin(x).to_bits(), x.to_bits(), "{x:e}");
        }
        for x in [0.0, -0.0, 5e-324, 1e-300, -7e-9, 7e-9] {
            assert_eq!(cos(x).to_bits(), 1.0f64.to_bits(), "{x:e}");
        }
        // Near 2^-26 and 2^-27 the polynomial takes over, and still rounds to the obvious value.
        assert_eq!(sin(SIN_TINY), SIN_TINY);
        assert_eq!(cos(COS_TINY), 1.0);
        assert_eq!(cos(1e-6), 1.0 - 5e-13);
    }

    /// The angles of the test fixture (all CartPole states Gymnasium visited), for the comparisons.
    fn fixture_angles() -> Vec<f64> {
        let fixture = include_str!("../../../tests/fixtures/cart_pole.jsonl");
        let mut thetas = Vec::new();
        for line in fixture.lines() {
            let ep: serde_json::Value = serde_json::from_str(line).unwrap();
            let theta = |state: &serde_json::Value| {
                f64::from_bits(u64::from_str_radix(state[2].as_str().unwrap(), 16).unwrap())
            };
            thetas.push(theta(&ep["initial_state_bits"]));
            thetas.extend(ep["state_bits"].as_array().unwrap().iter().map(theta));
        }
        assert!(thetas.len() > 3000, "{} angles", thetas.len());
        thetas
    }

    /// Compares with the C library's `sin` and `cos` when they are glibc 2.36's FMA path: glibc
    /// 2.36 takes it when the CPU has FMA and AVX2. The number of random angles of each kind is
    /// `CART_POLE_TRIG_SAMPLES` (default 2 000 000, 200 000 in a debug build).
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn sin_and_cos_are_glibcs_bit_for_bit() {
        unsafe extern "C" {
            #[link_name = "sin"]
            safe fn c_sin(x: f64) -> f64;
            #[link_name = "cos"]
            safe fn c_cos(x: f64) -> f64;
            fn gnu_get_libc_version() -> *const std::ffi::c_char;
        }
        // SAFETY: glibc returns a static NUL-terminated string.
        let glibc = unsafe { std::ffi::CStr::from_ptr(gnu_get_libc_version()) }.to_string_lossy();
        if glibc != "2.36" {
            eprintln!("glibc {glibc}, not 2.36: skipping the comparison with it");
            return;
        }
        if !(std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2")) {
            eprintln!("no FMA and AVX2: glibc takes another path, skipping the comparison with it");
            return;
        }
        let default = if cfg!(debug_assertions) { 200_000 } else { 2_000_000 };
        let n = std::env::var("CART_POLE_TRIG_SAMPLES").map_or(default, |v| v.parse().unwrap());
        let start = std::time::Instant::now();
        let (mut compared, mut mismatches, mut wrong) = (0u64, 0u64, Vec::new());
        // Above `EXACT_BELOW` the functions are `libm`'s (tested above).
        for x in fixture_angles().into_iter().chain(angles(n)).filter(|x| x.abs() < EXACT_BELOW) {
            let x = std::hint::black_box(x);
            for (name, ours, glibc) in [("sin", sin(x), c_sin(x)), ("cos", cos(x), c_cos(x))] {
                compared += 1;
                if ours.to_bits() != glibc.to_bits() {
                    mismatches += 1;
                    if wrong.len() < 20 {
                        wrong.push(format!("{name}({x:e} = {:#018x}) = {ours:e}, glibc {glibc:e}", x.to_bits()));
                    }
                }
            }
        }
        eprintln!("compared {compared} values with glibc in {:?}", start.elapsed());
        assert!(mismatches == 0, "{mismatches} mismatches of {compared}:\n{}", wrong.join("\n"));
    }
}
