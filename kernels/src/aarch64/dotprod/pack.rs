//! Activation packing of the 8×8c4 kernel: full 8-row panels are transposed 16 columns at a
//! time in registers instead of block by block (the portable copy does the ragged rest). Under
//! qemu the block-by-block copy took 21 M instructions per DeiT-Tiny inference, more than any
//! float op.

use crate::cpu::DotProd;
use crate::pack::pack_panels_into_with;
use std::arch::aarch64::*;

/// Packs `[rows, k]` activations into the kernel's 8-row, 4-column-block panels (see
/// `crate::pack`), adding 128 to every value when `flip`. Lengths are checked by the caller.
pub(crate) fn pack_a_8x4(
    _cpu: DotProd,
    out: &mut Vec<i8>,
    src: &[i8],
    rows: usize,
    k: usize,
    flip: bool,
) {
    crate::tier::hit(crate::Tier::DotProd);
    // SAFETY: NEON is part of the aarch64 baseline (the token proves far more).
    let copy = |panel: &mut [i8], rows: &[i8], k: usize| unsafe { transpose_8x16(panel, rows, k) };
    pack_panels_into_with(out, src, rows, k, 8, 4, flip, Some(&copy));
}

/// Packs the first `16·⌊k/16⌋` columns of one full 8-row panel into 4-byte blocks (`panel` is
/// the panel's `32·kb` output bytes, `rows` its `8·k` source bytes) and returns the number of
/// blocks written. Each group of 16 columns is an 8 × 4 matrix of `u32`, transposed with
/// `trn1`/`trn2` on 32- and 64-bit lanes: 8 loads, 16 permutes and 8 stores for 128 bytes.
#[target_feature(enable = "neon")]
fn transpose_8x16(panel: &mut [i8], rows: &[i8], k: usize) -> usize {
    let groups = k / 16;
    // SAFETY: each load reads the 16 bytes of row `r`,
    // columns 16g..16g+16, inside `rows` (r < 8, g < k/16, rows.len() = 8k).
    let load = |r: usize, g: usize| unsafe {
        let bytes = &rows[r * k + 16 * g..][..16];
        vreinterpretq_u32_s8(vld1q_s8(bytes.as_ptr()))
    };
    // Lane j (columns 4j..4j+4) of four rows, gathered into one register per j.
    let transpose4 = |x: [uint32x4_t; 4]| -> [uint32x4_t; 4] {
        let (t0, t1) = (vtrn1q_u32(x[0], x[1]), vtrn2q_u32(x[0], x[1]));
        let (t2, t3) = (vtrn1q_u32(x[2], x[3]), vtrn2q_u32(x[2], x[3]));
        let wide = |v| vreinterpretq_u64_u32(v);
        let narrow = |v| vreinterpretq_u32_u64(v);
        [
            narrow(vtrn1q_u64(wide(t0), wide(t2))),
            narrow(vtrn1q_u64(wide(t1), wide(t3))),
            narrow(vtrn2q_u64(wide(t0), wide(t2))),
            narrow(vtrn2q_u64(wide(t1), wide(t3))),
        ]
    };
    let (blocks, _) = panel.as_chunks_mut::<32>();
    for (g, dst) in blocks.chunks_exact_mut(4).take(groups).enumerate() {
        let lo = transpose4([load(0, g), load(1, g), load(2, g), load(3, g)]);
        let hi = transpose4([load(4, g), load(5, g), load(6, g), load(7, g)]);
        for ((d, l), h) in dst.iter_mut().zip(lo).zip(hi) {
            // SAFETY: `d` is 32 bytes: rows 0–3 go to bytes 0..16, rows 4–7 to 16..32.
            unsafe {
                vst1q_u32(d.as_mut_ptr().cast(), l);
                vst1q_u32(d.as_mut_ptr().add(16).cast(), h);
            }
        }
    }
    4 * groups
}
