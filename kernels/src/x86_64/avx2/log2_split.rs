//! The log-domain level split (`crate::log2`) compiled with AVX2: 8-lane compares, blends and
//! variable shifts (`vpsrlvd`).

use crate::cpu::Avx2Fma;

/// Split bytes of `p·inv`; the caller has checked lengths, `m` and `max`.
pub fn log2_split_i8(
    _cpu: Avx2Fma,
    p: &[f32],
    inv: f32,
    m: u32,
    max: i32,
    hi: &mut [i8],
    lo: &mut [i8],
) {
    crate::tier::hit(crate::Tier::Avx2);
    // SAFETY: the `Avx2Fma` token exists only if AVX2 was detected on this CPU.
    unsafe { split_avx2(p, inv, m, max, hi, lo) }
}

#[target_feature(enable = "avx2")]
fn split_avx2(p: &[f32], inv: f32, m: u32, max: i32, hi: &mut [i8], lo: &mut [i8]) {
    crate::generic::log2::log2_split_any(p, inv, m, max, hi, lo)
}
