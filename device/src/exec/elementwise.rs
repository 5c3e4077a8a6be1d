//! Element-wise ops: broadcasting binary ops, unary ops, ReLU.
//!
//! Binary ops walk the output with both operands' broadcast strides (see [`Walk`]); after axis
//! merging the common cases (same shape, scalar operand, operand repeated along leading axes,
//! operand constant along trailing axes) become inner runs with strides (1,1), (1,0) or (0,1),
//! each a separate tight loop the compiler vectorises.

use super::layout::{Walk, broadcast_strides, contiguous_strides};
use crate::graph::{BinaryOp, UnaryOp};

/// A planned broadcasting binary op.
#[derive(Clone, Debug)]
pub(crate) struct BinaryPlan {
    op: BinaryOp,
    /// Operands: 0 = output (contiguous), 1 = a, 2 = b.
    walk: Walk<3>,
}

impl BinaryPlan {
    /// Plans `out = a ∘ b`; `None` when an operand does not broadcast to `out`.
    pub fn new(op: BinaryOp, a: &[usize], b: &[usize], out: &[usize]) -> Option<Self> {
        let sa = broadcast_strides(a, out)?;
        let sb = broadcast_strides(b, out)?;
        let so = contiguous_strides(out);
        Some(BinaryPlan {
            op,
            walk: Walk::new(out, [&so, &sa, &sb]),
        })
    }

    /// Computes the op.
    pub fn run(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        match self.op {
            BinaryOp::Add => self.apply(a, b, out, |x, y| x + y),
            BinaryOp::Sub => self.apply(a, b, out, |x, y| x - y),
            BinaryOp::Mul => self.apply(a, b, out, |x, y| x * y),
            BinaryOp::Div => self.apply(a, b, out, |x, y| x / y),
            BinaryOp::Pow => self.apply(a, b, out, pow),
            BinaryOp::Max => self.apply(a, b, out, f32::max),
            BinaryOp::Min => self.apply(a, b, out, f32::min),
        }
    }

    #[inline(always)]
    fn apply(&self, a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Copy) {
        let n = self.walk.inner_len;
        let [_, sa, sb] = self.walk.inner_strides;
        self.walk.for_each_run([0, 0, 0], |[o, ia, ib]| {
            let out = &mut out[o..o + n];
            match (sa, sb) {
                (1, 1) => {
                    for ((y, &x), &z) in out.iter_mut().zip(&a[ia..ia + n]).zip(&b[ib..ib + n]) {
                        *y = f(x, z);
                    }
                }
                (1, 0) => {
                    let z = b[ib];
                    for (y, &x) in out.iter_mut().zip(&a[ia..ia + n]) {
                        *y = f(x, z);
                    }
                }
                (0, 1) => {
                    let x = a[ia];
                    for (y, &z) in out.iter_mut().zip(&b[ib..ib + n]) {
                        *y = f(x, z);
                    }
                }
                _ => {
                    for (i, y) in out.iter_mut().enumerate() {
                        *y = f(a[ia + i * sa], b[ib + i * sb]);
                    }
                }
            }
        });
    }
}

/// `a.powf(b)` with the common exponents done exactly and fast.
#[inline(always)]
fn pow(a: f32, b: f32) -> f32 {
    if b == 2.0 {
        a * a
    } else if b == 0.5 {
        a.sqrt()
    } else if b == 1.0 {
        a
    } else {
        a.powf(b)
    }
}

/// Applies `op` to every element of `x` in place.
pub(crate) fn unary_in_place(op: UnaryOp, x: &mut [f32]) {
    fn map(x: &mut [f32], f: impl Fn(f32) -> f32) {
        x.iter_mut().for_each(|v| *v = f(*v));
    }
    match op {
        UnaryOp::Sqrt => map(x, f32::sqrt),
        UnaryOp::Rsqrt => map(x, |v| 1.0 / v.sqrt()),
        UnaryOp::Recip => map(x, |v| 1.0 / v),
        UnaryOp::Exp => map(x, f32::exp),
        UnaryOp::Erf => map(x, erf),
        UnaryOp::Tanh => map(x, f32::tanh),
        UnaryOp::Sigmoid => map(x, |v| 1.0 / (1.0 + (-v).exp())),
        UnaryOp::Abs => map(x, f32::abs),
        UnaryOp::Neg => map(x, |v| -v),
        UnaryOp::Square => map(x, |v| v * v),
        UnaryOp::Ln => map(x, f32::ln),
    }
}

/// `max(x, 0)` in place.
pub(crate) fn relu_in_place(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// erf to within about 1.2e-7 relative, computed in f64.
///
/// Near 0 a Maclaurin series keeps the relative error small; elsewhere `1 - erfc` from the
/// Chebyshev-fitted erfc of Numerical Recipes (fractional error < 1.2e-7), where erf ≥ 0.5 so
/// the subtraction loses nothing that matters at f32 precision.
pub(crate) fn erf(x: f32) -> f32 {
    let xd = x as f64;
    let ax = xd.abs();
    let r = if ax < 0.5 {
        let x2 = ax * ax;
        let mut term = ax;
        let mut sum = ax;
        for n in 1..12 {
            term *= -x2 / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        let t = 1.0 / (1.0 + 0.5 * ax);
        let poly = -1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
        1.0 - t * (-ax * ax + poly).exp()
    };
    (if xd < 0.0 { -r } else { r }) as f32
}
