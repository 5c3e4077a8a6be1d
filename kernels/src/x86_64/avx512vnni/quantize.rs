//! The shared portable quantization loops compiled for AVX-512 (16 lanes): activation levels
//! (`KernelSet::levels_i8`, whose i32 → i8 narrowing becomes one `vpmovdb` instead of the
//! AVX2 shuffle sequence) and the dequantizing epilogue (`KernelSet::dequantize_rows`). Same IEEE
//! operations as every other build, so the same results bit for bit.

use crate::cpu::Avx512Vnni;

/// Activation levels; the caller has checked lengths.
pub fn levels_i8(
    _cpu: Avx512Vnni,
    x: &[f32],
    inv: f32,
    zero: i32,
    lo: i32,
    hi: i32,
    out: &mut [i8],
) {
    crate::tier::hit(crate::Tier::Avx512Vnni);
    // SAFETY: the `Avx512Vnni` token exists only if AVX-512 F/BW (and AVX2) were detected.
    unsafe { levels_i8_avx512(x, inv, zero, lo, hi, out) }
}

#[target_feature(enable = "avx2,avx512f,avx512bw")]
fn levels_i8_avx512(x: &[f32], inv: f32, zero: i32, lo: i32, hi: i32, out: &mut [i8]) {
    crate::generic::quantize::levels_i8(x, inv, zero, lo, hi, out)
}

/// Dequantizing epilogue rows; the caller has checked lengths (see
/// `KernelSet::dequantize_rows`).
pub(crate) fn dequantize_rows(
    _cpu: Avx512Vnni,
    acc: &[i32],
    n: usize,
    scales: &[f32],
    bias: &[f32],
    out: &mut [f32],
) {
    crate::tier::hit(crate::Tier::Avx512Vnni);
    // SAFETY: the `Avx512Vnni` token exists only if AVX-512 F/BW (and AVX2) were detected.
    unsafe { dequantize_rows_avx512(acc, n, scales, bias, out) }
}

#[target_feature(enable = "avx2,avx512f,avx512bw")]
fn dequantize_rows_avx512(acc: &[i32], n: usize, scales: &[f32], bias: &[f32], out: &mut [f32]) {
    crate::generic::quantize::dequantize_rows(acc, n, scales, bias, out)
}
