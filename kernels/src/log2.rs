//! Log-domain levels of probabilities, split into two signed bytes for the int8 GEMM.
//!
//! # Contract (`log2_split_i8`)
//!
//! For every probability `p` with `y = p·inv` (one f32 multiply):
//!
//! * level `q = clamp(round(−m·log2 y), 0, max)`, with `m` levels per octave (1, 2, 4, 8 or 16),
//!   computed exactly from the bits of `y` against the mantissa thresholds `2^((j+½)/m)` (which
//!   are irrational, so there are no ties); `y` zero, subnormal, negative or NaN gives `max`;
//! * its fixed-point value `P(q) = round_half_up(2^15·2^(−q/m))` from the 2³⁰-scaled powers
//!   [`NEG_POW_Q30`] (exact integer arithmetic);
//! * `hi = (P >> 8) − 64` and `lo = (P & 255) − 128`, both in `i8` because `P ≤ 2^15`, so that
//!   `Σ P·v = 256·Σ (hi + 64)·v + Σ (lo + 128)·v` runs as two int8 products.
//!
//! `max` must be at most `min(255, 16·m − 1)`. Every tier computes the same bytes.

use crate::{Error, Result};

/// `⌈(2^(i/32) − 1)·2²³⌉`: the f32 mantissa at or above which the significand reaches
/// `2^(i/32)`. Computed once with 60-digit decimal arithmetic, so no libm result enters a level.
pub const MANTISSA_THRESHOLDS: [u32; 32] = [
    0, 183687, 371396, 563215, 759234, 959546, 1164244, 1373424, 1587185, 1805626, 2028851,
    2256964, 2490071, 2728283, 2971711, 3220470, 3474676, 3734448, 3999908, 4271181, 4548395,
    4831678, 5121165, 5416990, 5719293, 6028216, 6343903, 6666503, 6996167, 7333050, 7677310,
    8029107,
];

/// `round(2³⁰·2^(−i/32))`, the same way.
pub const NEG_POW_Q30: [u32; 32] = [
    1073741824, 1050733751, 1028218693, 1006186087, 984625594, 963527098, 942880699, 922676710,
    902905651, 883558244, 864625413, 846098274, 827968132, 810226483, 792865000, 775875538,
    759250125, 742980960, 727060411, 711481005, 696235434, 681316545, 666717336, 652430958,
    638450708, 624770026, 611382493, 598281827, 585461881, 572916640, 560640218, 548626854,
];

/// The lookup tables of the vector tiers for `M` levels per octave, built at compile time. The
/// top five mantissa bits pick one of 32 buckets; a bucket is narrower than the gap between two
/// thresholds (1/32 < 2^(1/32)·(2^(1/16) − 1)), so it holds at most one, and the threshold count
/// `r` is the bucket's count below it plus one compare.
pub(crate) struct Tables<const M: usize>;

impl<const M: usize> Tables<M> {
    /// Per bucket `b` (mantissas `b·2^18 ..< (b+1)·2^18`): the number of thresholds at or below
    /// its start in the top byte, and the threshold inside it (or 2^23, never reached) below.
    pub(crate) const BUCKETS: [u32; 32] = buckets(M);
    /// `NEG_POW_Q30` of the step `s` inside the octave, for `s < M` (zero past `M`).
    pub(crate) const POWERS: [u32; 16] = powers(M);
}

const fn buckets(m: usize) -> [u32; 32] {
    let mut t = [0u32; 32];
    let mut b = 0;
    while b < 32 {
        let (start, end) = ((b as u32) << 18, ((b as u32) + 1) << 18);
        let (mut below, mut inside) = (0u32, 1u32 << 23);
        let mut j = 0;
        while j < m {
            let thr = MANTISSA_THRESHOLDS[(2 * j + 1) * (16 / m)];
            if thr <= start {
                below += 1;
            } else if thr < end {
                inside = thr;
            }
            j += 1;
        }
        t[b] = below << 24 | inside;
        b += 1;
    }
    t
}

const fn powers(m: usize) -> [u32; 16] {
    let mut t = [0u32; 16];
    let mut s = 0;
    while s < m {
        t[s] = NEG_POW_Q30[s * (32 / m)];
        s += 1;
    }
    t
}

/// `P(q) = round_half_up(2^15·2^(−q/m))` for `m` levels per octave (a power of two ≤ 16).
pub fn level_value(q: u32, m: u32) -> i32 {
    let m = m.clamp(1, 16);
    let (octave, step) = (q / m, q % m);
    let shift = 15 + octave;
    if shift >= 32 {
        return 0;
    }
    let p = NEG_POW_Q30[(step * (32 / m)) as usize] as u64;
    ((p + (1u64 << (shift - 1))) >> shift) as i32
}

/// The level of `y` (see the module contract), plainly: count the thresholds the mantissa
/// reaches.
pub fn level(y: f32, m: u32, max: i32) -> i32 {
    let bits = y.to_bits();
    if !(0x0080_0000..=0x7f80_0000).contains(&bits) {
        return max;
    }
    let e = (bits >> 23) as i32 - 127;
    let mantissa = bits & 0x7f_ffff;
    let r = (0..m)
        .filter(|&j| mantissa >= MANTISSA_THRESHOLDS[((2 * j + 1) * (16 / m)) as usize])
        .count() as i32;
    (-(m as i32) * e - r).clamp(0, max)
}

/// Checks the operands: equal lengths, `m` a power of two ≤ 16, `max` within the contract.
pub(crate) fn check(p: &[f32], m: u32, max: i32, hi: &[i8], lo: &[i8]) -> Result<()> {
    let ok_m = matches!(m, 1 | 2 | 4 | 8 | 16);
    let ok_max = (0..=255).contains(&max) && max < 16 * m as i32;
    if p.len() != hi.len() || p.len() != lo.len() || !ok_m || !ok_max {
        return Err(Error::Shape {
            op: "log2_split_i8",
            what: format!(
                "{} probabilities, {} and {} outputs, m {m}, max {max}",
                p.len(),
                hi.len(),
                lo.len()
            ),
        });
    }
    Ok(())
}

/// Scalar reference of the contract.
pub fn log2_split_i8(
    p: &[f32],
    inv: f32,
    m: u32,
    max: i32,
    hi: &mut [i8],
    lo: &mut [i8],
) -> Result<()> {
    check(p, m, max, hi, lo)?;
    for ((&x, h), l) in p.iter().zip(hi.iter_mut()).zip(lo.iter_mut()) {
        let v = level_value(level(x * inv, m, max) as u32, m);
        *h = ((v >> 8) - 64) as i8;
        *l = ((v & 255) - 128) as i8;
    }
    Ok(())
}
