//! Slice-level float ops over the branch-free math of [`super::math`], shaped for LLVM's SLP
//! vectoriser: everything works on blocks of [`W`] lanes held in `[f32; W]` arrays (one AVX
//! register, two NEON registers), reductions keep `W` partial results (LLVM may not reassociate
//! one floating-point accumulator), and a ragged tail is copied into a padded block so it takes
//! the same vector path. Inputs are checked by the public entry points.

use super::math;

/// Lanes per block.
const W: usize = 8;

/// Applies `f` to every element. The bulk is one plain loop (the loop vectoriser turns it into
/// clean `W`-lane code; per-block closures made LLVM transpose blocks instead). A ragged tail is
/// handled as the last full block, read before the bulk loop overwrites it (so `f` sees original
/// values) and written whole afterwards: the overlapping lanes get the very values the bulk loop
/// wrote, and there is no variable-length copy (a `memcpy` call per row).
#[inline(always)]
fn map_elems(x: &mut [f32], pad: f32, f: impl Fn(f32) -> f32) {
    let n = x.len();
    let rem = n % W;
    if n < W {
        let b = map_block(padded(x, pad), &f);
        for (t, v) in x.iter_mut().zip(b) {
            *t = v;
        }
        return;
    }
    let last = last_block(x);
    for v in x[..n - rem].iter_mut() {
        *v = f(*v);
    }
    if rem != 0 {
        x[n - W..].copy_from_slice(&map_block(last, &f));
    }
}

/// `f` on each lane. A plain loop, not `array::map`: that goes through a non-inlined `try_map`
/// compiled without the caller's target features (scalar code, `fmaf` library calls).
#[inline(always)]
fn map_block(mut b: [f32; W], f: impl Fn(f32) -> f32) -> [f32; W] {
    for v in b.iter_mut() {
        *v = f(*v);
    }
    b
}

/// The last `W` elements of `x` (`x.len() ≥ W`) as a fixed-size block.
#[inline(always)]
fn last_block(x: &[f32]) -> [f32; W] {
    let mut b = [0.0; W];
    b.copy_from_slice(&x[x.len() - W..]);
    b
}

/// A slice shorter than `W` in a block padded with `pad`.
#[inline(always)]
fn padded(tail: &[f32], pad: f32) -> [f32; W] {
    let mut b = [pad; W];
    for (d, &s) in b.iter_mut().zip(tail) {
        *d = s;
    }
    b
}

/// Visits every block of `x` read-only. A ragged tail is visited as the last full block with
/// the lanes already seen replaced by `pad` (lane selects, no variable-length copy).
#[inline(always)]
fn for_blocks(x: &[f32], pad: f32, mut f: impl FnMut(&[f32; W])) {
    let n = x.len();
    let rem = n % W;
    if n < W {
        f(&padded(x, pad));
        return;
    }
    for c in x[..n - rem].chunks_exact(W) {
        let mut b = [0.0; W];
        b.copy_from_slice(c);
        f(&b);
    }
    if rem != 0 {
        let last = last_block(x);
        f(&std::array::from_fn(|i| {
            if i + rem >= W { last[i] } else { pad }
        }));
    }
}

/// Sum of the lanes by a pairwise tree (rounding error grows with log₂ W, not W).
#[inline(always)]
fn hsum(mut acc: [f32; W]) -> f32 {
    let mut width = W;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    acc[0]
}

/// Largest element, NaN-ignoring like `f32::max` (a NaN row still turns NaN in the exp pass).
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; W];
    for_blocks(row, f32::NEG_INFINITY, |b| {
        for i in 0..W {
            acc[i] = if b[i] > acc[i] { b[i] } else { acc[i] };
        }
    });
    acc.into_iter().fold(f32::NEG_INFINITY, f32::max)
}

/// Softmax of each row, in place; `x.len()` is a multiple of `row_len > 0`. (NEON has its own
/// exponential loop, see `softmax_with`.)
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn softmax_f32(x: &mut [f32], row_len: usize) {
    softmax_with(x, row_len, |row, max| {
        map_elems(row, 0.0, |v| math::exp_f32(v - max))
    });
}

/// Softmax whose exponentials come from `exp_shifted(row, max)`, which must replace every `v`
/// of the row by `math::exp_f32(v − max)` bit for bit (a tier's own loop may do it faster).
#[inline(always)]
pub(crate) fn softmax_with(x: &mut [f32], row_len: usize, exp_shifted: impl Fn(&mut [f32], f32)) {
    for row in x.chunks_exact_mut(row_len) {
        let max = row_max(row);
        exp_shifted(row, max);
        let mut acc = [0.0f32; W];
        for_blocks(row, 0.0, |b| {
            for i in 0..W {
                acc[i] += b[i];
            }
        });
        let inv = 1.0 / hsum(acc);
        map_elems(row, 0.0, |v| v * inv);
    }
}

/// LayerNorm of each row of `gamma.len()`; lengths checked by the caller. Two passes (mean, then
/// centred variance) so a large mean cannot cancel the variance.
#[inline(always)]
pub(crate) fn layer_norm_f32(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let c = gamma.len();
    let inv_c = 1.0 / c as f32;
    for (row, orow) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
        let mut acc = [0.0f32; W];
        for_blocks(row, 0.0, |b| {
            for i in 0..W {
                acc[i] += b[i];
            }
        });
        let mean = hsum(acc) * inv_c;
        let mut acc = [0.0f32; W];
        // Padding with the mean contributes (mean − mean)² = 0.
        for_blocks(row, mean, |b| {
            for i in 0..W {
                let d = b[i] - mean;
                acc[i] = d.mul_add(d, acc[i]);
            }
        });
        let inv_std = 1.0 / (hsum(acc) * inv_c + eps).sqrt();
        for (((o, &v), &g), &b) in orow.iter_mut().zip(row).zip(gamma).zip(beta) {
            *o = ((v - mean) * inv_std).mul_add(g, b);
        }
    }
}

/// Exact-form GELU in place (NEON has its own loop in `aarch64::neon::math`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn gelu_erf_f32(x: &mut [f32]) {
    map_elems(x, 0.0, math::gelu_erf_f32);
}

/// Tanh-form GELU in place.
#[inline(always)]
pub(crate) fn gelu_tanh_f32(x: &mut [f32]) {
    map_elems(x, 0.0, math::gelu_tanh_f32);
}
