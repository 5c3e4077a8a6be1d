//! Activation packing of the 8×32c4 kernel: full 8-row panels are transposed 16 columns at a
//! time in registers instead of block by block (the portable copy does the ragged rest).

use crate::cpu::Avx512Vnni;
use crate::pack::pack_panels_into_with;

/// Packs `[rows, k]` activations into the kernel's 8-row, 4-column-block panels (see
/// `crate::pack`), adding 128 to every value when `flip`. Lengths are checked by the caller.
pub(crate) fn pack_a_8x4(
    _cpu: Avx512Vnni,
    out: &mut Vec<i8>,
    src: &[i8],
    rows: usize,
    k: usize,
    flip: bool,
) {
    crate::tier::hit(crate::Tier::Avx512Vnni);
    // SAFETY: SSE2 is part of the x86_64 baseline (the token proves far more).
    let copy = |panel: &mut [i8], rows: &[i8], k: usize| unsafe { transpose_8x16(panel, rows, k) };
    pack_panels_into_with(out, src, rows, k, 8, 4, flip, Some(&copy));
}

/// Packs the first `16·⌊k/16⌋` columns of one full 8-row panel into 4-byte blocks (`panel` is
/// the panel's `32·kb` output bytes, `rows` its `8·k` source bytes) and returns the number of
/// blocks written. Each group of 16 columns is an 8 × 4 matrix of `u32`, transposed with the
/// SSE2 unpacks (x86_64 baseline): 8 loads, 16 unpacks and 8 stores for 128 bytes, where the
/// block-by-block copy needs 32 loads and 32 stores.
#[target_feature(enable = "sse2")]
fn transpose_8x16(panel: &mut [i8], rows: &[i8], k: usize) -> usize {
    use std::arch::x86_64::*;
    let groups = k / 16;
    let load = |r: usize, g: usize| -> __m128i {
        let bytes: [i8; 16] = rows[r * k + 16 * g..][..16].try_into().unwrap();
        // SAFETY: `[i8; 16]` and `__m128i` have the same size and every bit pattern is valid.
        unsafe { std::mem::transmute::<[i8; 16], __m128i>(bytes) }
    };
    // Lane j (columns 4j..4j+4) of four rows, gathered into one register per j.
    let transpose4 = |x: [__m128i; 4]| -> [__m128i; 4] {
        let t0 = _mm_unpacklo_epi32(x[0], x[1]);
        let t1 = _mm_unpacklo_epi32(x[2], x[3]);
        let t2 = _mm_unpackhi_epi32(x[0], x[1]);
        let t3 = _mm_unpackhi_epi32(x[2], x[3]);
        [
            _mm_unpacklo_epi64(t0, t1),
            _mm_unpackhi_epi64(t0, t1),
            _mm_unpacklo_epi64(t2, t3),
            _mm_unpackhi_epi64(t2, t3),
        ]
    };
    let (blocks, _) = panel.as_chunks_mut::<32>();
    for (g, dst) in blocks.chunks_exact_mut(4).take(groups).enumerate() {
        let lo = transpose4([load(0, g), load(1, g), load(2, g), load(3, g)]);
        let hi = transpose4([load(4, g), load(5, g), load(6, g), load(7, g)]);
        for ((d, l), h) in dst.iter_mut().zip(lo).zip(hi) {
            // SAFETY: as above, `__m128i` and `[i8; 16]` are the same 16 bytes.
            let (l, h) = unsafe {
                (
                    std::mem::transmute::<__m128i, [i8; 16]>(l),
                    std::mem::transmute::<__m128i, [i8; 16]>(h),
                )
            };
            d[..16].copy_from_slice(&l);
            d[16..].copy_from_slice(&h);
        }
    }
    4 * groups
}
