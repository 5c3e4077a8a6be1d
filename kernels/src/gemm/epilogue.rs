//! Epilogues of the quantized GEMMs, shared by every tier so their results are bit-exact across
//! tiers (plain `a * b + c`: Rust never fuses it into an FMA behind our back).

use crate::{Error, Result};

/// Dequantizes `[m, n]` accumulators: `y = acc as f32 · (a_scale·w_scales[n]) + bias[n]`
/// (`bias` absent = 0). `acc as f32` rounds to nearest for |acc| > 2²⁴.
pub fn dequantize_i32_f32(
    acc: &[i32],
    n: usize,
    a_scale: f32,
    w_scales: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<()> {
    check(
        "dequantize_i32_f32",
        acc.len(),
        n,
        w_scales,
        bias,
        out.len(),
    )?;
    let scales: Vec<f32> = w_scales.iter().map(|&s| a_scale * s).collect();
    let zeros;
    // An absent bias adds +0.0 like a zero bias would (it turns −0.0 into +0.0), so both cases
    // run one loop without a per-element branch, which vectorises.
    let bias = match bias {
        Some(b) => b,
        None => {
            zeros = vec![0.0; n];
            &zeros
        }
    };
    crate::generic::quantize::dequantize_rows(acc, n, &scales, bias, out);
    Ok(())
}

/// Requantizes `[m, n]` accumulators to int8 for the next layer: `y` as in
/// [`dequantize_i32_f32`], then `q = clamp(round_half_even(y · (1/out_scale)) + out_zero,
/// −128, 127)`; NaN maps to `out_zero`.
#[allow(clippy::too_many_arguments)]
pub fn requantize_i32_i8(
    acc: &[i32],
    n: usize,
    a_scale: f32,
    w_scales: &[f32],
    bias: Option<&[f32]>,
    out_scale: f32,
    out_zero: i8,
    out: &mut [i8],
) -> Result<()> {
    check("requantize_i32_i8", acc.len(), n, w_scales, bias, out.len())?;
    if !(out_scale.is_finite() && out_scale > 0.0) {
        return Err(Error::Shape {
            op: "requantize_i32_i8",
            what: format!("output scale {out_scale} is not positive and finite"),
        });
    }
    let inv = 1.0 / out_scale;
    let scales: Vec<f32> = w_scales.iter().map(|&s| a_scale * s).collect();
    for (arow, orow) in acc.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        for j in 0..n {
            let y = arow[j] as f32 * scales[j] + bias.map_or(0.0, |b| b[j]);
            orow[j] = quantize_one(y, inv, out_zero);
        }
    }
    Ok(())
}

/// `clamp(round_half_even(x · inv_scale) + zero, −128, 127)`, NaN → `zero`: the one int8
/// quantizer of the crate (activations and requantization both use it).
#[inline]
pub fn quantize_one(x: f32, inv_scale: f32, zero: i8) -> i8 {
    let q = (x * inv_scale).round_ties_even() + zero as f32;
    // `as` saturates and maps NaN to 0, so the clamp below is the whole range check.
    if q.is_nan() {
        zero
    } else {
        q.clamp(-128.0, 127.0) as i8
    }
}

/// Quantizes f32 activations per tensor: `q = quantize_one(x, 1/scale, zero)`.
pub fn quantize_f32_i8(x: &[f32], scale: f32, zero: i8, out: &mut [i8]) -> Result<()> {
    if x.len() != out.len() || !(scale.is_finite() && scale > 0.0) {
        return Err(Error::Shape {
            op: "quantize_f32_i8",
            what: format!("len {} vs {}, scale {scale}", x.len(), out.len()),
        });
    }
    let inv = 1.0 / scale;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = quantize_one(v, inv, zero);
    }
    Ok(())
}

/// Dequantizes per-tensor int8: `x = (q − zero) as f32 · scale`.
pub fn dequantize_i8_f32(q: &[i8], scale: f32, zero: i8, out: &mut [f32]) -> Result<()> {
    if q.len() != out.len() {
        return Err(Error::Shape {
            op: "dequantize_i8_f32",
            what: format!("len {} vs {}", q.len(), out.len()),
        });
    }
    for (o, &v) in out.iter_mut().zip(q) {
        *o = (v as i32 - zero as i32) as f32 * scale;
    }
    Ok(())
}

/// Checks the operands of a dequantizing epilogue with precomputed scales and bias.
pub(crate) fn check_rows(
    op: &'static str,
    acc: usize,
    n: usize,
    scales: &[f32],
    bias: &[f32],
    out: usize,
) -> Result<()> {
    check(op, acc, n, scales, Some(bias), out)
}

fn check(
    op: &'static str,
    acc: usize,
    n: usize,
    w_scales: &[f32],
    bias: Option<&[f32]>,
    out: usize,
) -> Result<()> {
    let bias_ok = bias.is_none_or(|b| b.len() == n);
    if n == 0 || !acc.is_multiple_of(n) || w_scales.len() != n || !bias_ok || out != acc {
        return Err(Error::Shape {
            op,
            what: format!(
                "acc {acc}, n {n}, scales {}, bias {:?}, out {out}",
                w_scales.len(),
                bias.map(|b| b.len())
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever build runs (AVX-512 or portable), the result is the contract's scalar
    /// expression bit for bit, including the +0.0 an absent bias adds to −0.0.
    #[test]
    fn dequantize_is_the_scalar_expression_bit_for_bit() {
        let n = 37;
        let acc: Vec<i32> = (0..n * 9)
            .map(|i| (i as i32 - 150).wrapping_mul(0x01F3_5A7B))
            .collect();
        let w_scales: Vec<f32> = (0..n).map(|j| (j as f32 - 18.0) * 3.1e-3).collect();
        let bias: Vec<f32> = (0..n).map(|j| (j as f32).sin()).collect();
        let a_scale = 0.0271;
        for b in [Some(&bias[..]), None] {
            let mut y = vec![f32::NAN; acc.len()];
            dequantize_i32_f32(&acc, n, a_scale, &w_scales, b, &mut y).unwrap();
            for (i, (&a, &got)) in acc.iter().zip(&y).enumerate() {
                let j = i % n;
                let want = a as f32 * (a_scale * w_scales[j]) + b.map_or(0.0, |b| b[j]);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "element {i}: {got} vs {want}"
                );
            }
        }
    }
}
