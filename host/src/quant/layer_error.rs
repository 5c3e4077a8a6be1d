//! Quantization error of activation × activation products (QKᵀ, attn·V), measured on the
//! attention's output.
//!
//! Summing the two operands' element-wise errors misjudges these products: a log2 quantizer of
//! attention probabilities with too few levels rounds every small probability down to zero, an
//! error that is tiny per element but has one sign, so across a row of 197 tokens it removes
//! much of the probability mass that attn·V sums. Only the product's output shows it. QKᵀ is
//! judged further on, by the attn·V output its probabilities produce ([`attention_error`]). (Weighting
//! Linear weight errors by input channel power, the same idea for weights, measured worse on
//! the ViT-S/14 and was dropped.)

use anyhow::{Context, Result};
use qvit_device::exec::{Executor, Strides, gemm_f32};
use qvit_device::graph::BinaryOp;
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

/// `(m, n, k, transpose_b)` of MatMul node `j`.
fn dims(g: &Graph, j: usize) -> Option<(usize, usize, usize, bool)> {
    let n = &g.nodes[j];
    let Op::MatMul { transpose_b } = n.op else {
        return None;
    };
    let (sa, sb) = (g.shape(n.inputs[0]), g.shape(n.inputs[1]));
    let (ra, rb) = (sa.len(), sb.len());
    if ra < 2 || rb < 2 {
        return None;
    }
    let cols = if transpose_b { sb[rb - 2] } else { sb[rb - 1] };
    Some((sa[ra - 2], cols, sa[ra - 1], transpose_b))
}

/// `Σ‖ŷ − y‖² / Σ‖y‖²`.
fn relative(exact: &[f32], approx: &[f32]) -> (f64, f64) {
    exact
        .iter()
        .zip(approx)
        .fold((0.0, 0.0), |(e, p), (&y, &q)| {
            (e + (q as f64 - y as f64).powi(2), p + (y as f64).powi(2))
        })
}

/// `Σ‖Q_a(A)·Q_b(B) − A·B‖² / Σ‖A·B‖²` over the recorded images of MatMul node `j`, for each
/// quantizer pair `(Q_a, Q_b)` (the exact product is computed once per image).
pub fn product_error(
    g: &Graph,
    j: usize,
    operands: &[(Vec<f32>, Vec<f32>)],
    quantizers: &[(ActQuant, ActQuant)],
) -> Vec<f64> {
    let Some((m, n, k, tb)) = dims(g, j) else {
        return vec![0.0; quantizers.len()];
    };
    let mut sums = vec![(0.0, 0.0); quantizers.len()];
    for (a, b) in operands {
        let exact = product(a, b, (m, n, k), tb);
        for ((qa, qb), (err, power)) in quantizers.iter().zip(&mut sums) {
            let quantized = product(&fake(qa, a), &fake(qb, b), (m, n, k), tb);
            let (e, p) = relative(&exact, &quantized);
            *err += e;
            *power += p;
        }
    }
    sums.iter().map(|(e, p)| e / p.max(1e-30)).collect()
}

fn fake(q: &ActQuant, x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| q.fake(v)).collect()
}

/// How the output of QKᵀ node `j` becomes attention probabilities: the factor `c` of
/// `softmax(c·QKᵀ)` (over the last axis) and the attn·V node that reads the probabilities.
/// `None` when anything else lies on the way.
pub fn logits_path(g: &Graph, j: usize) -> Option<(f32, usize)> {
    let mut v = g.nodes[j].output;
    let mut c = 1.0f32;
    let scalar = |x: ValueId| g.const_data(x).filter(|d| d.len() == 1).map(|d| d[0]);
    let mut softmax_seen = false;
    for _ in 0..8 {
        let mut readers = g
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.contains(&v));
        let (i, n) = readers.next()?;
        if readers.next().is_some() {
            return None;
        }
        match n.op {
            Op::Binary(BinaryOp::Mul) if !softmax_seen => {
                c *= scalar(n.inputs[1]).or_else(|| scalar(n.inputs[0]))?
            }
            Op::Binary(BinaryOp::Div) if !softmax_seen && n.inputs[0] == v => {
                c /= scalar(n.inputs[1])?
            }
            Op::Reshape => {}
            Op::Softmax { axis } if !softmax_seen && axis + 1 == g.shape(n.output).len() => {
                softmax_seen = true
            }
            Op::MatMul { .. } if softmax_seen && n.inputs[0] == v => return Some((c, i)),
            _ => return None,
        }
        v = n.output;
    }
    None
}

