//! Panel packing shared by every GEMM tier: the layout each micro-kernel reads.
//!
//! A row-major `[rows, k]` i8 matrix (weights `[N, K]`, or activations `[M, K]`) is cut into
//! panels of `p` rows (the kernel's NR for weights, MR for activations) and each panel into
//! `kb = ⌈k / kr⌉` blocks of `kr` columns. A block stores its `p × kr` bytes row by row, so each
//! row's `kr` consecutive k values are contiguous:
//!
//! ```text
//! panel 0: block 0: r0[k0..kr] r1[k0..kr] … r(p-1)[k0..kr]   block 1: r0[kr..2kr] …
//! panel 1: …
//! ```
//!
//! Rows past `rows` and columns past `k` are zero, so padding adds `0·x` to every dot product and
//! kernels never read outside their slices. This one layout serves every kernel: for the dot
//! kernels (kr = 16) a row's block is one 128-bit register; for SMMLA (kr = 8) two rows' blocks
//! form the 2×8 operand; for AVX2 (kr = 2) a block holds the (k, k+1) pairs `vpmaddwd` wants.

/// Number of `kr`-blocks covering `k`.
pub(crate) fn k_blocks(k: usize, kr: usize) -> usize {
    k.div_ceil(kr)
}

/// Packs row-major `src` (`rows × k`, checked by the caller) into panels of `p` rows and blocks of
/// `kr` columns, zero-padded. Output length: `⌈rows/p⌉ · p · ⌈k/kr⌉ · kr`.
pub(crate) fn pack_panels(src: &[i8], rows: usize, k: usize, p: usize, kr: usize) -> Vec<i8> {
    pack_panels_offset(src, rows, k, p, kr, false)
}

/// [`pack_panels`], optionally adding 128 to every value (`flip`: the sign-bit flip that turns
/// an i8 into the u8 `v + 128` for kernels multiplying unsigned by signed bytes). Padding stays 0:
/// it only ever meets zero weights.
pub(crate) fn pack_panels_offset(
    src: &[i8],
    rows: usize,
    k: usize,
    p: usize,
    kr: usize,
    flip: bool,
) -> Vec<i8> {
    let mut out = Vec::new();
    pack_panels_into(&mut out, src, rows, k, p, kr, flip);
    out
}

/// [`pack_panels_offset`] into a reused buffer (no allocation once it is large enough).
pub(crate) fn pack_panels_into(
    out: &mut Vec<i8>,
    src: &[i8],
    rows: usize,
    k: usize,
    p: usize,
    kr: usize,
    flip: bool,
) {
    let kb = k_blocks(k, kr);
    let panels = rows.div_ceil(p);
    out.clear();
    out.resize(panels * p * kb * kr, 0);
    for r in 0..rows {
        let (panel, pr) = (r / p, r % p);
        let row = &src[r * k..(r + 1) * k];
        for (blk, chunk) in row.chunks(kr).enumerate() {
            let at = ((panel * kb + blk) * p + pr) * kr;
            let dst = &mut out[at..at + chunk.len()];
            if flip {
                for (d, &s) in dst.iter_mut().zip(chunk) {
                    *d = (s as u8 ^ 0x80) as i8;
                }
            } else {
                dst.copy_from_slice(chunk);
            }
        }
    }
}

/// Checks a micro-kernel's operands: `a` is one `mr × kb·kr` panel, `b` one `nr × kb·kr` panel,
/// `tile` holds `mr × nr` results. Every kernel calls it before touching raw pointers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_ukernel(
    name: &'static str,
    (mr, nr, kr): (usize, usize, usize),
    a: &[i8],
    b: &[i8],
    kb: usize,
    tile: &[i32],
) -> crate::Result<()> {
    if a.len() != mr * kr * kb || b.len() != nr * kr * kb || tile.len() != mr * nr {
        return Err(crate::Error::Shape {
            op: name,
            what: format!(
                "panels {} and {} bytes, tile {}, for {kb} blocks",
                a.len(),
                b.len(),
                tile.len()
            ),
        });
    }
    Ok(())
}
