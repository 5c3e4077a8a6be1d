//! Reductions over any set of axes, reduced axes kept with size 1.
//!
//! The input is walked once with the output's strides zeroed on reduced axes, so every input
//! element lands on its output slot. Reductions over trailing axes become contiguous runs summed
//! in f64; other layouts accumulate element-wise in the output.

use super::layout::{Walk, contiguous_strides};
use crate::graph::ReduceOp;

/// A planned reduction.
#[derive(Clone, Debug)]
pub(crate) struct ReducePlan {
    op: ReduceOp,
    /// Operands: 0 = output (stride 0 on reduced axes), 1 = input (contiguous).
    walk: Walk<2>,
    /// Number of input elements folded into each output element.
    count: usize,
}

impl ReducePlan {
    /// Plans the reduction of `x` over `axes`; `None` when `out` is not `x` with those axes set
    /// to 1 or an axis is out of range.
    pub fn new(op: ReduceOp, x: &[usize], axes: &[usize], out: &[usize]) -> Option<Self> {
        if out.len() != x.len() || axes.iter().any(|&a| a >= x.len()) {
            return None;
        }
        let mut expect = x.to_vec();
        let mut count = 1usize;
        for (i, e) in expect.iter_mut().enumerate() {
            if axes.contains(&i) {
                count *= *e;
                *e = 1;
            }
        }
        if expect != out {
            return None;
        }
        let mut so = contiguous_strides(out);
        for &a in axes {
            so[a] = 0;
        }
        let si = contiguous_strides(x);
        Some(ReducePlan {
            op,
            walk: Walk::new(x, [&so, &si]),
            count,
        })
    }

    /// Reduces `x` into `out`.
    pub fn run(&self, x: &[f32], out: &mut [f32]) {
        match self.op {
            ReduceOp::Sum | ReduceOp::Mean => self.fold(x, out, 0.0, |v| v, |a, b| a + b),
            ReduceOp::MeanOfSquares => self.fold(x, out, 0.0, |v| v * v, |a, b| a + b),
            ReduceOp::Max => self.fold(x, out, f32::NEG_INFINITY, |v| v, f32::max),
            ReduceOp::Min => self.fold(x, out, f32::INFINITY, |v| v, f32::min),
        }
        if matches!(self.op, ReduceOp::Mean | ReduceOp::MeanOfSquares) && self.count > 0 {
            let inv = 1.0 / self.count as f64;
            out.iter_mut().for_each(|v| *v = (*v as f64 * inv) as f32);
        }
    }

    #[inline(always)]
    fn fold(
        &self,
        x: &[f32],
        out: &mut [f32],
        init: f32,
        map: impl Fn(f32) -> f32 + Copy,
        combine: impl Fn(f32, f32) -> f32 + Copy,
    ) {
        out.fill(init);
        let n = self.walk.inner_len;
        let [so, si] = self.walk.inner_strides;
        let additive = init == 0.0;
        self.walk.for_each_run([0, 0], |[o, i]| match (so, si) {
            (0, 1) if additive => {
                let s: f64 = x[i..i + n].iter().map(|&v| map(v) as f64).sum();
                out[o] = (out[o] as f64 + s) as f32;
            }
            (0, 1) => out[o] = x[i..i + n].iter().fold(out[o], |a, &v| combine(a, map(v))),
            (1, 1) => {
                for (y, &v) in out[o..o + n].iter_mut().zip(&x[i..i + n]) {
                    *y = combine(*y, map(v));
                }
            }
            _ => {
                for t in 0..n {
                    out[o + t * so] = combine(out[o + t * so], map(x[i + t * si]));
                }
            }
        });
    }
}
