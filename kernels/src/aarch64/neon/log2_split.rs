//! The log-domain level split (`crate::log2`) for NEON: the generic branch-free loop, which
//! LLVM vectorises to 4-lane compares, `bsl` blends and `ushl` shifts (NEON is baseline).

use crate::cpu::Neon;

/// Split bytes of `p·inv`; the caller has checked lengths, `m` and `max`.
pub fn log2_split_i8(
    _cpu: Neon,
    p: &[f32],
    inv: f32,
    m: u32,
    max: i32,
    hi: &mut [i8],
    lo: &mut [i8],
) {
    crate::tier::hit(crate::Tier::Neon);
    crate::generic::log2::log2_split_any(p, inv, m, max, hi, lo)
}
