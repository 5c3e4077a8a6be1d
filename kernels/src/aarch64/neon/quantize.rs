//! Activation levels on NEON: `FCVTNS` converts to the nearest integer with ties to even in one
//! instruction, where the portable loop adds and subtracts 1.5·2²³, and saturating narrows
//! (`SQXTN`, `SQADD`) stand in for the float clamp to ±512 and the 32-bit add and clamps: 26
//! instructions per 16 values instead of 46. Both give the integers of the portable loop (and
//! NaN converts to 0 as it wants), whenever the zero point lies in ±256 (see [`levels_i8`]);
//! other zero points take the portable loop.

use crate::cpu::Neon;
use std::arch::aarch64::*;

/// Zero points up to this magnitude take the saturating path.
const SATURATING_ZERO: i32 = 256;

/// `out[i] = clamp(round_half_even(clamp(x[i]·inv, −512, 512)) + zero, lo, hi)` (see
/// `KernelSet::levels_i8`); the caller has checked lengths and that `lo..=hi` lies in `i8`.
///
/// Why saturating instead of clamping gives the same bytes for |zero| ≤ 256: with `c` the
/// rounded value, |c| ≤ 512 takes no saturation at all (|c + zero| ≤ 768 fits i16), and the
/// i8 narrow only moves values that the final clamp to `[lo, hi]` ⊂ i8 moves as well. Past
/// ±512 both sides end at a bound: the clamped form gives `clamp(±512 + zero)`, which is `hi`
/// (`lo`) because 512 − 256 exceeds every i8, and the saturating form only goes further out.
pub fn levels_i8(_cpu: Neon, x: &[f32], inv: f32, zero: i32, lo: i32, hi: i32, out: &mut [i8]) {
    crate::tier::hit(crate::Tier::Neon);
    let n = x.len().min(out.len());
    if !(-SATURATING_ZERO..=SATURATING_ZERO).contains(&zero) {
        return crate::generic::quantize::levels_i8(&x[..n], inv, zero, lo, hi, &mut out[..n]);
    }
    let (xs, x_tail) = x[..n].as_chunks::<16>();
    let (os, o_tail) = out[..n].as_chunks_mut::<16>();
    // SAFETY: NEON is part of the aarch64 baseline (the token says so too).
    let (vinv, vz, vlo, vhi) = unsafe {
        (
            vdupq_n_f32(inv),
            vdupq_n_s16(zero as i16),
            vdupq_n_s8(lo as i8),
            vdupq_n_s8(hi as i8),
        )
    };
    for (xc, oc) in xs.iter().zip(os.iter_mut()) {
        // SAFETY: as above; every pointer comes from a 16-element array of the right type.
        unsafe {
            let q = |i: usize| vcvtnq_s32_f32(vmulq_f32(vld1q_f32(xc.as_ptr().add(4 * i)), vinv));
            let a = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(q(0)), q(1)), vz);
            let b = vqaddq_s16(vqmovn_high_s32(vqmovn_s32(q(2)), q(3)), vz);
            let r = vqmovn_high_s16(vqmovn_s16(a), b);
            vst1q_s8(oc.as_mut_ptr(), vminq_s8(vmaxq_s8(r, vlo), vhi));
        }
    }
    crate::generic::quantize::levels_i8(x_tail, inv, zero, lo, hi, o_tail);
}
