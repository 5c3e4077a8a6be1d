//! The log-domain level split of `crate::log2`, branch-free so it vectorises: the threshold
//! count and the power it selects are `M` compares and blends per element (no table lookups),
//! the fixed-point value is a per-lane variable shift. Written once, compiled per tier.

use crate::log2::{MANTISSA_THRESHOLDS, NEG_POW_Q30, level_value};

/// The split bytes of `p·inv` for `M` levels per octave (lengths checked by the caller,
/// `max ≤ min(255, 16·M − 1)`).
#[inline(always)]
pub(crate) fn log2_split<const M: usize>(
    p: &[f32],
    inv: f32,
    max: i32,
    hi: &mut [i8],
    lo: &mut [i8],
) {
    let thresholds: [u32; M] = std::array::from_fn(|j| MANTISSA_THRESHOLDS[(2 * j + 1) * (16 / M)]);
    // Reaching threshold j means r = j + 1 thresholds, so the step inside the octave is
    // (−r) mod M and the power 2^30·2^(−step/M).
    let powers: [u32; M] = std::array::from_fn(|j| NEG_POW_Q30[((M - j - 1) % M) * (32 / M)]);
    let shift_m = M.trailing_zeros();
    let at_zero = level_value(0, M as u32);
    let at_max = level_value(max as u32, M as u32);
    for ((&x, h), l) in p.iter().zip(hi.iter_mut()).zip(lo.iter_mut()) {
        let bits = (x * inv).to_bits();
        let invalid = bits.wrapping_sub(0x0080_0000) > 0x7f80_0000 - 0x0080_0000;
        let e = (bits >> 23) as i32 - 127;
        let mantissa = bits & 0x7f_ffff;
        let mut r = 0i32;
        let mut power = NEG_POW_Q30[0];
        for j in 0..M {
            let reached = mantissa >= thresholds[j];
            r += reached as i32;
            power = if reached { powers[j] } else { power };
        }
        let q = -(M as i32) * e - r;
        // Inside (0, max) the octave is at most 15, so both shifts stay below 32.
        let octave = (q.clamp(0, max) >> shift_m) as u32;
        let inside = (power + (1 << (14 + octave))) >> (15 + octave);
        let v = if invalid || q >= max {
            at_max
        } else if q <= 0 {
            at_zero
        } else {
            inside as i32
        };
        *h = ((v >> 8) - 64) as i8;
        *l = ((v & 255) - 128) as i8;
    }
}

/// [`log2_split`] for a run-time `m` (1, 2, 4, 8 or 16; checked by the caller). The x86 tiers
/// compile it under their features; NEON has its own table loop.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn log2_split_any(p: &[f32], inv: f32, m: u32, max: i32, hi: &mut [i8], lo: &mut [i8]) {
    match m {
        1 => log2_split::<1>(p, inv, max, hi, lo),
        2 => log2_split::<2>(p, inv, max, hi, lo),
        4 => log2_split::<4>(p, inv, max, hi, lo),
        8 => log2_split::<8>(p, inv, max, hi, lo),
        _ => log2_split::<16>(p, inv, max, hi, lo),
    }
}
