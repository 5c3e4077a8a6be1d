//! Quantization error of activation × activation products (QKᵀ, attn·V), measured on the
//! product itself.
//!
//! Summing the two operands' element-wise errors misjudges these products: a log2 quantizer of
//! attention probabilities with too few levels rounds every small probability down to zero, an
//! error that is tiny per element but has one sign, so across a row of 197 tokens it removes
//! much of the probability mass that attn·V sums. Only the product's output shows it. (Weighting
//! Linear weight errors by input channel power, the same idea for weights, measured worse on
//! the ViT-S/14 and was dropped.)

use anyhow::{Context, Result};
use qvit_device::exec::{Executor, Strides, gemm_f32};
use qvit_device::quant::ActQuant;
use qvit_device::{Graph, Op, Tensor, ValueId};
use qvit_kernels::KernelSet;
use std::collections::HashMap;

/// Both operands of one product, in full, for each recorded image.
pub type Operands = Vec<(Vec<f32>, Vec<f32>)>;

/// Records the operands of the MatMul nodes `nodes` on `images` (one forward pass each).
pub fn record_operands(
    g: &Graph,
    nodes: &[usize],
    images: &[Tensor],
) -> Result<HashMap<usize, Operands>> {
    let mut wanted: HashMap<ValueId, Vec<f32>> = HashMap::new();
    for &j in nodes {
        for &v in &g.nodes[j].inputs[..2] {
            wanted.insert(v, Vec::new());
        }
    }
    let mut ex = Executor::new(g.clone(), KernelSet::detect()).context("planning the f32 graph")?;
    let mut out: HashMap<usize, Operands> = HashMap::new();
    for (i, x) in images.iter().enumerate() {
        ex.run_observed(&[x], &mut |v, data| {
            if let Some(slot) = wanted.get_mut(&v) {
                slot.clear();
                slot.extend_from_slice(data);
            }
        })
        .with_context(|| format!("recording attention operands on image {i}"))?;
        for &j in nodes {
            let n = &g.nodes[j];
            out.entry(j)
                .or_default()
                .push((wanted[&n.inputs[0]].clone(), wanted[&n.inputs[1]].clone()));
        }
    }
    Ok(out)
}

/// `Σ‖Q_a(A)·Q_b(B) − A·B‖² / Σ‖A·B‖²` over the recorded images of MatMul node `j`.
pub fn product_error(
    g: &Graph,
    j: usize,
    operands: &[(Vec<f32>, Vec<f32>)],
    qa: &ActQuant,
    qb: &ActQuant,
) -> f64 {
    let n = &g.nodes[j];
    let Op::MatMul { transpose_b } = n.op else {
        return 0.0;
    };
    let (sa, sb) = (g.shape(n.inputs[0]), g.shape(n.inputs[1]));
    let (rank_a, rank_b) = (sa.len(), sb.len());
    if rank_a < 2 || rank_b < 2 {
        return 0.0;
    }
    let (m, k) = (sa[rank_a - 2], sa[rank_a - 1]);
    let cols = if transpose_b {
        sb[rank_b - 2]
    } else {
        sb[rank_b - 1]
    };
    let (mut err, mut power) = (0.0, 0.0);
    for (a, b) in operands {
        let exact = product(a, b, (m, cols, k), transpose_b);
        let fa: Vec<f32> = a.iter().map(|&x| qa.fake(x)).collect();
        let fb: Vec<f32> = b.iter().map(|&x| qb.fake(x)).collect();
        let quantized = product(&fa, &fb, (m, cols, k), transpose_b);
        for (&y, &q) in exact.iter().zip(&quantized) {
            err += (q as f64 - y as f64).powi(2);
            power += (y as f64).powi(2);
        }
    }
    err / power.max(1e-30)
}

/// Batched `a[.., m, k] · b[.., k, n]` (or `b[.., n, k]` transposed) with equal batch axes.
fn product(a: &[f32], b: &[f32], (m, n, k): (usize, usize, usize), transpose_b: bool) -> Vec<f32> {
    if m * n * k == 0 {
        return Vec::new();
    }
    let batches = a.len() / (m * k);
    let mut out = vec![0.0; batches * m * n];
    let r = if transpose_b {
        Strides { rs: 1, cs: k }
    } else {
        Strides { rs: n, cs: 1 }
    };
    for ((dst, lhs), rhs) in out
        .chunks_exact_mut(m * n)
        .zip(a.chunks_exact(m * k))
        .zip(b.chunks_exact(k * n))
    {
        gemm_f32(
            (m, n, k),
            dst,
            n,
            lhs,
            Strides { rs: k, cs: 1 },
            rhs,
            r,
            false,
            false,
        );
    }
    out
}
