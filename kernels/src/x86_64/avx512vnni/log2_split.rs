//! The log-domain level split (`crate::log2`) compiled for AVX-512: 16 lanes, compares into
//! mask registers.

use crate::cpu::Avx512Vnni;

/// Split bytes of `p·inv`; the caller has checked lengths, `m` and `max`.
pub fn log2_split_i8(
    _cpu: Avx512Vnni,
    p: &[f32],
    inv: f32,
    m: u32,
    max: i32,
    hi: &mut [i8],
    lo: &mut [i8],
) {
    crate::tier::hit(crate::Tier::Avx512Vnni);
    // SAFETY: the `Avx512Vnni` token exists only if AVX-512 F/BW (and AVX2) were detected.
    unsafe { split_avx512(p, inv, m, max, hi, lo) }
}

#[target_feature(enable = "avx2,avx512f,avx512bw")]
fn split_avx512(p: &[f32], inv: f32, m: u32, max: i32, hi: &mut [i8], lo: &mut [i8]) {
    crate::generic::log2::log2_split_any(p, inv, m, max, hi, lo)
}
