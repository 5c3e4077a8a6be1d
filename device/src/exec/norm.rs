//! Row-wise float ops that the kernel set provides: LayerNorm, softmax and GELU.
//!
//! The executor only arranges rows (and splits them across threads for large tensors); the
//! arithmetic is the [`KernelSet`](qvit_kernels::KernelSet)'s.

use super::Ctx;
use crate::graph::GeluKind;
use qvit_kernels::Result as KResult;
use rayon::prelude::*;

/// Below this many elements a row op stays on the calling thread: splitting costs more.
const PAR_MIN_ELEMS: usize = 32 * 1024;

/// Splits `len` elements of rows of `row_len` into per-thread chunks, or `None` to stay serial.
fn par_chunk(ctx: &Ctx, len: usize, row_len: usize) -> Option<usize> {
    if ctx.threads <= 1 || len < PAR_MIN_ELEMS || row_len == 0 {
        return None;
    }
    let rows = len / row_len;
    let per = rows.div_ceil(ctx.threads).max(1);
    Some(per * row_len)
}

/// LayerNorm over rows of `gamma.len()`.
pub(crate) fn layer_norm(
    ctx: &Ctx,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) -> KResult<()> {
    let ks = ctx.ks;
    match (ctx.pool, par_chunk(ctx, x.len(), gamma.len())) {
        (Some(pool), Some(chunk)) => pool.install(|| {
            x.par_chunks(chunk)
                .zip(out.par_chunks_mut(chunk))
                .try_for_each(|(xc, oc)| ks.layer_norm_f32(xc, gamma, beta, eps, oc))
        }),
        _ => ks.layer_norm_f32(x, gamma, beta, eps, out),
    }
}

/// Softmax of rows of `row_len`, in place.
pub(crate) fn softmax_rows(ctx: &Ctx, x: &mut [f32], row_len: usize) -> KResult<()> {
    let ks = ctx.ks;
    match (ctx.pool, par_chunk(ctx, x.len(), row_len)) {
        (Some(pool), Some(chunk)) => pool.install(|| {
            x.par_chunks_mut(chunk)
                .try_for_each(|c| ks.softmax_f32(c, row_len))
        }),
        _ => ks.softmax_f32(x, row_len),
    }
}

/// GELU in place.
pub(crate) fn gelu(ctx: &Ctx, kind: GeluKind, x: &mut [f32]) {
    let ks = ctx.ks;
    let f = move |c: &mut [f32]| match kind {
        GeluKind::Erf => ks.gelu_erf_f32(c),
        GeluKind::Tanh => ks.gelu_tanh_f32(c),
    };
    match (ctx.pool, par_chunk(ctx, x.len(), 1)) {
        (Some(pool), Some(chunk)) => pool.install(|| x.par_chunks_mut(chunk).for_each(f)),
        _ => f(x),
    }
}

/// Softmax along one axis of a tensor seen as `[outer, len, inner]` (outer implied by the length).
#[derive(Clone, Debug)]
pub(crate) struct SoftmaxPlan {
    pub len: usize,
    pub inner: usize,
}

impl SoftmaxPlan {
    /// Plans softmax of `shape` along `axis`; `None` when the axis does not exist.
    pub fn new(shape: &[usize], axis: usize) -> Option<Self> {
        let len = *shape.get(axis)?;
        Some(SoftmaxPlan {
            len,
            inner: shape[axis + 1..].iter().product(),
        })
    }

    /// Scratch elements the strided fallback needs.
    pub fn scratch_len(&self) -> usize {
        if self.inner == 1 {
            0
        } else {
            self.len * self.inner
        }
    }

    /// Softmax of `x` into `out`.
    pub fn run(&self, ctx: &Ctx, x: &[f32], out: &mut [f32], scratch: &mut [f32]) -> KResult<()> {
        if self.len == 0 || x.is_empty() {
            return Ok(());
        }
        if self.inner == 1 {
            out.copy_from_slice(x);
            return softmax_rows(ctx, out, self.len);
        }
        // Not the last axis: transpose each [len, inner] block to [inner, len] rows, run the
        // row kernel, transpose back.
        let block = self.len * self.inner;
        let rows = &mut scratch[..block];
        for (xb, ob) in x.chunks_exact(block).zip(out.chunks_exact_mut(block)) {
            for l in 0..self.len {
                for i in 0..self.inner {
                    rows[i * self.len + l] = xb[l * self.inner + i];
                }
            }
            ctx.ks.softmax_f32(rows, self.len)?;
            for l in 0..self.len {
                for i in 0..self.inner {
                    ob[l * self.inner + i] = rows[i * self.len + l];
                }
            }
        }
        Ok(())
    }
}
