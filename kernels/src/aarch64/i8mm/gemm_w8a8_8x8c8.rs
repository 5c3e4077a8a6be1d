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
    unsafe { kernel(a, b, kb, tile) };
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

/// # Safety
/// `a.len() == b.len() == 64·kb`, `tile.len() == 64`, and the CPU has i8mm.
#[target_feature(enable = "neon,i8mm")]
unsafe fn kernel(a: &[i8], b: &[i8], kb: usize, tile: &mut [i32]) {
    // acc[rp][cp]: rows 2rp, 2rp+1 × channels 2cp, 2cp+1.
    let mut acc = [[vdupq_n_s32(0); NR / 2]; MR / 2];
    // `chunks_exact` of the block size keeps bounds checks out of the loop.
    for (ab, bb) in a
        .chunks_exact(MR * KR)
        .zip(b.chunks_exact(NR * KR))
        .take(kb)
    {
        // SAFETY: each load reads 16 bytes at offset 16·i < 64 of a 64-byte block slice.
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
    for (rp, acc_r) in acc.iter().enumerate() {
        for (cp, &acc_rc) in acc_r.iter().enumerate() {
            let mut v = [0i32; 4];
            // SAFETY: stores 4 i32 into a 4-element local array.
            unsafe { vst1q_s32(v.as_mut_ptr(), acc_rc) };
            let (r, c) = (2 * rp, 2 * cp);
            tile[r * NR + c] = v[0];
            tile[r * NR + c + 1] = v[1];
            tile[(r + 1) * NR + c] = v[2];
            tile[(r + 1) * NR + c + 1] = v[3];
        }
    }
}
