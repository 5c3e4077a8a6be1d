//! Packing into 2-column blocks on x86_64 (the AVX2 kernels' `kr`), 8 k-pairs of 8 rows at a time as an
//! 8 × 8 transpose of `u16` in SSE2 registers (x86_64 baseline, so no tier token).
//!
//! The portable block copy moves one 2-byte block per step: on Zen 3 packing took a tenth of a
//! DeiT-Tiny W8A8 inference (the probabilities' two byte planes and each head's K and V are
//! packed on every run). Here 16 loads, 24 unpacks and 16 stores move 128 bytes.

use std::arch::x86_64::*;

/// Packs the first `16·⌊k/16⌋` columns of one full `p`-row panel into 2-byte blocks (`panel` is
/// the panel's `2·p·kb` output bytes, `rows` its `p·k` source bytes) and returns the number of
/// blocks of every row written.
pub(crate) fn pairs_copy(panel: &mut [i8], rows: &[i8], k: usize, p: usize) -> usize {
    // SAFETY: SSE2 is part of the x86_64 baseline.
    unsafe { copy(panel, rows, k, p) }
}

#[target_feature(enable = "sse2")]
fn copy(panel: &mut [i8], rows: &[i8], k: usize, p: usize) -> usize {
    let groups = k / 16;
    for g in 0..groups {
        for r0 in (0..p).step_by(8) {
            let live = (p - r0).min(8);
            let x: [__m128i; 8] = std::array::from_fn(|r| match r < live {
                true => {
                    let s: [i8; 16] = rows[(r0 + r) * k + 16 * g..][..16].try_into().unwrap();
                    // SAFETY: `[i8; 16]` and `__m128i` have the same size; any bits are valid.
                    unsafe { std::mem::transmute::<[i8; 16], __m128i>(s) }
                }
                false => _mm_setzero_si128(),
            });
            for (j, col) in transpose8(x).into_iter().enumerate() {
                // SAFETY: as above.
                let col = unsafe { std::mem::transmute::<__m128i, [i8; 16]>(col) };
                let at = ((8 * g + j) * p + r0) * 2;
                // Fixed-size copies for the kernels' panel heights are plain stores; a variable
                // one calls memcpy.
                match live {
                    8 => panel[at..at + 16].copy_from_slice(&col),
                    6 => panel[at..at + 12].copy_from_slice(&col[..12]),
                    _ => panel[at..at + 2 * live].copy_from_slice(&col[..2 * live]),
                }
            }
        }
    }
    8 * groups
}

/// Row `j` of the result holds element `j` (a `u16`: one row's k-pair) of the eight inputs.
#[inline]
#[target_feature(enable = "sse2")]
fn transpose8(a: [__m128i; 8]) -> [__m128i; 8] {
    let t: [__m128i; 8] = std::array::from_fn(|i| {
        let (x, y) = (a[2 * (i / 2)], a[2 * (i / 2) + 1]);
        match i % 2 {
            0 => _mm_unpacklo_epi16(x, y),
            _ => _mm_unpackhi_epi16(x, y),
        }
    });
    // u[0..4]: rows 0–3 of columns (0,1), (2,3), (4,5), (6,7); u[4..8]: rows 4–7.
    let u = [
        _mm_unpacklo_epi32(t[0], t[2]),
        _mm_unpackhi_epi32(t[0], t[2]),
        _mm_unpacklo_epi32(t[1], t[3]),
        _mm_unpackhi_epi32(t[1], t[3]),
        _mm_unpacklo_epi32(t[4], t[6]),
        _mm_unpackhi_epi32(t[4], t[6]),
        _mm_unpacklo_epi32(t[5], t[7]),
        _mm_unpackhi_epi32(t[5], t[7]),
    ];
    std::array::from_fn(|j| match j % 2 {
        0 => _mm_unpacklo_epi64(u[j / 2], u[4 + j / 2]),
        _ => _mm_unpackhi_epi64(u[j / 2], u[4 + j / 2]),
    })
}

#[cfg(test)]
mod tests {
    use crate::pack::{pack_bytes_for_test, pack_panels_into};

    /// The transposing copy gives the bytes of the block-by-block reference for panel heights
    /// of the AVX2 kernels (6 activation rows, 16 weight rows) and others, ragged rows and K.
    #[test]
    fn pairs_match_the_byte_copy() {
        for p in [1, 6, 8, 13, 16] {
            for (rows, k) in [
                (1, 16),
                (6, 32),
                (7, 48),
                (16, 64),
                (33, 197),
                (197, 64),
                (5, 15),
            ] {
                let src: Vec<i8> = (0..rows * k).map(|i| (i * 37 % 251) as i8).collect();
                let mut got = Vec::new();
                pack_panels_into(&mut got, &src, rows, k, p, 2, false);
                assert_eq!(
                    got,
                    pack_bytes_for_test(&src, rows, k, p, 2),
                    "p {p} {rows}×{k}"
                );
            }
        }
    }
}
