//! W4A4 GEMM micro-kernel, 4 rows × 4 output channels, K in blocks of 16, ARMv8.0 NEON.
//!
//! Exploits the narrow products on cores without SDOT (Cortex-A53/A57/A72): activations arrive
//! with their zero point already subtracted (`a − a_zero ∈ [−15, 15]`) and weights are int4
//! (`[−8, 7]`), so every product fits in a signed byte (|p| ≤ 120). One 8-bit-lane `mul` makes 16
//! products and one `sadalp` adds them pairwise into 8 i16 lanes: 2 instructions per 16 MACs,
//! against 3 (`smull`, `smlal2`, `sadalp`) for W8A8. An i16 lane gains at most 2·120 per block, so
//! the i16 partial sums are folded into i32 (`sadalp` again) every [`FLUSH`] blocks, before they
//! could reach 2¹⁵. Same packed layout as the W8A8 NEON kernel.

use crate::Result;
use crate::cpu::Neon;
use std::arch::aarch64::*;

use crate::aarch64::drive::reduce_row;

const MR: usize = 4;
const NR: usize = 4;
const KR: usize = 16;
/// Blocks per i16 accumulation run: 128·2·120 = 30 720 < 32 767.
const FLUSH: usize = 128;

/// Overwrites the row-major 4×4 `tile` with `Σ a·w` of one packed activation panel (`a`, values
/// in [−15, 15], 64·kb bytes) and one packed weight panel (`b`, values in [−8, 7], 64·kb bytes).
/// Errors on other lengths; values outside those ranges give wrapped (wrong) sums, which is why
/// only the W4A4 driver, which checks the ranges, reaches this kernel through the inventory.
pub fn gemm_w4a4_4x4c16(_cpu: Neon, a: &[i8], b: &[i8], kb: usize, tile: &mut [i32]) -> Result<()> {
    crate::tier::hit(crate::Tier::Neon);
    crate::pack::check_ukernel(
        "aarch64.neon.gemm_w4a4_4x4c16",
        (MR, NR, KR),
        a,
        b,
        kb,
        tile,
    )?;
    // SAFETY: the token proves NEON; lengths were checked just above.
    unsafe { kernel(a, b, tile) };
    Ok(())
}

/// The panel product as 4 rows of one four-channel vector (blocks past the shorter operand are
/// ignored; callers pass matching lengths).
#[target_feature(enable = "neon")]
#[inline]
fn dot_tile(a: &[i8], b: &[i8]) -> [[int32x4_t; 1]; MR] {
    let mut acc32 = [[vdupq_n_s32(0); NR]; MR];
    // Runs of at most FLUSH blocks; `chunks_exact` keeps bounds checks out of the inner loop.
    for (ar, br) in a.chunks(MR * KR * FLUSH).zip(b.chunks(NR * KR * FLUSH)) {
        let mut acc16 = [[vdupq_n_s16(0); NR]; MR];
        for (ab, bb) in ar.chunks_exact(MR * KR).zip(br.chunks_exact(NR * KR)) {
            // SAFETY: each load reads 16 bytes at offset 16·i < 64 of a 64-byte block slice.
            let (x, w) = unsafe {
                (
                    [0, 1, 2, 3].map(|i| vld1q_s8(ab.as_ptr().add(16 * i))),
                    [0, 1, 2, 3].map(|i| vld1q_s8(bb.as_ptr().add(16 * i))),
                )
            };
            for (acc_r, &xr) in acc16.iter_mut().zip(&x) {
                for (acc_rc, &wc) in acc_r.iter_mut().zip(&w) {
                    *acc_rc = vpadalq_s8(*acc_rc, vmulq_s8(xr, wc));
                }
            }
        }
        for (a32, a16) in acc32.iter_mut().zip(&acc16) {
            for (d, &s) in a32.iter_mut().zip(a16) {
                *d = vpadalq_s16(*d, s);
            }
        }
    }
    acc32.map(|row| [reduce_row(row)])
}

crate::aarch64::drive::gemm_entries! {
    token: Neon,
    tier: Neon,
    features: "neon",
    packed: gemm_w4a4_4x4c16_packed,
    mr: MR,
    vectors: 1,
    kr: KR,
}
