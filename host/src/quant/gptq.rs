//! Second-order weight rounding (GPTQ/OPTQ): the columns of a Linear's weight are rounded one
//! at a time, and each column's rounding error is pushed onto the columns not yet rounded, in
//! the proportions the calibration Hessian `H = 2·XᵀX` of the layer's input says cancel it best.
//! The grid (per-output-channel symmetric scales, bits) is the one nearest rounding uses, so the
//! bundle format and the device are unchanged; only which grid point each weight takes differs.

use super::linalg::{View, gemm_acc, inverse_cholesky_upper};
use qvit_device::exec::{Strides, gemm_f32};
use qvit_device::quant::symmetric_max;
use std::sync::OnceLock;

/// Damping added to the Hessian diagonal, relative to its mean (GPTQ's `percdamp`).
pub const DAMP: f32 = 0.01;
/// Columns rounded between two trailing updates through gemm ("lazy batch" updates).
const BLOCK: usize = 128;

/// `XᵀX` of a Linear's input over the calibration set, and what [`round`] derives from it once
/// (shared by every bit width a mixed-precision search tries).
#[derive(Debug)]
pub struct Gram {
    /// Input features (the Linear's `k`).
    pub k: usize,
    /// `Σ xᵀx` over every input row (token) of every calibration image, `k×k` row-major.
    pub sum: Vec<f32>,
    /// Rows accumulated.
    pub rows: usize,
    factor: OnceLock<Option<Vec<f32>>>,
    ordered: OnceLock<Option<(Vec<usize>, Vec<f32>)>>,
}

impl Gram {
    /// An empty accumulator for `k` input features.
    pub fn new(k: usize) -> Self {
        Gram {
            k,
            sum: vec![0.0; k * k],
            rows: 0,
            factor: OnceLock::new(),
            ordered: OnceLock::new(),
        }
    }

    /// Adds the rows of `x` (`[rows, k]` row-major, `rows · k = x.len()`).
    pub fn add(&mut self, x: &[f32]) {
        let k = self.k;
        let rows = x.len() / k.max(1);
        if rows == 0 {
            return;
        }
        let x = &x[..rows * k];
        let xt = Strides { rs: 1, cs: k };
        let xs = Strides { rs: k, cs: 1 };
        gemm_f32((k, k, rows), &mut self.sum, k, x, xt, x, xs, true, false);
        self.rows += rows;
    }

    /// The damped Hessian `2·XᵀX/rows + DAMP·mean(diag)·I`; input features never seen (zero
    /// diagonal) get a unit diagonal so the matrix stays invertible.
    pub fn hessian(&self) -> Vec<f32> {
        let k = self.k;
        let scale = 2.0 / self.rows.max(1) as f32;
        let mut h: Vec<f32> = self.sum.iter().map(|&x| x * scale).collect();
        dampen(&mut h, k, DAMP);
        h
    }

    /// The input features by decreasing Hessian diagonal (GPTQ's act-order) and the factor of
    /// the Hessian permuted so, computed once; `None` when no damping makes it positive definite.
    pub fn ordered_factor(&self) -> Option<(&[usize], &[f32])> {
        self.ordered
            .get_or_init(|| {
                let k = self.k;
                let h = self.hessian();
                let mut perm: Vec<usize> = (0..k).collect();
                // Stable: equal diagonals keep their natural order.
                perm.sort_by(|&a, &b| h[b * k + b].total_cmp(&h[a * k + a]));
                let hp = (0..k * k)
                    .map(|p| h[perm[p / k] * k + perm[p % k]])
                    .collect();
                damped_factor(hp, k).map(|u| (perm, u))
            })
            .as_ref()
            .map(|(p, u)| (p.as_slice(), u.as_slice()))
    }

    /// `U` with `UᵀU = H⁻¹` of the damped Hessian, computed once; `None` when it is not
    /// positive definite even after ten times more damping (the caller rounds to nearest).
    fn factor(&self) -> Option<&[f32]> {
        self.factor
            .get_or_init(|| damped_factor(self.hessian(), self.k))
            .as_deref()
    }
}

/// `U` with `UᵀU = h⁻¹`, damping `h` further (up to three times) until it is positive definite.
fn damped_factor(mut h: Vec<f32>, k: usize) -> Option<Vec<f32>> {
    for _ in 0..3 {
        if let Some(u) = inverse_cholesky_upper(&h, k) {
            return Some(u);
        }
        dampen(&mut h, k, 10.0 * DAMP);
    }
    None
}

