//! W8A8 GEMM micro-kernel, 4 rows × 16 output channels, K in pairs, AVX2.
//!
//! AVX2 has no signed×signed 8-bit multiply (`vpmaddubsw` is unsigned×signed and saturates its
//! 16-bit pair sums), so both operands are sign-extended to i16 and multiplied with `vpmaddwd`,
//! which adds the (k, k+1) product pair into i32 exactly: 16 MACs per instruction. Packed layout
//! (see `pack`): an activation block is 4 rows × 2 k, a weight block 16 channels × 2 k, which is
//! exactly the pair-interleaved order `vpmaddwd` consumes. Per k-pair: one 32-byte weight load
//! split into two 8-channel i16 vectors, one 8-byte activation load broadcast per row, 8 `vpmaddwd`
//! + 8 `vpaddd` into 8 accumulators.

use crate::Result;
use crate::cpu::Avx2Fma;
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
    crate::tier::hit(crate::Tier::Avx2);
    crate::pack::check_ukernel("x86_64.avx2.gemm_w8a8_4x16c2", (MR, NR, KR), a, b, kb, tile)?;
    // SAFETY: the token proves AVX2.
    unsafe { kernel(a, b, tile) };
    Ok(())
}

/// # Safety
/// The CPU has AVX2. Memory safety does not depend on the lengths (every access goes through
/// fixed-size chunks; the caller checked them so no block is dropped).
///
/// Loads copy `[i8; N]` chunks instead of calling `_mm256_loadu_si256`, whose `read_unaligned`
/// carries debug-build UB checks that cost more than the multiply they feed.
#[target_feature(enable = "avx2")]
unsafe fn kernel(a: &[i8], b: &[i8], tile: &mut [i32]) {
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let (a_blocks, _) = a.as_chunks::<{ MR * KR }>();
    let (b_blocks, _) = b.as_chunks::<{ NR * KR }>();
    for (ab, bb) in a_blocks.iter().zip(b_blocks) {
        // SAFETY: `[i8; 32]` and `__m256i` have the same size and every bit pattern is valid.
        let w: __m256i = unsafe { std::mem::transmute::<[i8; 32], __m256i>(*bb) };
        let x = _mm_cvtsi64_si128(i64::from_ne_bytes(ab.map(|v| v as u8)));
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
    for (halves, row) in acc.iter().zip(tile.as_chunks_mut::<NR>().0) {
        super::store_row16(halves, row);
    }
}
