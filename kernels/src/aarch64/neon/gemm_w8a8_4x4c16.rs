//! W8A8 GEMM micro-kernel, 4 rows × 4 output channels, K in blocks of 16, ARMv8.0 NEON.
//!
//! Without SDOT, int8 products go through widening multiplies: `smull` multiplies the low 8
//! bytes of a row and a channel into 8 i16, `smlal2` adds the high 8 bytes' products to them,
//! and `sadalp` folds the i16 pairs into the i32 accumulator. Two products per i16 lane are safe
//! because weights are in [−127, 127] (128·127·2 = 32 512 < 2¹⁵; the contract in `gemm`). Each
//! (row, channel) pair keeps a 4-lane partial-sum vector, reduced once at the end (`addv`).
//! Per 16-k block: 8 loads, 16×3 arithmetic instructions for 256 MACs.

use crate::Result;
use crate::cpu::Neon;
use std::arch::aarch64::*;

use crate::aarch64::drive::reduce_row;

const MR: usize = 4;
const NR: usize = 4;
const KR: usize = 16;

/// Overwrites the row-major 4×4 `tile` with `Σ a·w` of one packed activation panel (`a`,
/// 64·kb bytes) and one packed weight panel (`b`, 64·kb bytes). Errors on other lengths.
pub fn gemm_w8a8_4x4c16(_cpu: Neon, a: &[i8], b: &[i8], kb: usize, tile: &mut [i32]) -> Result<()> {
    crate::tier::hit(crate::Tier::Neon);
    crate::pack::check_ukernel(
        "aarch64.neon.gemm_w8a8_4x4c16",
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
    let mut acc = [[vdupq_n_s32(0); NR]; MR];
    let (a_blocks, _) = a.as_chunks::<{ MR * KR }>();
    let (b_blocks, _) = b.as_chunks::<{ NR * KR }>();
    for (ab, bb) in a_blocks.iter().zip(b_blocks) {
        // SAFETY: each load reads 16 bytes at offset 16·i < 64 of a 64-byte block.
        let (x, w) = unsafe {
            (
                [0, 1, 2, 3].map(|i| vld1q_s8(ab.as_ptr().add(16 * i))),
                [0, 1, 2, 3].map(|i| vld1q_s8(bb.as_ptr().add(16 * i))),
            )
        };
        for r in 0..MR {
            for c in 0..NR {
                let p = vmull_s8(vget_low_s8(x[r]), vget_low_s8(w[c]));
                let p = vmlal_high_s8(p, x[r], w[c]);
                acc[r][c] = vpadalq_s16(acc[r][c], p);
            }
        }
    }
    acc.map(|row| [reduce_row(row)])
}

crate::aarch64::drive::gemm_entries! {
    token: Neon,
    tier: Neon,
    features: "neon",
    packed: gemm_w8a8_4x4c16_packed,
    mr: MR,
    vectors: 1,
    kr: KR,
}
