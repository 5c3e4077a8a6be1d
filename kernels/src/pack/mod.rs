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
//! Rows past `rows` and columns past `k` are zero (128 in sign-flipped activations), so weight
//! padding adds `x·0` to every dot product, padded rows are never stored, and kernels never read
//! outside their slices. This one layout serves every kernel: for the dot
//! kernels (kr = 16) a row's block is one 128-bit register; for SMMLA (kr = 8) two rows' blocks
//! form the 2×8 operand; for AVX2 (kr = 2) a block holds the (k, k+1) pairs `vpmaddwd` wants.

#[cfg(target_arch = "x86_64")]
mod pairs_sse2;

/// Number of `kr`-blocks covering `k`.
pub(crate) fn k_blocks(k: usize, kr: usize) -> usize {
    k.div_ceil(kr)
}

/// Packs row-major `src` (`rows × k`, checked by the caller) into panels of `p` rows and blocks of
/// `kr` columns, zero-padded, into a reused buffer (no allocation once it is large enough).
/// Output length: `⌈rows/p⌉ · p · ⌈k/kr⌉ · kr`. With `flip`, 128 is added to every value (the
/// sign-bit flip that turns an i8 into the u8 `v + 128` for kernels multiplying unsigned by
/// signed bytes); flipped padding reads 128 instead of 0, which is harmless because padded
/// columns only meet zero weights and padded rows are never stored (weights, packed unflipped,
/// keep zero padding).
pub(crate) fn pack_panels_into(
    out: &mut Vec<i8>,
    src: &[i8],
    rows: usize,
    k: usize,
    p: usize,
    kr: usize,
    flip: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if kr == 2 {
        let copy =
            |panel: &mut [i8], rows: &[i8], k: usize| pairs_sse2::pairs_copy(panel, rows, k, p);
        return pack_panels_into_with(out, src, rows, k, p, kr, flip, Some(&copy));
    }
    pack_panels_into_with(out, src, rows, k, p, kr, flip, None)
}

/// A tier's faster copy of the leading columns of one full panel: `(panel bytes, the panel's
/// `p·k` source bytes, k)` packs some whole blocks and returns how many `kr`-column blocks of
/// every row it wrote; the portable copy does the rest.
pub(crate) type FullPanelCopy<'a> = &'a dyn Fn(&mut [i8], &[i8], usize) -> usize;

/// [`pack_panels_into`] with a tier's [`FullPanelCopy`] for full panels.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_panels_into_with(
    out: &mut Vec<i8>,
    src: &[i8],
    rows: usize,
    k: usize,
    p: usize,
    kr: usize,
    flip: bool,
    fast: Option<FullPanelCopy>,
) {
    let kb = k_blocks(k, kr);
    let panels = rows.div_ceil(p);
    out.clear();
    out.resize(panels * p * kb * kr, 0);
    if kb == 0 {
        return;
    }
    // The kernels' block sizes get a copy of whole `[i8; KR]` blocks (one register move each);
    // any other size takes the byte loop.
    match kr {
        2 => pack_blocks::<2>(out, &src[..rows * k], k, p, kb, fast),
        4 => pack_blocks::<4>(out, &src[..rows * k], k, p, kb, fast),
        8 => pack_blocks::<8>(out, &src[..rows * k], k, p, kb, fast),
        16 => pack_blocks::<16>(out, &src[..rows * k], k, p, kb, fast),
        _ => pack_bytes(out, src, rows, k, p, kr, kb),
    }
    if flip {
        // One linear pass vectorises; flipping inside the strided block copy does not. It also
        // flips the padding to 128, which is harmless: padded columns meet zero weights and
        // padded rows are never stored.
        for v in out.iter_mut() {
            *v = (*v as u8 ^ 0x80) as i8;
        }
    }
}

/// Packs rows block by block with `KR` known at compile time; `out` is already sized and zeroed.
fn pack_blocks<const KR: usize>(
    out: &mut [i8],
    src: &[i8],
    k: usize,
    p: usize,
    kb: usize,
    fast: Option<FullPanelCopy>,
) {
    let panels = out.chunks_exact_mut(p * kb * KR);
    for (panel, panel_src) in panels.zip(src.chunks(p * k)) {
        let done = match fast {
            Some(copy) if panel_src.len() == p * k => copy(panel, panel_src, k),
            _ => 0,
        };
        let (blocks, _) = panel.as_chunks_mut::<KR>();
        let blocks = &mut blocks[done * p..];
        for (pr, row) in panel_src.chunks_exact(k).enumerate() {
            let (full, tail) = row[done * KR..].as_chunks::<KR>();
            // Block `blk` of row `pr` sits at block index `blk·p + pr` of the panel.
            for (d, s) in blocks.iter_mut().skip(pr).step_by(p).zip(full) {
                *d = *s;
            }
            if !tail.is_empty() {
                blocks[full.len() * p + pr][..tail.len()].copy_from_slice(tail);
            }
        }
    }
}

/// Packing for block sizes without a specialised copy.
fn pack_bytes(out: &mut [i8], src: &[i8], rows: usize, k: usize, p: usize, kr: usize, kb: usize) {
    for (r, row) in src.chunks_exact(k).take(rows).enumerate() {
        let (panel, pr) = (r / p, r % p);
        for (blk, chunk) in row.chunks(kr).enumerate() {
            let at = ((panel * kb + blk) * p + pr) * kr;
            out[at..at + chunk.len()].copy_from_slice(chunk);
        }
    }
}

/// The block-by-block packing, as a reference for the tiers' faster copies.
#[cfg(test)]
pub(crate) fn pack_bytes_for_test(
    src: &[i8],
    rows: usize,
    k: usize,
    p: usize,
    kr: usize,
) -> Vec<i8> {
    let kb = k_blocks(k, kr);
    let mut out = vec![0; rows.div_ceil(p) * p * kb * kr];
    pack_bytes(&mut out, src, rows, k, p, kr, kb);
    out
}

/// Checks a whole-GEMM loop's operands: `ap` holds the ⌈m/mr⌉ activation panels, `b` the
/// ⌈n/nr⌉ weight panels (both `kb` blocks of `kr`), `fold` one value per channel and `out` the
/// `m × n` result with rows `ldo ≥ n` apart (its last row may stop at column `n`). Every
/// kernel's packed entry calls it before touching raw pointers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_packed(
    name: &'static str,
    (mr, nr, kr): (usize, usize, usize),
    ap: &[i8],
    m: usize,
    b: &[i8],
    n: usize,
    kb: usize,
    fold: &[i32],
    out: &[i32],
    ldo: usize,
) -> crate::Result<()> {
    // Bytes of the panels covering `rows` rows, `None` on overflow (an absurd `kb`).
    let panels = |rows: usize, p: usize| rows.div_ceil(p).checked_mul(p * kr)?.checked_mul(kb);
    let a_ok = Some(ap.len()) == panels(m, mr);
    let b_ok = Some(b.len()) == panels(n, nr);
    // Values the rows reach: `(m − 1)·ldo + n`, `None` on overflow.
    let reach = m
        .checked_sub(1)
        .map_or(Some(0), |r| r.checked_mul(ldo)?.checked_add(n));
    let out_ok = ldo >= n && reach.is_some_and(|r| r <= out.len());
    if !(a_ok && b_ok && out_ok && fold.len() == n && kb > 0) {
        return Err(crate::Error::Shape {
            op: name,
            what: format!(
                "m {m} n {n} kb {kb} ldo {ldo}: panels {} and {} bytes, fold {}, out {}",
                ap.len(),
                b.len(),
                fold.len(),
                out.len()
            ),
        });
    }
    Ok(())
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