/// The error QKᵀ node `j` causes where it matters: `Σ‖P̂·V − P·V‖² / Σ‖P·V‖²` with
/// `P = softmax(c·QKᵀ)` and `P̂` the same from the quantized operands (`path` from
/// [`logits_path`]; `av` holds the attn·V node's recorded operands, of which V is used). A
/// relative error of the logits says little: the softmax exponentiates absolute errors, and
/// probabilities that end up on similar values of V cost little.
pub fn attention_error(
    g: &Graph,
    j: usize,
    qk: &[(Vec<f32>, Vec<f32>)],
    (c, av_node): (f32, usize),
    av: &[(Vec<f32>, Vec<f32>)],
    quantizers: &[(ActQuant, ActQuant)],
) -> Vec<f64> {
    let (Some((m, n, k, tb)), Some((am, an, ak, atb))) = (dims(g, j), dims(g, av_node)) else {
        return vec![0.0; quantizers.len()];
    };
    if (am, ak) != (m, n) {
        return vec![0.0; quantizers.len()];
    }
    let probs = |logits: Vec<f32>| -> Vec<f32> {
        let mut p = logits;
        for row in p.chunks_exact_mut(n.max(1)) {
            let top = row.iter().fold(f32::NEG_INFINITY, |t, &x| t.max(c * x));
            let mut sum = 0.0;
            for x in row.iter_mut() {
                *x = (c * *x - top).exp();
                sum += *x;
            }
            row.iter_mut().for_each(|x| *x /= sum);
        }
        p
    };
    let mut sums = vec![(0.0, 0.0); quantizers.len()];
    for ((q, kk), (_, v)) in qk.iter().zip(av) {
        let y = product(&probs(product(q, kk, (m, n, k), tb)), v, (am, an, ak), atb);
        for ((qa, qb), (err, power)) in quantizers.iter().zip(&mut sums) {
            let quantized = probs(product(&fake(qa, q), &fake(qb, kk), (m, n, k), tb));
            let yq = product(&quantized, v, (am, an, ak), atb);
            let (e, p) = relative(&y, &yq);
            *err += e;
            *power += p;
        }
    }
    sums.iter().map(|(e, p)| e / p.max(1e-30)).collect()
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

/// `Σ‖Q(X)·Wᵀ − X·Wᵀ‖² / Σ‖X·Wᵀ‖²` over the recorded inputs `X` of Linear node `j` (weight a
/// constant of the graph), for each activation quantizer `Q`: the activation error as the
/// layer's output carries it. The element-wise `‖Q(X) − X‖²/‖X‖²` misjudges inputs whose power
/// sits in a few channels that the weights then damp (post-LayerNorm outliers) or whose small
/// values the weights amplify.
pub fn linear_input_error(
    g: &Graph,
    j: usize,
    inputs: &[(Vec<f32>, Vec<f32>)],
    quantizers: &[ActQuant],
) -> Vec<f64> {
    let node = &g.nodes[j];
    let (Some(w), &[n, k]) = (g.const_data(node.inputs[1]), g.shape(node.inputs[1])) else {
        return vec![0.0; quantizers.len()];
    };
    let mut sums = vec![(0.0, 0.0); quantizers.len()];
    for (x, _) in inputs {
        // Every row of x (all leading axes) is one token: one product of m rows.
        let m = x.len() / k.max(1);
        let exact = product(x, w, (m, n, k), true);
        for (q, (err, power)) in quantizers.iter().zip(&mut sums) {
            let (e, p) = relative(&exact, &product(&fake(q, x), w, (m, n, k), true));
            *err += e;
            *power += p;
        }
    }
    sums.iter().map(|(e, p)| e / p.max(1e-30)).collect()
}
