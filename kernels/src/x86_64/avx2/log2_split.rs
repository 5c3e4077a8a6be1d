//! The log-domain level split (`crate::log2`) on AVX2, 32 probabilities per step, with table
//! lookups where the portable loop compares against every threshold (`M` compares and blends
//! per 8 values: 48 operations for the 16 levels per octave of 8-bit attention).
//!
//! As on NEON (`crate::log2::Tables`): the top five mantissa bits pick a bucket whose entry holds
//! the count of thresholds below it and the one threshold inside it; the power of the step inside
//! the octave comes from a second table. AVX2 looks up 8 dwords at a time with `vpermd`, so a
//! 32-entry table is four permutes and three blends on the index's bits 3 and 4. The fixed-point
//! value is a per-lane variable shift (`vpsrlvd`). Every value matches the scalar reference
//! (tests/log2_split.rs); the ragged tail takes the portable loop.

use crate::cpu::Avx2Fma;
use crate::log2::{Tables, level_value};
use std::arch::x86_64::*;

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

/// `words[8·i .. 8·i + 8]` as registers.
#[target_feature(enable = "avx2")]
fn table<const N: usize>(words: &[u32]) -> [__m256i; N] {
    std::array::from_fn(|i| {
        let w: [u32; 8] = words[8 * i..8 * i + 8].try_into().unwrap();
        // SAFETY: `[u32; 8]` and `__m256i` have the same size; any bits are valid.
        unsafe { std::mem::transmute::<[u32; 8], __m256i>(w) }
    })
}

/// Entry `idx` (< 8·N, N = 2 or 4) of a table per lane.
#[inline]
#[target_feature(enable = "avx2")]
fn lookup<const N: usize>(t: &[__m256i; N], idx: __m256i) -> __m256i {
    let pick = |a: __m256i, b: __m256i, bit: __m256i| {
        _mm256_castps_si256(_mm256_blendv_ps(
            _mm256_castsi256_ps(a),
            _mm256_castsi256_ps(b),
            _mm256_castsi256_ps(bit),
        ))
    };
    // `vpermd` reads the low three bits; bits 3 and 4 move to the sign bit for the blends.
    let bit3 = _mm256_slli_epi32::<28>(idx);
    let low = pick(
        _mm256_permutevar8x32_epi32(t[0], idx),
        _mm256_permutevar8x32_epi32(t[1], idx),
        bit3,
    );
    if N == 2 {
        return low;
    }
    let high = pick(
        _mm256_permutevar8x32_epi32(t[2], idx),
        _mm256_permutevar8x32_epi32(t[3], idx),
        bit3,
    );
    pick(low, high, _mm256_slli_epi32::<27>(idx))
}

/// The loop-invariant operands of [`value`].
struct Consts {
    vinv: __m256,
    shift_m: __m128i,
    max: i32,
    at_zero: i32,
    at_max: i32,
    buckets: [__m256i; 4],
    powers: [__m256i; 2],
}

