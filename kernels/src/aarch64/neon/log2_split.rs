//! The log-domain level split (`crate::log2`) on NEON, 16 probabilities per step, with table
//! lookups where the generic loop compares against every threshold.
//!
//! The generic loop (vectorised by LLVM) spends `3·M` instructions per four probabilities on
//! the threshold count and the power it selects: 48 for the 16 levels per octave of 8-bit
//! attention, about 26 instructions per probability under qemu. Here the top five mantissa
//! bits pick one of 32 buckets; a bucket is narrower than the gap between two thresholds
//! (1/32 < 2^(1/32)·(2^(1/16) − 1)), so it holds at most one, and `r` is the bucket's count
//! below it plus one compare. Bucket entries (`count << 24 | threshold`) and the powers are
//! byte tables for `TBL`; the rounding shift is one `URSHL`; the ragged tail takes the generic
//! loop. Every value matches the scalar reference (tests/log2_split.rs, under qemu).

use crate::cpu::Neon;
use crate::log2::{Tables, level_value};
use std::arch::aarch64::*;

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
    // SAFETY: NEON is part of the aarch64 baseline (the token says so too).
    unsafe {
        match m {
            1 => split::<1>(p, inv, max, hi, lo),
            2 => split::<2>(p, inv, max, hi, lo),
            4 => split::<4>(p, inv, max, hi, lo),
            8 => split::<8>(p, inv, max, hi, lo),
            _ => split::<16>(p, inv, max, hi, lo),
        }
    }
}

/// Four table registers holding the 64 bytes of `words[16·half ..]` (little-endian words).
#[target_feature(enable = "neon")]
fn table(words: &[u32], half: usize) -> uint8x16x4_t {
    let w = &words[16 * half..16 * half + 16];
    // SAFETY: each load reads 4 words at offset 4·i < 16 of the 16-word slice `w`.
    unsafe {
        let q = |i: usize| vreinterpretq_u8_u32(vld1q_u32(w.as_ptr().add(4 * i)));
        uint8x16x4_t(q(0), q(1), q(2), q(3))
    }
}

/// Byte indices that gather word `index` of a table into each 32-bit lane (`index < 32`).
#[target_feature(enable = "neon")]
#[inline]
fn word_bytes(index: uint32x4_t) -> uint8x16_t {
    vreinterpretq_u8_u32(vmlaq_u32(
        vdupq_n_u32(0x0302_0100),
        index,
        vdupq_n_u32(0x0404_0404),
    ))
}

#[target_feature(enable = "neon")]
fn split<const M: usize>(p: &[f32], inv: f32, max: i32, hi: &mut [i8], lo: &mut [i8]) {
    let n = p.len().min(hi.len()).min(lo.len());
    let (ps, p_tail) = p[..n].as_chunks::<16>();
    let (hs, h_tail) = hi[..n].as_chunks_mut::<16>();
    let (ls, l_tail) = lo[..n].as_chunks_mut::<16>();
    let shift_m = M.trailing_zeros() as i32;
    let (at_zero, at_max) = (level_value(0, M as u32), level_value(max as u32, M as u32));
    let (b0, b1) = (
        table(&Tables::<M>::BUCKETS, 0),
        table(&Tables::<M>::BUCKETS, 1),
    );
    let pw = table(&Tables::<M>::POWERS, 0);
    let value = |x: float32x4_t| {
        let bits = vreinterpretq_u32_f32(vmulq_f32(x, vdupq_n_f32(inv)));
        // Zero, subnormal, negative and NaN: bits outside [2^-126, +∞] (+∞ gives level 0).
        let invalid = vcgtq_u32(
            vsubq_u32(bits, vdupq_n_u32(0x0080_0000)),
            vdupq_n_u32(0x7f80_0000 - 0x0080_0000),
        );
        let e = vsubq_s32(
            vreinterpretq_s32_u32(vshrq_n_u32::<23>(bits)),
            vdupq_n_s32(127),
        );
        let mantissa = vandq_u32(bits, vdupq_n_u32(0x7f_ffff));
        let at = word_bytes(vshrq_n_u32::<18>(mantissa));
        let entry = vorrq_u8(
            vqtbl4q_u8(b0, at),
            // Indices below 64 wrap past 191 and read 0 from the second half.
            vqtbl4q_u8(b1, vsubq_u8(at, vdupq_n_u8(64))),
        );
        let entry = vreinterpretq_u32_u8(entry);
        let reached = vcgeq_u32(mantissa, vandq_u32(entry, vdupq_n_u32(0xff_ffff)));
        // r = count below + reached (the mask is −1 when reached).
        let r = vsubq_s32(
            vreinterpretq_s32_u32(vshrq_n_u32::<24>(entry)),
            vreinterpretq_s32_u32(reached),
        );
        // q = −M·e − r; the step inside the octave is (−r) mod M.
        let q = vnegq_s32(vaddq_s32(vshlq_s32(e, vdupq_n_s32(shift_m)), r));
        let step = vandq_u32(
            vreinterpretq_u32_s32(vnegq_s32(r)),
            vdupq_n_u32(M as u32 - 1),
        );
        let power = vreinterpretq_u32_u8(vqtbl4q_u8(pw, word_bytes(step)));
        let clamped = vminq_s32(vmaxq_s32(q, vdupq_n_s32(0)), vdupq_n_s32(max));
        let octave = vshlq_s32(clamped, vdupq_n_s32(-shift_m));
        // URSHL by −(15 + octave) is round_half_up(power / 2^(15+octave)).
        let inside = vrshlq_u32(power, vsubq_s32(vdupq_n_s32(-15), octave));
        let to_max = vorrq_u32(invalid, vcgeq_s32(q, vdupq_n_s32(max)));
        let v = vbslq_u32(vclezq_s32(q), vdupq_n_u32(at_zero as u32), inside);
        vbslq_u32(to_max, vdupq_n_u32(at_max as u32), v)
    };
    for ((pc, hc), lc) in ps.iter().zip(hs.iter_mut()).zip(ls.iter_mut()) {
        // SAFETY: every pointer comes from a 16-element array of the right type.
        unsafe {
            let x = |i: usize| vld1q_f32(pc.as_ptr().add(4 * i));
            // Values are at most 2^15, so 16 bits hold them.
            let a = vmovn_high_u32(vmovn_u32(value(x(0))), value(x(1)));
            let b = vmovn_high_u32(vmovn_u32(value(x(2))), value(x(3)));
            let h = vshrn_high_n_u16::<8>(vshrn_n_u16::<8>(a), b);
            let l = vmovn_high_u16(vmovn_u16(a), b);
            let h = vreinterpretq_s8_u8(vsubq_u8(h, vdupq_n_u8(64)));
            let l = vreinterpretq_s8_u8(veorq_u8(l, vdupq_n_u8(0x80)));
            vst1q_s8(hc.as_mut_ptr(), h);
            vst1q_s8(lc.as_mut_ptr(), l);
        }
    }
    crate::generic::log2::log2_split::<M>(p_tail, inv, max, h_tail, l_tail);
}
