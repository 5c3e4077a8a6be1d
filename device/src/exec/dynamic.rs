//! Per-row (per-token) activation quantization of a [`crate::Op::QLinear`] whose quantizer is
//! [`ActQuant::Dynamic`](crate::quant::ActQuant::Dynamic).
//!
//! Each row gets its own step `s_r` and zero point `z_r` ([`RowQuant::of_row`]). The GEMM runs
//! unchanged with a zero point of 0, so it returns `Σₖ q·w`; the epilogue subtracts the row's
//! zero point times the weight column sums in integers (exact) and dequantizes with the row's
//! factors `s_r·s_w[c]` on the set's shared epilogue:
//! `y = (acc − z_r·Σₖ w[c][k]) · (s_r·s_w[c]) + bias[c]`. Every step is either integer
//! arithmetic or the same f32 operations in the same order on every tier, so a dynamic layer
//! is as bit-exact across CPUs as a static one.
//!
//! A [`crate::Op::QMatMul`] takes the same per-row quantizer on its left operand (one per
//! query token of `Q·Kᵀ`) and [`ActQuant::DynamicSymmetric`] on its right one, a step per
//! column of the product (per key token, per channel of V): [`dequantize_product`] folds both
//! into its epilogue, `out[i][j] = (acc − z_i·Σ_c b[j][c]) · (s_i·s_j)`.

use crate::quant::{ActQuant, RowQuant};
use qvit_kernels::{Error, KernelSet, Result};

/// The levels of `rows` rows of `x` (`k` values each) under each row's own quantizer of the
/// dynamic `act`, plus `offset` (−128 for the W8A8 kernel's uniform side), into `out`; each
/// row's quantizer is pushed to `rowq` (cleared first).
pub(crate) fn quantize_rows(
    ks: &KernelSet,
    act: &ActQuant,
    x: &[f32],
    k: usize,
    offset: i32,
    out: &mut [i8],
    rowq: &mut Vec<RowQuant>,
) -> Result<()> {
    if k == 0 || x.len() != out.len() || !x.len().is_multiple_of(k) {
        return Err(Error::Shape {
            op: "quantize_rows",
            what: format!("x {}, out {}, k {k}", x.len(), out.len()),
        });
    }
    let Some((lo, hi)) = act.dynamic_levels() else {
        return Err(dynamic_without_rows());
    };
    rowq.clear();
    let range = ((lo + offset) as i8, (hi + offset) as i8);
    for (xr, or) in x.chunks_exact(k).zip(out.chunks_exact_mut(k)) {
        let Some(r) = act.of_row(xr) else {
            return Err(dynamic_without_rows());
        };
        ks.levels_i8(xr, r.inv, r.zero + offset, range, or)?;
        rowq.push(r);
    }
    Ok(())
}

/// A dynamic quantizer reached a path that quantizes without its rows (or a static one reached
/// [`quantize_rows`]).
pub(crate) fn dynamic_without_rows() -> qvit_kernels::Error {
    qvit_kernels::Error::Shape {
        op: "levels",
        what: "a run-time (dynamic) quantizer needs whole rows: a QLinear input or a QMatMul \
               operand"
            .into(),
    }
}

/// The level sums of each `cols`-long row of `levels` into `out`: the `Σ_c b[j][c]` that a left
/// operand's zero points are multiplied by in [`dequantize_product`].
pub(crate) fn row_sums(levels: &[i8], cols: usize, out: &mut Vec<i32>) {
    out.clear();
    let rows = levels.chunks_exact(cols.max(1));
    out.extend(rows.map(|r| r.iter().map(|&v| v as i32).sum::<i32>()));
}

/// One side's steps in [`dequantize_product`]: a static step, or one per row (column).
#[derive(Clone, Copy)]
pub(crate) enum Steps<'a> {
    Static(f32),
    PerRow(&'a [RowQuant]),
}