/// Unit diagonal for dead features, then `rel · mean(diag)` added to every diagonal element.
pub fn dampen(h: &mut [f32], k: usize, rel: f32) {
    for i in 0..k {
        if h[i * k + i] <= 0.0 {
            h[i * k + i] = 1.0;
        }
    }
    let mean = (0..k).map(|i| h[i * k + i] as f64).sum::<f64>() / k.max(1) as f64;
    let add = rel * mean as f32;
    for i in 0..k {
        h[i * k + i] += add;
    }
}

/// GPTQ rounding of `w` (`[n, k]` row-major, `k` input features) onto the symmetric `bits`-bit
/// grid with one scale per row, given `u` (upper, `UᵀU = H⁻¹`, `k×k`): the integer codes.
pub fn round_columns(
    w: &[f32],
    n: usize,
    k: usize,
    bits: u8,
    scales: &[f32],
    u: &[f32],
) -> Vec<i8> {
    let max = symmetric_max(bits);
    let mut w: Vec<f32> = w[..n * k].to_vec();
    let mut codes = vec![0i8; n * k];
    let mut err = vec![0.0; n * BLOCK];
    for b0 in (0..k).step_by(BLOCK) {
        let b1 = (b0 + BLOCK).min(k);
        let bw = b1 - b0;
        for i in b0..b1 {
            let d = u[i * k + i];
            let ui = &u[i * k + i + 1..i * k + b1];
            for r in 0..n {
                let s = scales[r];
                let row = &mut w[r * k..(r + 1) * k];
                let q = ((row[i] / s).round() as i32).clamp(-max, max);
                codes[r * k + i] = q as i8;
                let e = (row[i] - q as f32 * s) / d;
                // Stored negated: gemm only adds, and the trailing update subtracts.
                err[r * bw + (i - b0)] = -e;
                for (x, &uij) in row[i + 1..b1].iter_mut().zip(ui) {
                    *x -= e * uij;
                }
            }
        }
        if b1 < k {
            let e = View {
                data: &err[..n * bw],
                s: Strides { rs: bw, cs: 1 },
            };
            let ub = View {
                data: &u[b0 * k + b1..],
                s: Strides { rs: k, cs: 1 },
            };
            gemm_acc((n, k - b1, bw), &mut w[b1..], k, e, ub);
        }
    }
    codes
}

/// The order in which GPTQ rounds a layer's input features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Feature 0 first.
    Natural,
    /// Largest Hessian diagonal first (GPTQ's "act-order"): the features whose errors cost the
    /// most are rounded while the most unrounded columns remain to absorb their error.
    Activation,
}

/// GPTQ codes for `w` on the grid of `scales`, rounding features in `order`, or `None` if
/// `gram` gives no usable Hessian.
pub fn round(
    w: &[f32],
    n: usize,
    k: usize,
    bits: u8,
    scales: &[f32],
    gram: &Gram,
    order: Order,
) -> Option<Vec<i8>> {
    if gram.k != k || gram.rows == 0 {
        return None;
    }
    match order {
        Order::Natural => gram
            .factor()
            .map(|u| round_columns(w, n, k, bits, scales, u)),
        Order::Activation => {
            let (perm, u) = gram.ordered_factor()?;
            let wp = permute_columns(w, n, k, perm);
            let cp = round_columns(&wp, n, k, bits, scales, u);
            let mut codes = vec![0i8; n * k];
            for (row, crow) in codes.chunks_exact_mut(k).zip(cp.chunks_exact(k)) {
                for (&pa, &c) in perm.iter().zip(crow) {
                    row[pa] = c;
                }
            }
            Some(codes)
        }
    }
}

/// `w` (`[n, k]`) with its columns in the order `perm`: column `a` of the result is column
/// `perm[a]` of `w`.
pub fn permute_columns<T: Copy + Default>(w: &[T], n: usize, k: usize, perm: &[usize]) -> Vec<T> {
    let mut out = vec![T::default(); n * k];
    for (o, row) in out.chunks_exact_mut(k).zip(w.chunks_exact(k).take(n)) {
        for (x, &pa) in o.iter_mut().zip(perm) {
            *x = row[pa];
        }
    }
    out
}
