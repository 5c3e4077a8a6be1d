//! The table-driven attention product (`crate::attn`) compiled with AVX2: the inner
//! multiply-add becomes 8-lane `vpmulld`/`vpaddd` (baseline x86-64 has no 32-bit lane multiply).

use super::Avx2Fma;
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
    // SAFETY: the `Avx2Fma` token exists only if AVX2 was detected on this CPU.
    unsafe { matmul_lut_rows_avx2(levels, k, lut, b, n, out) }
}

#[target_feature(enable = "avx2")]
fn matmul_lut_rows_avx2(levels: &[u8], k: usize, lut: &[i32], b: &[i8], n: usize, out: &mut [i32]) {
    g::matmul_lut_rows(levels, k, lut, b, n, out)
}
