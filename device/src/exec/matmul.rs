//! Linear and MatMul on the `gemm` crate: weights and transposed operands are read through
//! strides, so nothing is copied or repacked by the executor (gemm packs internally).

use super::Ctx;
use super::layout::broadcast_strides;
use rayon::prelude::*;

/// A row-major or strided matrix operand: element `(r, c)` is at `r·rs + c·cs`.
#[derive(Clone, Copy, Debug)]
pub struct Strides {
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

/// `dst[m×n]` (row stride `dst_rs`, unit column stride) = `lhs[m×k] · rhs[k×n]`, plus the old
/// `dst` when `accumulate`. Checks every index it will touch, so it is safe for any input: an
/// operand too short for its shape and strides panics instead of reading out of bounds.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    l: Strides,
    rhs: &[f32],
    r: Strides,
    accumulate: bool,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, s: Strides| (rows - 1) * s.rs + (cols - 1) * s.cs;
    assert!(
        last(m, n, Strides { rs: dst_rs, cs: 1 }) < dst.len(),
        "gemm dst out of bounds"
    );
    if k == 0 {
        if !accumulate {
            for row in 0..m {
                dst[row * dst_rs..row * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    assert!(last(m, k, l) < lhs.len(), "gemm lhs out of bounds");
    assert!(last(k, n, r) < rhs.len(), "gemm rhs out of bounds");
    let par = if parallel {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above prove that every element gemm addresses from (m, n, k) and the
    // strides lies inside the three slices; `dst` is borrowed mutably so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            l.cs as isize,
            l.rs as isize,
            rhs.as_ptr(),
            r.cs as isize,
            r.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    }
}

/// Fills each of the `rows` rows of `out` (length `bias.len()`) with `bias`, or zeros.
pub(crate) fn fill_rows(out: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias.filter(|b| !b.is_empty()) {
        for row in out.chunks_exact_mut(b.len()) {
            row.copy_from_slice(b);
        }
    }
}

/// `y[M×N] = x[M×K] · Wᵀ + b` with `W` stored `[N, K]`.
///
/// A constant weight is transposed once at plan time to `[K, N]`: gemm computes a row-major
/// product as `yᵀ = W·xᵀ` and runs fastest, without repacking `W` on every call, when `W` is
/// column-major, which is exactly `[K, N]` row-major.
#[derive(Clone, Debug)]
pub(crate) struct LinearPlan {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// The weight as `[K, N]`, when it is a constant.
    pub wt: Option<Vec<f32>>,
}

impl LinearPlan {
    /// Plans the layer; `weight` is the `[N, K]` constant data when the weight is constant.
    pub fn new(m: usize, n: usize, k: usize, weight: Option<&[f32]>) -> Self {
        let wt = weight.map(|w| {
            let mut t = vec![0.0; n * k];
            for (o, row) in w.chunks_exact(k.max(1)).enumerate().take(n) {
                for (j, &v) in row.iter().enumerate() {
                    t[j * n + o] = v;
                }
            }
            t
        });
        LinearPlan { m, n, k, wt }
    }

    /// Runs the layer; slice lengths were checked at plan time.
    pub fn run(&self, ctx: &Ctx, x: &[f32], w: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
        fill_rows(out, bias);
        let (w, ws) = match &self.wt {
            Some(t) => (&t[..], Strides { rs: self.n, cs: 1 }),
            None => (w, Strides { rs: 1, cs: self.k }),
        };
        ctx.maybe_parallel(|par| {
            gemm_f32(
                (self.m, self.n, self.k),
                out,
                self.n,
                x,
                Strides { rs: self.k, cs: 1 },
                w,
                ws,
                bias.is_some(),
                par,
            )
        });
    }
}

/// A batched matrix product with broadcast batch axes.
#[derive(Clone, Debug)]
pub(crate) struct MatMulPlan {
    m: usize,
    n: usize,
    k: usize,
    b_strides: Strides,
    /// Element offsets of `a` and `b` for each output matrix, in output order.
    batches: Vec<(usize, usize)>,
}

impl MatMulPlan {
    /// Plans `out[..., M, N] = a[..., M, K] · b`; `None` when the shapes do not fit.
    pub fn new(a: &[usize], b: &[usize], out: &[usize], transpose_b: bool) -> Option<Self> {
        if a.len() < 2 || b.len() < 2 || out.len() < 2 {
            return None;
        }
        let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
        let (kb, n) = if transpose_b {
            (b[b.len() - 1], b[b.len() - 2])
        } else {
            (b[b.len() - 2], b[b.len() - 1])
        };
        if kb != k || out[out.len() - 2..] != [m, n] {
            return None;
        }
        let batch = &out[..out.len() - 2];
        let sa = broadcast_strides(&a[..a.len() - 2], batch)?;
        let sb = broadcast_strides(&b[..b.len() - 2], batch)?;
        let b_strides = if transpose_b {
            Strides { rs: 1, cs: k }
        } else {
            Strides { rs: n, cs: 1 }
        };
        let mut plan = MatMulPlan {
            m,
            n,
            k,
            b_strides,
            batches: Vec::new(),
        };
        let count: usize = batch.iter().product();
        let mut idx = vec![0usize; batch.len()];
        for _ in 0..count {
            let oa: usize = idx.iter().zip(&sa).map(|(i, s)| i * s).sum();
            let ob: usize = idx.iter().zip(&sb).map(|(i, s)| i * s).sum();
            plan.batches.push((oa * m * k, ob * k * n));
            for ax in (0..idx.len()).rev() {
                idx[ax] += 1;
                if idx[ax] < batch[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
        // `b` shared by every batch and `a` laid out batch after batch: one tall GEMM.
        let shared_b = plan.batches.iter().all(|&(_, ob)| ob == 0);
        let a_stacked = plan
            .batches
            .iter()
            .enumerate()
            .all(|(i, &(oa, _))| oa == i * m * k);
        if plan.batches.len() > 1 && shared_b && a_stacked {
            plan.m *= plan.batches.len();
            plan.batches.truncate(1);
        }
        Some(plan)
    }

    /// Runs the product; slice lengths were checked at plan time.
    pub fn run(&self, ctx: &Ctx, a: &[f32], b: &[f32], out: &mut [f32]) {
        let (m, n, k) = (self.m, self.n, self.k);
        let one = |(oa, ob): (usize, usize), dst: &mut [f32], par: bool| {
            gemm_f32(
                (m, n, k),
                dst,
                n,
                &a[oa..],
                Strides { rs: k, cs: 1 },
                &b[ob..],
                self.b_strides,
                false,
                par,
            )
        };
        let mn = m * n;
        if mn == 0 {
            return;
        }
        match ctx.pool {
            Some(pool) if self.batches.len() >= ctx.threads => pool.install(|| {
                out.par_chunks_mut(mn)
                    .zip(self.batches.par_iter())
                    .for_each(|(dst, &off)| one(off, dst, false))
            }),
            _ => ctx.maybe_parallel(|par| {
                for (dst, &off) in out.chunks_mut(mn).zip(&self.batches) {
                    one(off, dst, par);
                }
            }),
        }
    }
}
