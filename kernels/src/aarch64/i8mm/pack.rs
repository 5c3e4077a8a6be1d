//! Activation packing of the 8×8c8 kernel: full 8-row panels are interleaved 16 columns at a
//! time in registers instead of block by block (the portable copy does the ragged rest). Under
//! qemu the block-by-block copy of 8-byte blocks took 11 M instructions per DeiT-Tiny inference.

use crate::cpu::I8mm;
use crate::pack::pack_panels_into_with;
use std::arch::aarch64::*;

/// Packs `[rows, k]` activations into the kernel's 8-row, 8-column-block panels (see
/// `crate::pack`), adding 128 to every value when `flip`. Lengths are checked by the caller.
pub(crate) fn pack_a_8x8(
    _cpu: I8mm,
    out: &mut Vec<i8>,
    src: &[i8],
    rows: usize,
    k: usize,
    flip: bool,
) {
    crate::tier::hit(crate::Tier::I8mm);
    // SAFETY: NEON is part of the aarch64 baseline (the token proves far more).
    let copy = |panel: &mut [i8], rows: &[i8], k: usize| unsafe { interleave_8x16(panel, rows, k) };
    pack_panels_into_with(out, src, rows, k, 8, 8, flip, Some(&copy));
}

/// Packs the first `16·⌊k/16⌋` columns of one full 8-row panel into 8-byte blocks (`panel` is
/// the panel's `64·kb` output bytes, `rows` its `8·k` source bytes) and returns the number of
/// blocks written. Of 16 columns, the low 8 bytes of the 8 rows form one block and the high 8
/// the next: `zip1`/`zip2` on 64-bit lanes of row pairs, 8 loads, 8 permutes and 8 stores for
/// 128 bytes.
#[target_feature(enable = "neon")]
fn interleave_8x16(panel: &mut [i8], rows: &[i8], k: usize) -> usize {
    let groups = k / 16;
    // SAFETY: each load reads the 16 bytes of row `r`, columns 16g..16g+16, inside `rows`
    // (r < 8, g < k/16, rows.len() = 8k).
    let load = |r: usize, g: usize| unsafe {
        let bytes = &rows[r * k + 16 * g..][..16];
        vreinterpretq_u64_s8(vld1q_s8(bytes.as_ptr()))
    };
    let (blocks, _) = panel.as_chunks_mut::<128>();
    for (g, dst) in blocks.iter_mut().take(groups).enumerate() {
        for pair in 0..4 {
            let (x, y) = (load(2 * pair, g), load(2 * pair + 1, g));
            // SAFETY: block 2g (bytes 0..64 of `dst`) gets the low halves, block 2g+1 (bytes
            // 64..128) the high halves; each store writes 16 bytes at 16·pair (+64) < 128.
            unsafe {
                vst1q_u64(dst.as_mut_ptr().add(16 * pair).cast(), vzip1q_u64(x, y));
                vst1q_u64(
                    dst.as_mut_ptr().add(64 + 16 * pair).cast(),
                    vzip2q_u64(x, y),
                );
            }
        }
    }
    2 * groups
}
