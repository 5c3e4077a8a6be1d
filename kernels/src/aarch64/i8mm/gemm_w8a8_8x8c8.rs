//! W8A8 GEMM micro-kernel, 8 rows × 8 output channels, K in blocks of 8, NEON + I8MM (SMMLA).
//!
//! `smmla vd.4s, vn.16b, vm.16b` treats `vn` as a 2×8 int8 matrix (two rows), `vm` as another
//! 2×8 (two output channels) and adds the 2×2 product `vn·vmᵀ` into `vd` as
//! `[r0·c0, r0·c1, r1·c0, r1·c1]`: 128 MACs per instruction. The shared packed layout with kr = 8
//! puts rows 0‖1, 2‖3, … (and channels 0‖1, 2‖3, …) in consecutive 16 bytes, which is exactly that
//! operand order. Per 8-k block: 4 `ldp` (8 registers) and 16 `smmla` for 512 MACs; a 4×4 tile
//! (4 `smmla` per 2 `ldp`) was load-bound at 66 % of the SMMLA peak in llvm-mca (neoverse-n2). `vmmlaq_s32` is unstable on
//! our toolchain, hence the one-instruction `asm!` helper.

use crate::Result;
use crate::cpu::I8mm;
use std::arch::aarch64::*;
use std::arch::asm;

const MR: usize = 8;
const NR: usize = 8;
const KR: usize = 8;

/// Overwrites the row-major 8×8 `tile` with `Σ a·w` of one packed activation panel (`a`,
/// 64·kb bytes) and one packed weight panel (`b`, 64·kb bytes). Errors on other lengths.
pub fn gemm_w8a8_8x8c8(_cpu: I8mm, a: &[i8], b: &[i8], kb: usize, tile: &mut [i32]) -> Result<()> {
    crate::tier::hit(crate::Tier::I8mm);
    crate::pack::check_ukernel("aarch64.i8mm.gemm_w8a8_8x8c8", (MR, NR, KR), a, b, kb, tile)?;
    // SAFETY: the token proves the CPU has i8mm; lengths were checked just above.
    unsafe { kernel(a, b, tile) };
    Ok(())
}

/// `acc += a(2×8)·b(2×8)ᵀ` (the SMMLA instruction, signed bytes).
#[target_feature(enable = "neon,i8mm")]
#[inline]
fn smmla(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: SMMLA only reads and writes the named vector registers; `i8mm` is enabled on this
    // function, so the instruction exists on every CPU that can call it.
    unsafe {
        asm!(
            "smmla {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// The panel product as 8 rows of two four-channel vectors (blocks past the shorter operand are
/// ignored; callers pass matching lengths).
#[target_feature(enable = "neon,i8mm")]
#[inline]
fn dot_tile(a: &[i8], b: &[i8]) -> [[int32x4_t; 2]; MR] {
    // acc[rp][cp]: rows 2rp, 2rp+1 × channels 2cp, 2cp+1.
    let mut acc = [[vdupq_n_s32(0); NR / 2]; MR / 2];
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
        for (acc_r, &xr) in acc.iter_mut().zip(&x) {
            for (acc_rc, &wc) in acc_r.iter_mut().zip(&w) {
                *acc_rc = smmla(*acc_rc, xr, wc);
            }
        }
    }
    // Each 2×2 block is [r0c0, r0c1, r1c0, r1c1]: the 64-bit halves of two neighbouring
    // blocks interleave into four channels of one row.
    let half = |x: int32x4_t| vreinterpretq_s64_s32(x);
    let row = |lo: int32x4_t, hi: int32x4_t, second: bool| {
        let (lo, hi) = (half(lo), half(hi));
        vreinterpretq_s32_s64(if second {
            vzip2q_s64(lo, hi)
        } else {
            vzip1q_s64(lo, hi)
        })
    };
    std::array::from_fn(|r| {
        let (p, second) = (&acc[r / 2], r % 2 == 1);
        [row(p[0], p[1], second), row(p[2], p[3], second)]
    })
}

crate::aarch64::drive::gemm_entries! {
    token: I8mm,
    tier: I8mm,
    features: "neon,i8mm",
    packed: gemm_w8a8_8x8c8_packed,
    mr: MR,
    vectors: 2,
    kr: KR,
}
