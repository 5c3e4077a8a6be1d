//! W8A8 GEMM micro-kernel, 8 rows × 8 output channels, K in blocks of 4, NEON + SDOT by element.
//!
//! `sdot vd.4s, vn.16b, vm.4b[i]` adds, into each of four i32 lanes, the dot product of that
//! lane's 4 bytes of `vn` with the 4 bytes of element `i` of `vm`. With 4 channels × 4 k in `vn`
//! and 4 rows × 4 k in `vm`, one instruction updates 4 channels of one row and no horizontal
//! reduction is left at the end. Per 4-k block: 4 loads (2 for the 8 rows, 2 for the 8 channels)
//! and 16 `sdot` for 256 MACs, 12.8 MACs per instruction where the 4×4×16 kernel's 8 loads and
//! 16 `sdot` give 10.7 and end with a reduction per tile. 16 accumulators and 4 operands use 20
//! of the 32 vector registers. `vdotq_laneq_s32` is not stable on our toolchain, hence `asm!`.

use crate::Result;
use crate::cpu::DotProd;
use std::arch::aarch64::*;
use std::arch::asm;

const MR: usize = 8;
const NR: usize = 8;
const KR: usize = 4;

/// Overwrites the row-major 8×8 `tile` with `Σ a·w` of one packed activation panel (`a`,
/// 32·kb bytes) and one packed weight panel (`b`, 32·kb bytes). Errors on other lengths.
pub fn gemm_w8a8_8x8c4(
    _cpu: DotProd,
    a: &[i8],
    b: &[i8],
    kb: usize,
    tile: &mut [i32],
) -> Result<()> {
    crate::tier::hit(crate::Tier::DotProd);
    let name = "aarch64.dotprod.gemm_w8a8_8x8c4";
    crate::pack::check_ukernel(name, (MR, NR, KR), a, b, kb, tile)?;
    // SAFETY: the token proves the CPU has dotprod; lengths were checked just above.
    unsafe { kernel(a, b, tile) };
    Ok(())
}

/// `acc.s[j] += Σₜ w.b[4j+t]·x.b[4L+t]` (SDOT by element, signed bytes) for element `L`.
macro_rules! sdot_lane {
    ($name:ident, $lane:literal) => {
        #[target_feature(enable = "neon,dotprod")]
        #[inline]
        fn $name(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
            let mut acc = acc;
            // SAFETY: SDOT only reads and writes the named vector registers; `dotprod` is
            // enabled on this function, so the instruction exists on every CPU that can call it.
            unsafe {
                asm!(
                    concat!("sdot {acc:v}.4s, {w:v}.16b, {x:v}.4b[", $lane, "]"),
                    acc = inout(vreg) acc,
                    w = in(vreg) w,
                    x = in(vreg) x,
                    options(pure, nomem, nostack, preserves_flags),
                );
            }
            acc
        }
    };
}
sdot_lane!(sdot_lane0, 0);
sdot_lane!(sdot_lane1, 1);
sdot_lane!(sdot_lane2, 2);
sdot_lane!(sdot_lane3, 3);

/// The panel product as 8 rows of two four-channel vectors (blocks past the shorter operand are
/// ignored; callers pass matching lengths).
#[target_feature(enable = "neon,dotprod")]
#[inline]
fn dot_tile(a: &[i8], b: &[i8]) -> [[int32x4_t; 2]; MR] {
    let mut acc = [[vdupq_n_s32(0); 2]; MR];
    let (a_blocks, _) = a.as_chunks::<{ MR * KR }>();
    let (b_blocks, _) = b.as_chunks::<{ NR * KR }>();
    for (ab, bb) in a_blocks.iter().zip(b_blocks) {
        // SAFETY: each load reads 16 bytes at offset 0 or 16 of a 32-byte block.
        let (x, w) = unsafe {
            (
                [vld1q_s8(ab.as_ptr()), vld1q_s8(ab.as_ptr().add(16))],
                [vld1q_s8(bb.as_ptr()), vld1q_s8(bb.as_ptr().add(16))],
            )
        };
        for (half, &xr) in x.iter().enumerate() {
            let rows = &mut acc[4 * half..4 * half + 4];
            for (c, &wc) in w.iter().enumerate() {
                rows[0][c] = sdot_lane0(rows[0][c], wc, xr);
                rows[1][c] = sdot_lane1(rows[1][c], wc, xr);
                rows[2][c] = sdot_lane2(rows[2][c], wc, xr);
                rows[3][c] = sdot_lane3(rows[3][c], wc, xr);
            }
        }
    }
    acc
}

crate::aarch64::drive::gemm_entries! {
    token: DotProd,
    tier: DotProd,
    features: "neon,dotprod",
    packed: gemm_w8a8_8x8c4_packed,
    mr: MR,
    vectors: 2,
    kr: KR,
}
