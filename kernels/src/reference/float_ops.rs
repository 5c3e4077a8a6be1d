//! Reference float ops of a ViT block: softmax, LayerNorm, GELU.

use crate::{Error, Result};

/// Checks that `len` splits into rows of `row_len > 0`.
pub(crate) fn check_rows(op: &'static str, len: usize, row_len: usize) -> Result<()> {
    if row_len == 0 || !len.is_multiple_of(row_len) {
        return Err(Error::Shape {
            op,
            what: format!("length {len} is not a multiple of row length {row_len}"),
        });
    }
    Ok(())
}

/// Softmax of each row of `row_len` elements, in place: `yᵢ = e^(xᵢ - max) / Σⱼ e^(xⱼ - max)`.
pub fn softmax_f32(x: &mut [f32], row_len: usize) -> Result<()> {
    check_rows("softmax_f32", x.len(), row_len)?;
    for row in x.chunks_exact_mut(row_len) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f64;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v as f64;
        }
        let inv = (1.0 / sum) as f32;
        row.iter_mut().for_each(|v| *v *= inv);
    }
    Ok(())
}

/// LayerNorm of each row of `gamma.len()` elements:
/// `out = (x - mean) / √(var + eps) · gamma + beta`, population variance.
pub fn layer_norm_f32(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) -> Result<()> {
    check_layer_norm(x, gamma, beta, out)?;
    let c = gamma.len();
    for (row, orow) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for i in 0..c {
            orow[i] = ((row[i] as f64 - mean) * inv) as f32 * gamma[i] + beta[i];
        }
    }
    Ok(())
}

/// Checks LayerNorm operand lengths: rows of `gamma.len() > 0`, `beta` and `out` matching.
pub(crate) fn check_layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], out: &[f32]) -> Result<()> {
    let c = gamma.len();
    check_rows("layer_norm_f32", x.len(), c)?;
    if beta.len() != c || out.len() != x.len() {
        return Err(Error::Shape {
            op: "layer_norm_f32",
            what: format!(
                "gamma {c}, beta {}, x {}, out {}",
                beta.len(),
                x.len(),
                out.len()
            ),
        });
    }
    Ok(())
}

/// Exact GELU in place: `0.5·x·(1 + erf(x/√2))`.
pub fn gelu_erf_f32(x: &mut [f32]) {
    for v in x.iter_mut() {
        let xd = *v as f64;
        *v = (0.5 * xd * (1.0 + erf_f64(xd / std::f64::consts::SQRT_2))) as f32;
    }
}

/// Tanh-approximated GELU in place: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
pub fn gelu_tanh_f32(x: &mut [f32]) {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    for v in x.iter_mut() {
        let xd = *v as f64;
        *v = (0.5 * xd * (1.0 + (k * (xd + 0.044715 * xd * xd * xd)).tanh())) as f32;
    }
}

/// erf in f64 to about 1e-15 (W. J. Cody's rational approximations are overkill here; a
/// Taylor series near 0 and a continued-fraction tail are enough for an f32 oracle).
pub(crate) fn erf_f64(x: f64) -> f64 {
    let ax = x.abs();
    let r = if ax < 2.5 {
        // Maclaurin series: erf(x) = 2/√π Σ (-1)ⁿ x^(2n+1) / (n! (2n+1))
        let mut term = ax;
        let mut sum = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if ax < 6.0 {
        // erfc continued fraction (Lentz), converges fast for x ≥ 2.5.
        let x2 = ax * ax;
        let mut f = ax;
        let mut c = ax;
        let mut d = 0.0;
        for k in 1..200 {
            let a = k as f64 / 2.0;
            d = ax + a * d;
            d = if d == 0.0 { 1e-300 } else { 1.0 / d };
            c = ax + a / c;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        1.0 - (-x2).exp() / (f * std::f64::consts::PI.sqrt())
    } else {
        1.0
    };
    if x < 0.0 { -r } else { r }
}
