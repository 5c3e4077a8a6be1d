//! W8A8 GEMM micro-kernel, 8 rows × 32 output channels, K in blocks of 4, AVX-512 VNNI.
//!
//! The 512-bit form of the AVX-VNNI kernel: `vpdpbusd zmm` adds four u8×i8 products per i32 lane,
//! 64 MACs per instruction, twice the AVX-VNNI rate. Activations are packed as `a + 128` (see
//! `KernelDesc::a_offset`) and the driver removes `128·Σₖ w` with the packed column sums. A weight
//! block is 32 channels × 4 k (two registers); each row's 4 bytes are broadcast. Per block:
//! 2 loads, 8 broadcasts, 16 `vpdpbusd` for 1024 MACs.

use super::Avx512Vnni;
use crate::Result;
use std::arch::x86_64::*;

const MR: usize = 8;
const NR: usize = 32;
const KR: usize = 4;

/// Overwrites the row-major 8×32 `tile` with `Σ (a+128)·w` of one packed activation panel (`a`,
/// sign-flipped, 32·kb bytes) and one packed weight panel (`b`, 128·kb bytes). Errors on other
/// lengths.
pub fn gemm_w8a8_8x32c4(
    _cpu: Avx512Vnni,
    a: &[i8],
    b: &[i8],
    kb: usize,
    tile: &mut [i32],
) -> Result<()> {
    crate::pack::check_ukernel(
        "x86_64.avx512vnni.gemm_w8a8_8x32c4",
        (MR, NR, KR),
        a,
        b,
        kb,
        tile,
    )?;
    // SAFETY: the token proves AVX-512 F/BW/VNNI; the lengths were checked just above.
    unsafe { kernel(a, b, kb, tile) };
    Ok(())
}

/// # Safety
/// `a.len() == 32·kb`, `b.len() == 128·kb`, `tile.len() == 256`, and the CPU has AVX-512 VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn kernel(a: &[i8], b: &[i8], kb: usize, tile: &mut [i32]) {
    let mut acc = [[_mm512_setzero_si512(); 2]; MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for blk in 0..kb {
        // SAFETY: block `blk < kb` spans [128·blk, 128·blk+128) of `b`, inside the checked length.
        let (w0, w1) = unsafe {
            let p = bp.add(blk * NR * KR);
            (
                _mm512_loadu_si512(p.cast()),
                _mm512_loadu_si512(p.add(64).cast()),
            )
        };
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: row r's 4 bytes of block `blk` are at 32·blk + 4·r < 32·kb.
            let x = unsafe {
                _mm512_set1_epi32(
                    ap.add(blk * MR * KR + r * KR)
                        .cast::<i32>()
                        .read_unaligned(),
                )
            };
            acc_r[0] = _mm512_dpbusd_epi32(acc_r[0], x, w0);
            acc_r[1] = _mm512_dpbusd_epi32(acc_r[1], x, w1);
        }
    }
    let tp = tile.as_mut_ptr();
    for (r, halves) in acc.iter().enumerate() {
        // SAFETY: the tile holds 8×32 i32; row r's two 16-lane halves start at 32·r and 32·r + 16.
        unsafe {
            _mm512_storeu_si512(tp.add(r * NR).cast(), halves[0]);
            _mm512_storeu_si512(tp.add(r * NR + 16).cast(), halves[1]);
        }
    }
}
