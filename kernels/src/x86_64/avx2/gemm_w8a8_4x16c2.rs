//! W8A8 GEMM micro-kernel, 4 rows × 16 output channels, K in pairs, AVX2.
//!
//! AVX2 has no signed×signed 8-bit multiply (`vpmaddubsw` is unsigned×signed and saturates its
//! 16-bit pair sums), so both operands are sign-extended to i16 and multiplied with `vpmaddwd`,
//! which adds the (k, k+1) product pair into i32 exactly: 16 MACs per instruction. Packed layout
//! (see `pack`): an activation block is 4 rows × 2 k, a weight block 16 channels × 2 k, which is
//! exactly the pair-interleaved order `vpmaddwd` consumes. Per k-pair: one 32-byte weight load
//! split into two 8-channel i16 vectors, one 8-byte activation load broadcast per row, 8 `vpmaddwd`
//! + 8 `vpaddd` into 8 accumulators.

use super::Avx2Fma;
use crate::Result;
use std::arch::x86_64::*;

const MR: usize = 4;
const NR: usize = 16;
const KR: usize = 2;

/// Overwrites the row-major 4×16 `tile` with `Σ a·w` of one packed activation panel (`a`, 8·kb
/// bytes) and one packed weight panel (`b`, 32·kb bytes). Errors on other lengths.
pub fn gemm_w8a8_4x16c2(
    _cpu: Avx2Fma,
    a: &[i8],
    b: &[i8],
    kb: usize,
    tile: &mut [i32],
) -> Result<()> {
    crate::pack::check_ukernel("x86_64.avx2.gemm_w8a8_4x16c2", (MR, NR, KR), a, b, kb, tile)?;
    // SAFETY: the token proves AVX2; the lengths were checked just above.
    unsafe { kernel(a, b, kb, tile) };
    Ok(())
}

/// # Safety
/// `a.len() == 8·kb`, `b.len() == 32·kb`, `tile.len() == 64`, and the CPU has AVX2.
#[target_feature(enable = "avx2")]
unsafe fn kernel(a: &[i8], b: &[i8], kb: usize, tile: &mut [i32]) {
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for blk in 0..kb {
        // SAFETY: block `blk < kb` spans bytes [8·blk, 8·blk+8) of `a` and [32·blk, 32·blk+32)
        // of `b`, inside the checked lengths; unaligned loads are used.
        let (w, x) = unsafe {
            (
                _mm256_loadu_si256(bp.add(blk * NR * KR).cast()),
                _mm_loadl_epi64(ap.add(blk * MR * KR).cast()),
            )
        };
        let w_lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(w));
        let w_hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(w));
        // Four i32 lanes, each one row's (k, k+1) pair as two i16.
        let x = _mm_cvtepi8_epi16(x);
        let rows = [
            _mm256_broadcastd_epi32(x),
            _mm256_broadcastd_epi32(_mm_shuffle_epi32::<0x55>(x)),
            _mm256_broadcastd_epi32(_mm_shuffle_epi32::<0xAA>(x)),
            _mm256_broadcastd_epi32(_mm_shuffle_epi32::<0xFF>(x)),
        ];
        for (r, xr) in rows.into_iter().enumerate() {
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(xr, w_lo));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(xr, w_hi));
        }
    }
    let tp = tile.as_mut_ptr();
    for (r, halves) in acc.iter().enumerate() {
        // SAFETY: the tile holds 4×16 i32; row r's two 8-lane halves start at 16·r and 16·r + 8.
        unsafe {
            _mm256_storeu_si256(tp.add(r * NR).cast(), halves[0]);
            _mm256_storeu_si256(tp.add(r * NR + 8).cast(), halves[1]);
        }
    }
}
