//! W8A8 GEMM micro-kernel, 4 rows × 4 output channels, K in blocks of 16, NEON + SDOT.
//!
//! `sdot vd.4s, vn.16b, vm.16b` adds four 4-byte dot products into four i32 lanes: 64 MACs per
//! instruction with no widening steps. Same packed layout as the NEON kernel (one row's or one
//! channel's 16 k values per register); each (row, channel) pair keeps a 4-lane partial-sum
//! vector reduced once at the end. Per 16-k block: 8 loads and 16 `sdot` for 1024 MACs.
//! The packed entry runs every tile through `aarch64::drive` (fold subtracted in registers).
//! `vdotq_s32` is not stable on our toolchain, hence the one-instruction `asm!` helper.

use crate::Result;
use crate::cpu::DotProd;
use std::arch::aarch64::*;
use std::arch::asm;

use crate::aarch64::drive::reduce_row;

const MR: usize = 4;
const NR: usize = 4;
const KR: usize = 16;

/// Overwrites the row-major 4×4 `tile` with `Σ a·w` of one packed activation panel (`a`,
/// 64·kb bytes) and one packed weight panel (`b`, 64·kb bytes). Errors on other lengths.
pub fn gemm_w8a8_4x4c16(
    _cpu: DotProd,
    a: &[i8],
    b: &[i8],
    kb: usize,
    tile: &mut [i32],
) -> Result<()> {
    crate::tier::hit(crate::Tier::DotProd);
    crate::pack::check_ukernel(
        "aarch64.dotprod.gemm_w8a8_4x4c16",
        (MR, NR, KR),
        a,
        b,
        kb,
        tile,
    )?;
    // SAFETY: the token proves the CPU has dotprod; lengths were checked just above.
    unsafe { kernel(a, b, tile) };
    Ok(())
}

/// `acc.s[i] += Σⱼ a.b[4i+j]·b.b[4i+j]` (the SDOT instruction, signed bytes).
#[target_feature(enable = "neon,dotprod")]
#[inline]
fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: SDOT only reads and writes the named vector registers; `dotprod` is enabled on
    // this function, so the instruction exists on every CPU that can call it.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// The panel product as 4 rows of one four-channel vector (blocks past the shorter operand are
/// ignored; callers pass matching lengths).
#[target_feature(enable = "neon,dotprod")]
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
                acc[r][c] = sdot(acc[r][c], x[r], w[c]);
            }
        }
    }
    acc.map(|row| [reduce_row(row)])
}

crate::aarch64::drive::gemm_entries! {
    token: DotProd,
    tier: DotProd,
    features: "neon,dotprod",
    packed: gemm_w8a8_4x4c16_packed,
    mr: MR,
    vectors: 1,
    kr: KR,
}
