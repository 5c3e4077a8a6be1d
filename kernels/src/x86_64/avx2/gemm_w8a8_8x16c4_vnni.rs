//! W8A8 GEMM micro-kernel, 8 rows × 16 output channels, K in blocks of 4, AVX2 + AVX-VNNI.
//!
//! `vpdpbusd` adds four u8×i8 products per i32 lane into the accumulator without saturation:
//! 32 MACs per instruction. It multiplies *unsigned* by signed bytes, so activations are packed
//! as `a + 128` (a sign-bit flip, see `KernelDesc::a_offset`) and the driver subtracts the extra
//! `128·Σₖ w` with the same column sums that fold the zero point; every term stays exact
//! (4·255·127 per instruction lane). Packed layout (see `pack`): an activation block is 8 rows ×
//! 4 k (one i32 per row, broadcast), a weight block 16 channels × 4 k (two registers). Per block:
//! 2 loads, 8 broadcasts, 16 `vpdpbusd` for 512 MACs.

use super::AvxVnni;
use crate::Result;
use std::arch::x86_64::*;

const MR: usize = 8;
const NR: usize = 16;
const KR: usize = 4;

/// Overwrites the row-major 8×16 `tile` with `Σ (a+128)·w` of one packed activation panel (`a`,
/// sign-flipped, 32·kb bytes) and one packed weight panel (`b`, 64·kb bytes). Errors on other
/// lengths.
pub fn gemm_w8a8_8x16c4_vnni(
    _cpu: AvxVnni,
    a: &[i8],
    b: &[i8],
    kb: usize,
    tile: &mut [i32],
) -> Result<()> {
    crate::pack::check_ukernel(
        "x86_64.avx2.gemm_w8a8_8x16c4_vnni",
        (MR, NR, KR),
        a,
        b,
        kb,
        tile,
    )?;
    // SAFETY: the token proves AVX2 and AVX-VNNI; the lengths were checked just above.
    unsafe { kernel(a, b, kb, tile) };
    Ok(())
}

/// # Safety
/// `a.len() == 32·kb`, `b.len() == 64·kb`, `tile.len() == 128`, and the CPU has AVX2 + AVX-VNNI.
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn kernel(a: &[i8], b: &[i8], kb: usize, tile: &mut [i32]) {
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for blk in 0..kb {
        // SAFETY: block `blk < kb` spans [64·blk, 64·blk+64) of `b`, inside the checked length.
        let (w0, w1) = unsafe {
            let p = bp.add(blk * NR * KR);
            (
                _mm256_loadu_si256(p.cast()),
                _mm256_loadu_si256(p.add(32).cast()),
            )
        };
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: row r's 4 bytes of block `blk` are at 32·blk + 4·r < 32·kb.
            let x = unsafe {
                _mm256_set1_epi32(
                    ap.add(blk * MR * KR + r * KR)
                        .cast::<i32>()
                        .read_unaligned(),
                )
            };
            acc_r[0] = _mm256_dpbusd_avx_epi32(acc_r[0], x, w0);
            acc_r[1] = _mm256_dpbusd_avx_epi32(acc_r[1], x, w1);
        }
    }
    let tp = tile.as_mut_ptr();
    for (r, halves) in acc.iter().enumerate() {
        // SAFETY: the tile holds 8×16 i32; row r's two 8-lane halves start at 16·r and 16·r + 8.
        unsafe {
            _mm256_storeu_si256(tp.add(r * NR).cast(), halves[0]);
            _mm256_storeu_si256(tp.add(r * NR + 8).cast(), halves[1]);
        }
    }
}
