//! W8A8 GEMM micro-kernel, 6 rows × 16 output channels, K in blocks of 4, AVX2 + AVX-VNNI.
//!
//! `vpdpbusd` adds four u8×i8 products per i32 lane into the accumulator without saturation:
//! 32 MACs per instruction. It multiplies *unsigned* by signed bytes, so activations are packed
//! as `a + 128` (a sign-bit flip, see `KernelDesc::a_offset`) and the driver subtracts the extra
//! `128·Σₖ w` with the same column sums that fold the zero point; every term stays exact
//! (4·255·127 per instruction lane). Packed layout (see `pack`): an activation block is 6 rows ×
//! 4 k (one i32 per row, broadcast), a weight block 16 channels × 4 k (two registers). Per block:
//! 2 loads, 6 broadcasts, 12 `vpdpbusd` for 384 MACs. Six rows because AVX2 has 16 `ymm`
//! registers: 12 accumulators + 2 weights + 1 broadcast fit, where 8 rows (16 accumulators)
//! spill to the stack in the inner loop and ran at about half the speed.

use crate::Result;
use crate::cpu::AvxVnni;
use std::arch::x86_64::*;

const MR: usize = 6;
const NR: usize = 16;
const KR: usize = 4;

/// Overwrites the row-major 6×16 `tile` with `Σ (a+128)·w` of one packed activation panel (`a`,
/// sign-flipped, 24·kb bytes) and one packed weight panel (`b`, 64·kb bytes). Errors on other
/// lengths.
pub fn gemm_w8a8_6x16c4(
    _cpu: AvxVnni,
    a: &[i8],
    b: &[i8],
    kb: usize,
    tile: &mut [i32],
) -> Result<()> {
    crate::tier::hit(crate::Tier::AvxVnni);
    crate::pack::check_ukernel(
        "x86_64.avxvnni.gemm_w8a8_6x16c4",
        (MR, NR, KR),
        a,
        b,
        kb,
        tile,
    )?;
    // SAFETY: the token proves AVX2 and AVX-VNNI.
    unsafe { kernel(a, b, tile) };
    Ok(())
}

/// # Safety
/// The CPU has AVX2 + AVX-VNNI. Memory safety does not depend on the lengths (every access goes
/// through fixed-size chunks; the caller checked them so no block is dropped).
///
/// Loads copy `[i8; N]` chunks instead of calling `_mm256_loadu_si256`, whose `read_unaligned`
/// carries debug-build UB checks that cost more than the `vpdpbusd` they feed.
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn kernel(a: &[i8], b: &[i8], tile: &mut [i32]) {
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let (a_blocks, _) = a.as_chunks::<{ MR * KR }>();
    let (b_blocks, _) = b.as_chunks::<{ NR * KR }>();
    for (ab, bb) in a_blocks.iter().zip(b_blocks) {
        let (w0, w1) = bb.split_at(32);
        let (w0, w1): ([i8; 32], [i8; 32]) = (w0.try_into().unwrap(), w1.try_into().unwrap());
        // SAFETY: `[i8; 32]` and `__m256i` have the same size and every bit pattern is valid.
        let (w0, w1): (__m256i, __m256i) = unsafe {
            (
                std::mem::transmute::<[i8; 32], __m256i>(w0),
                std::mem::transmute::<[i8; 32], __m256i>(w1),
            )
        };
        for (acc_r, x) in acc.iter_mut().zip(ab.as_chunks::<KR>().0) {
            let x = _mm256_set1_epi32(i32::from_ne_bytes(x.map(|v| v as u8)));
            acc_r[0] = _mm256_dpbusd_avx_epi32(acc_r[0], x, w0);
            acc_r[1] = _mm256_dpbusd_avx_epi32(acc_r[1], x, w1);
        }
    }
    for (halves, row) in acc.iter().zip(tile.as_chunks_mut::<NR>().0) {
        crate::x86_64::avx2::store_row16(halves, row);
    }
}
