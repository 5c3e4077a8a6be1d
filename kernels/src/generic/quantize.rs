//! Activation quantization to integer levels, written once and compiled per tier. Plain IEEE
//! arithmetic with no libm call, so every compilation gives the same integers.

/// 1.5·2²³: adding and subtracting it rounds any |v| ≤ 2²² to an integer, ties to even.
const MAGIC: f32 = 12_582_912.0;

/// `out[i] = clamp(round_half_even(clamp(x[i]·inv, −512, 512)) + zero, lo, hi)`, NaN → `zero`
/// clamped; `lo, hi` within `i8`. Lengths are checked by the caller.
#[inline(always)]
pub(crate) fn levels_i8(x: &[f32], inv: f32, zero: i32, lo: i32, hi: i32, out: &mut [i8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        let y = v * inv;
        let y = if y.is_nan() { 0.0 } else { y };
        let c = y.clamp(-512.0, 512.0);
        // After the add, the integer sits in the low mantissa bits: reading it from the bits
        // keeps the loop in vector integer ops (no saturating float-to-int conversion).
        // Wrapping ops (the values are far from overflow) keep debug builds vectorised too.
        let r = ((c + MAGIC).to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
        *o = r.wrapping_add(zero).clamp(lo, hi) as i8;
    }
}

/// `out = acc as f32 · scales[j] + bias[j]` row by row (lengths checked by the caller): the one
/// loop every build of the dequantizing epilogue (the `gemm::epilogue` module) compiles.
#[inline(always)]
pub(crate) fn dequantize_rows(
    acc: &[i32],
    n: usize,
    scales: &[f32],
    bias: &[f32],
    out: &mut [f32],
) {
    for (arow, orow) in acc.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        for ((o, &a), (&s, &b)) in orow.iter_mut().zip(arow).zip(scales.iter().zip(bias)) {
            *o = a as f32 * s + b;
        }
    }
}
