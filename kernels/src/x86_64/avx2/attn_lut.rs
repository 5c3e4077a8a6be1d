//! The table-driven attention product (the `attn` module) and activation quantization compiled with
//! AVX2: 8-lane `vpmulld`/`vpaddd` (baseline x86-64 has no 32-bit lane multiply) and 8-lane
//! rounding and clamping.

use crate::cpu::Avx2Fma;
use crate::generic::attn as g;

/// Rows of `out = lut[levels] · b`; the caller has checked lengths and levels.
pub fn matmul_lut_rows(
    _cpu: Avx2Fma,
    levels: &[u8],
    k: usize,
    lut: &[i32],
    b: &[i8],
    n: usize,
    out: &mut [i32],
) {
    crate::tier::hit(crate::Tier::Avx2);
    // SAFETY: the `Avx2Fma` token exists only if AVX2 was detected on this CPU.
    unsafe { matmul_lut_rows_avx2(levels, k, lut, b, n, out) }
}

#[target_feature(enable = "avx2")]
fn matmul_lut_rows_avx2(levels: &[u8], k: usize, lut: &[i32], b: &[i8], n: usize, out: &mut [i32]) {
    g::matmul_lut_rows(levels, k, lut, b, n, out)
}

/// Activation levels (`KernelSet::levels_i8`); the caller has checked lengths.
pub fn levels_i8(_cpu: Avx2Fma, x: &[f32], inv: f32, zero: i32, lo: i32, hi: i32, out: &mut [i8]) {
    crate::tier::hit(crate::Tier::Avx2);
    // SAFETY: the `Avx2Fma` token exists only if AVX2 was detected on this CPU.
    unsafe { levels_i8_avx2(x, inv, zero, lo, hi, out) }
}

#[target_feature(enable = "avx2")]
fn levels_i8_avx2(x: &[f32], inv: f32, zero: i32, lo: i32, hi: i32, out: &mut [i8]) {
    crate::generic::quantize::levels_i8(x, inv, zero, lo, hi, out)
}