impl<'a> Steps<'a> {
    /// `act`'s steps: the quantizers in `rows` when it is dynamic, else its one step.
    pub fn of(act: &ActQuant, rows: &'a [RowQuant]) -> Steps<'a> {
        match act.is_dynamic() {
            true => Steps::PerRow(rows),
            false => Steps::Static(act.scale()),
        }
    }

    fn at(&self, i: usize) -> (f32, i32) {
        match *self {
            Steps::Static(s) => (s, 0),
            Steps::PerRow(r) => (r[i].scale, r[i].zero),
        }
    }
}

/// The epilogue of a QMatMul with a dynamic operand, over `acc` (`[rows, n]`, `Σ_c a·b` with
/// the left side's zero points not yet taken out): `out[i][j] = (acc[i][j] − z_i·b_sums[j]) ·
/// (s_i·s_j / div)`, `div` 2¹⁵ for log-quantized probabilities (else 1). The factors of a row
/// are formed once per row (once per call for a static left side) in `tmp`; the same
/// operations in the same order on every CPU. `b_sums` (the right operand's level sums per
/// column) is only read when the left side has zero points (it may be empty otherwise).
pub(crate) fn dequantize_product(
    acc: &[i32],
    n: usize,
    (a, b): (Steps, Steps),
    (b_sums, div): (&[i32], f32),
    tmp: &mut Vec<f32>,
    out: &mut [f32],
) -> Result<()> {
    let rows = acc.len() / n.max(1);
    let rows_ok = match a {
        Steps::PerRow(r) => r.len() == rows && b_sums.len() == n,
        Steps::Static(_) => true,
    };
    let cols_ok = match b {
        Steps::PerRow(c) => c.len() == n,
        Steps::Static(_) => true,
    };
    if acc.len() != rows * n || out.len() != acc.len() || !rows_ok || !cols_ok {
        return Err(Error::Shape {
            op: "dequantize_product",
            what: format!("acc {}, out {}, {rows} rows × {n}", acc.len(), out.len()),
        });
    }
    tmp.clear();
    tmp.extend((0..n).map(|j| b.at(j).0));
    tmp.resize(2 * n, 0.0);
    let (sb, f) = tmp.split_at_mut(n);
    for (i, (ar, or)) in acc.chunks_exact(n).zip(out.chunks_exact_mut(n)).enumerate() {
        let (sa, za) = a.at(i);
        if i == 0 || matches!(a, Steps::PerRow(_)) {
            for (f, &s) in f.iter_mut().zip(sb.iter()) {
                *f = sa * s / div;
            }
        }
        if za == 0 {
            for ((o, &v), &f) in or.iter_mut().zip(ar).zip(f.iter()) {
                *o = v as f32 * f;
            }
        } else {
            // |z·sum| ≤ 255·127·K and |acc| ≤ 255·127·K: exact in i32 for K ≤ 65 536.
            for (((o, &v), &f), &sum) in or.iter_mut().zip(ar).zip(f.iter()).zip(b_sums) {
                *o = v.wrapping_sub(za.wrapping_mul(sum)) as f32 * f;
            }
        }
    }
    Ok(())
}

/// The epilogue of a dynamic layer over `rowq.len()` rows of `acc` (`n` channels each, `Σ q·w`
/// with no zero point), in one pass per row: `out = (acc − z_r·col_sums) · (s_r·w_scales) + bias`,
/// plus `residual` when the layer feeds an `Add` (IEEE addition commutes, so the bits do not
/// depend on which side the graph's `Add` reads it). The same f32 operations in the same order
/// on every tier.
pub(crate) fn dequantize_rows(
    acc: &[i32],
    n: usize,
    (w_scales, col_sums): (&[f32], &[i32]),
    rowq: &[RowQuant],
    bias: &[f32],
    residual: Option<&[f32]>,
    out: &mut [f32],
) -> Result<()> {
    let rows = rowq.len();
    let len_ok = |l: usize| l == rows * n;
    if !len_ok(acc.len())
        || !len_ok(out.len())
        || !residual.is_none_or(|r| len_ok(r.len()))
        || col_sums.len() != n
        || w_scales.len() != n
        || bias.len() != n
    {
        return Err(Error::Shape {
            op: "dequantize_rows (dynamic)",
            what: format!(
                "acc {}, out {}, {rows} rows × {n}, col sums {}, scales {}, bias {}",
                acc.len(),
                out.len(),
                col_sums.len(),
                w_scales.len(),
                bias.len()
            ),
        });
    }
    for (i, ((a, o), r)) in acc
        .chunks_exact(n)
        .zip(out.chunks_exact_mut(n))
        .zip(rowq)
        .enumerate()
    {
        let (s, z) = (r.scale, r.zero);
        // |z·colsum| ≤ 255·127·K and |acc| ≤ 255·127·K: exact in i32 for the GEMM's K ≤ 65 536.
        // Zipped, not indexed, so the loop has no bounds checks and vectorises.
        let y = a
            .iter()
            .zip(col_sums)
            .zip(w_scales)
            .zip(bias)
            .map(|(((&a, &c), &ws), &b)| (a.wrapping_sub(z.wrapping_mul(c)) as f32) * (s * ws) + b);
        match residual {
            None => o.iter_mut().zip(y).for_each(|(o, y)| *o = y),
            Some(res) => {
                let res = &res[i * n..(i + 1) * n];
                for ((o, y), &r) in o.iter_mut().zip(y).zip(res) {
                    *o = y + r;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form in f64 from the fake-quantized rows: `Σ fake(x)·w·s_w + bias`.
    fn reference(x: &[f32], k: usize, bits: u8, w: &[i8], s_w: &[f32], bias: &[f32]) -> Vec<f64> {
        let n = s_w.len();
        let mut fake = Vec::new();
        let mut out = Vec::new();
        for row in x.chunks_exact(k) {
            ActQuant::Dynamic { bits }.fake_row(row, &mut fake);
            for c in 0..n {
                let dot: f64 = (0..k).map(|j| fake[j] as f64 * w[c * k + j] as f64).sum();
                out.push(dot * s_w[c] as f64 + bias[c] as f64);
            }
        }
        out
    }

    #[test]
    fn rows_quantize_and_dequantize_to_the_closed_form() {
        let (k, n) = (24, 5);
        // Row 1 is a high-norm outlier token; row 2 all positive; row 3 all zeros.
        let mut x: Vec<f32> = (0..4 * k)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.05)
            .collect();
        for v in &mut x[k..2 * k] {
            *v *= 40.0;
        }
        for v in &mut x[2 * k..3 * k] {
            *v = v.abs() + 0.25;
        }
        x[3 * k..].fill(0.0);
        let w: Vec<i8> = (0..n * k).map(|i| ((i * 13 % 15) as i8) - 7).collect();
        let s_w: Vec<f32> = (0..n).map(|c| 0.01 + 0.003 * c as f32).collect();
        let bias: Vec<f32> = (0..n).map(|c| c as f32 * 0.1 - 0.2).collect();
        let col_sums: Vec<i32> = w
            .chunks(k)
            .map(|r| r.iter().map(|&v| v as i32).sum())
            .collect();
        for bits in [4u8, 8] {
            let ks = KernelSet::best();
            let offset = if bits <= 4 { 0 } else { -128 };
            let mut a = vec![0i8; x.len()];
            let mut rowq = Vec::new();
            let act = ActQuant::Dynamic { bits };
            quantize_rows(&ks, &act, &x, k, offset, &mut a, &mut rowq).unwrap();
            assert_eq!(rowq.len(), 4);
            assert_eq!(rowq[3], RowQuant::of_row(&[0.0], bits), "zero row");
            // Σ q·w by hand, then the epilogue.
            let acc: Vec<i32> = (0..4 * n)
                .map(|i| {
                    let (r, c) = (i / n, i % n);
                    (0..k)
                        .map(|j| (a[r * k + j] as i32 - offset) * w[c * k + j] as i32)
                        .sum()
                })
                .collect();
            let mut out = vec![0f32; 4 * n];
            let ops = (&s_w[..], &col_sums[..]);
            dequantize_rows(&acc, n, ops, &rowq, &bias, None, &mut out).unwrap();
            let want = reference(&x, k, bits, &w, &s_w, &bias);
            for (i, (&o, &r)) in out.iter().zip(&want).enumerate() {
                let tol = 1e-5 * (1.0 + r.abs());
                assert!((o as f64 - r).abs() <= tol, "{bits} bits, {i}: {o} vs {r}");
            }
            // Each row's error is within half of its own step per input: the outlier row's
            // large step does not reach the small rows.
            for (r, row) in x.chunks_exact(k).enumerate() {
                let q = rowq[r];
                for (j, &v) in row.iter().enumerate() {
                    let lv = (a[r * k + j] as i32 - offset - q.zero) as f32 * q.scale;
                    assert!((lv - v).abs() <= 0.5 * q.scale * 1.0001, "row {r} col {j}");
                }
            }
            assert!(rowq[0].scale * 20.0 < rowq[1].scale);
        }
    }

    #[test]
    fn row_quantizer_spans_the_row_and_keeps_zero_exact() {
        let q = RowQuant::of_row(&[-1.0, 0.5, 3.0, f32::NAN], 4);
        assert_eq!(q.scale, 4.0 / 15.0);
        // −1/s = −3.75 → the zero point rounds to 4 (half-even ties never reach here).
        assert_eq!(q.zero, 4);
        let q = RowQuant::of_row(&[0.5, 2.0], 8);
        assert_eq!((q.scale, q.zero), (2.0 / 255.0, 0));
        let q = RowQuant::of_row(&[-3.0, -1.0], 8);
        assert_eq!((q.scale, q.zero), (3.0 / 255.0, 255));
        assert_eq!(RowQuant::of_row(&[], 8).scale, 1.0);
    }
}