/// The fixed-point values `P(q)` of eight probabilities. (A function, not a closure of
/// `split`: the closure was compiled out of line, its vectors passed through memory.)
#[inline]
#[target_feature(enable = "avx2")]
fn value<const M: usize>(c: &Consts, x: __m256) -> __m256i {
    let set = _mm256_set1_epi32;
    let bits = _mm256_castps_si256(_mm256_mul_ps(x, c.vinv));
    // Zero, subnormal, negative and NaN: bits outside [2^-126, +∞] (+∞ gives level 0); an
    // unsigned compare as a signed one of both sides with the sign bit flipped.
    let flip = set(i32::MIN);
    let invalid = _mm256_cmpgt_epi32(
        _mm256_xor_si256(_mm256_sub_epi32(bits, set(0x0080_0000)), flip),
        _mm256_xor_si256(set(0x7f80_0000 - 0x0080_0000), flip),
    );
    let e = _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), set(127));
    let mantissa = _mm256_and_si256(bits, set(0x7f_ffff));
    let entry = lookup(&c.buckets, _mm256_srli_epi32::<18>(mantissa));
    // Both sides are below 2^24, so the signed compare is the unsigned one.
    let short = _mm256_cmpgt_epi32(_mm256_and_si256(entry, set(0xff_ffff)), mantissa);
    // r = count below + reached = count below + 1 + short (short is −1 when not reached).
    let r = _mm256_add_epi32(
        _mm256_srli_epi32::<24>(entry),
        _mm256_add_epi32(set(1), short),
    );
    // q = −M·e − r; the step inside the octave is (−r) mod M.
    let q = _mm256_sub_epi32(
        _mm256_setzero_si256(),
        _mm256_add_epi32(_mm256_sll_epi32(e, c.shift_m), r),
    );
    let step = _mm256_and_si256(
        _mm256_sub_epi32(_mm256_setzero_si256(), r),
        set(M as i32 - 1),
    );
    let power = lookup(&c.powers, step);
    let clamped = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_setzero_si256()), set(c.max));
    let octave = _mm256_sra_epi32(clamped, c.shift_m);
    // round_half_up(power / 2^(15+octave)); power + 2^(14+octave) < 2^31.
    let half = _mm256_sllv_epi32(set(1), _mm256_add_epi32(octave, set(14)));
    let inside = _mm256_srlv_epi32(
        _mm256_add_epi32(power, half),
        _mm256_add_epi32(octave, set(15)),
    );
    let to_max = _mm256_or_si256(invalid, _mm256_cmpgt_epi32(q, set(c.max - 1)));
    let at_or_below_zero = _mm256_cmpgt_epi32(set(1), q);
    let v = _mm256_blendv_epi8(inside, set(c.at_zero), at_or_below_zero);
    _mm256_blendv_epi8(v, set(c.at_max), to_max)
}

/// 32 values in `i8` range as bytes, in order.
#[inline]
#[target_feature(enable = "avx2")]
fn bytes(v: [__m256i; 4]) -> [i8; 32] {
    let a = _mm256_packs_epi32(v[0], v[1]);
    let b = _mm256_packs_epi32(v[2], v[3]);
    // The two in-lane packs leave dwords in the order 0 2 4 6 1 3 5 7 of the result.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let r = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b), order);
    // SAFETY: `__m256i` and `[i8; 32]` have the same size; any bits are valid.
    unsafe { std::mem::transmute::<__m256i, [i8; 32]>(r) }
}

#[target_feature(enable = "avx2")]
fn split<const M: usize>(p: &[f32], inv: f32, max: i32, hi: &mut [i8], lo: &mut [i8]) {
    let n = p.len().min(hi.len()).min(lo.len());
    let (ps, p_tail) = p[..n].as_chunks::<32>();
    let (hs, h_tail) = hi[..n].as_chunks_mut::<32>();
    let (ls, l_tail) = lo[..n].as_chunks_mut::<32>();
    let shift_m = _mm_cvtsi32_si128(M.trailing_zeros() as i32);
    let (at_zero, at_max) = (level_value(0, M as u32), level_value(max as u32, M as u32));
    let buckets = table::<4>(&Tables::<M>::BUCKETS);
    let powers = table::<2>(&Tables::<M>::POWERS);
    let c = Consts {
        vinv: _mm256_set1_ps(inv),
        shift_m,
        max,
        at_zero,
        at_max,
        buckets,
        powers,
    };
    let set = _mm256_set1_epi32;
    for ((pc, hc), lc) in ps.iter().zip(hs.iter_mut()).zip(ls.iter_mut()) {
        let x = |i: usize| -> __m256 {
            let x: [f32; 8] = pc[8 * i..8 * i + 8].try_into().unwrap();
            // SAFETY: `[f32; 8]` and `__m256` have the same size; any bits are valid.
            unsafe { std::mem::transmute::<[f32; 8], __m256>(x) }
        };
        let v = [
            value::<M>(&c, x(0)),
            value::<M>(&c, x(1)),
            value::<M>(&c, x(2)),
            value::<M>(&c, x(3)),
        ];
        // Values are at most 2^15: hi = (v >> 8) − 64 and lo = (v & 255) − 128 fit i8.
        let (h, l) = (set(64), set(128));
        *hc = bytes([0, 1, 2, 3].map(|i| _mm256_sub_epi32(_mm256_srli_epi32::<8>(v[i]), h)));
        *lc = bytes([0, 1, 2, 3].map(|i| _mm256_sub_epi32(_mm256_and_si256(v[i], set(255)), l)));
    }
    crate::generic::log2::log2_split_any(p_tail, inv, M as u32, max, h_tail, l_tail);
}
