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

/// Zero points up to this magnitude take the packing path (`zero` is added in i16).
const PACKED_ZERO: i32 = 256;

/// 32 values per step: the float clamp of the contract, `vcvtps2dq` (ties to even under the
/// default rounding mode, like the portable add of 1.5·2²³ on values within ±512), then
/// saturating packs to i16, the zero point as a saturating i16 add, a saturating pack to i8 and
/// byte clamps. The packs cannot saturate a value the final clamp keeps: |c + zero| ≤ 768 for
/// |zero| ≤ 256. Other zero points take the portable loop, which LLVM vectorised 8 lanes wide
/// with 32-bit clamps.
#[target_feature(enable = "avx2")]
fn levels_i8_avx2(x: &[f32], inv: f32, zero: i32, lo: i32, hi: i32, out: &mut [i8]) {
    use std::arch::x86_64::*;
    let n = x.len().min(out.len());
    if !(-PACKED_ZERO..=PACKED_ZERO).contains(&zero) {
        return crate::generic::quantize::levels_i8(&x[..n], inv, zero, lo, hi, &mut out[..n]);
    }
    let (xs, x_tail) = x[..n].as_chunks::<32>();
    let (os, o_tail) = out[..n].as_chunks_mut::<32>();
    let (vinv, vmax, vmin) = (
        _mm256_set1_ps(inv),
        _mm256_set1_ps(512.0),
        _mm256_set1_ps(-512.0),
    );
    let (vz, vlo, vhi) = (
        _mm256_set1_epi16(zero as i16),
        _mm256_set1_epi8(lo as i8),
        _mm256_set1_epi8(hi as i8),
    );
    // The two in-lane packs leave dwords in the order 0 2 4 6 1 3 5 7 of the result.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (xc, oc) in xs.iter().zip(os.iter_mut()) {
        let q = |i: usize| {
            let v: [f32; 8] = xc[8 * i..8 * i + 8].try_into().unwrap();
            // SAFETY: `[f32; 8]` and `__m256` have the same size; any bits are valid.
            let y = _mm256_mul_ps(unsafe { std::mem::transmute::<[f32; 8], __m256>(v) }, vinv);
            // NaN → 0, then the contract's clamp (max/min return their second operand on NaN,
            // so the NaN lanes are cleared first).
            let y = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(y, y), y);
            _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(y, vmin), vmax))
        };
        let a = _mm256_adds_epi16(_mm256_packs_epi32(q(0), q(1)), vz);
        let b = _mm256_adds_epi16(_mm256_packs_epi32(q(2), q(3)), vz);
        let r = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b), order);
        let r = _mm256_min_epi8(_mm256_max_epi8(r, vlo), vhi);
        // SAFETY: `__m256i` and `[i8; 32]` have the same size; any bits are valid.
        *oc = unsafe { std::mem::transmute::<__m256i, [i8; 32]>(r) };
    }
    crate::generic::quantize::levels_i8(x_tail, inv, zero, lo, hi, o_tail)
}
