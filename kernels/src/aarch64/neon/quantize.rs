//! Activation levels on NEON: `FCVTNS` converts to the nearest integer with ties to even in one
//! instruction, where the portable loop adds and subtracts 1.5·2²³; on values clamped to ±512
//! both give the same integers, so every tier stays bit-exact. NaN converts to 0, as the
//! contract wants (NEON's `fmin`/`fmax` carry the NaN through the clamp).

use crate::cpu::Neon;
use std::arch::aarch64::*;

/// `out[i] = clamp(round_half_even(clamp(x[i]·inv, −512, 512)) + zero, lo, hi)` (see
/// `KernelSet::levels_i8`); the caller has checked lengths and that `lo..=hi` lies in `i8`.
pub fn levels_i8(_cpu: Neon, x: &[f32], inv: f32, zero: i32, lo: i32, hi: i32, out: &mut [i8]) {
    crate::tier::hit(crate::Tier::Neon);
    let n = x.len().min(out.len());
    let (xs, x_tail) = x[..n].as_chunks::<16>();
    let (os, o_tail) = out[..n].as_chunks_mut::<16>();
    for (xc, oc) in xs.iter().zip(os.iter_mut()) {
        // SAFETY: NEON is part of the aarch64 baseline (the token says so too); every pointer
        // comes from a 16-element array of the right type.
        unsafe {
            let (vinv, vmax) = (vdupq_n_f32(inv), vdupq_n_f32(512.0));
            let vmin = vdupq_n_f32(-512.0);
            let (vz, vlo, vhi) = (vdupq_n_s32(zero), vdupq_n_s32(lo), vdupq_n_s32(hi));
            let level = |i: usize| {
                let y = vmulq_f32(vld1q_f32(xc.as_ptr().add(4 * i)), vinv);
                let y = vmaxq_f32(vminq_f32(y, vmax), vmin);
                let q = vaddq_s32(vcvtnq_s32_f32(y), vz);
                vminq_s32(vmaxq_s32(q, vlo), vhi)
            };
            let a = vmovn_high_s32(vmovn_s32(level(0)), level(1));
            let b = vmovn_high_s32(vmovn_s32(level(2)), level(3));
            vst1q_s8(oc.as_mut_ptr(), vmovn_high_s16(vmovn_s16(a), b));
        }
    }
    crate::generic::quantize::levels_i8(x_tail, inv, zero, lo, hi, o_tail);
}
