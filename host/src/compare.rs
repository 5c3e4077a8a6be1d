//! `qvit compare`: how far a quantized bundle is from its f32 model, at the output and after
//! every quantized layer (where does the error enter?).

use crate::data::Dataset;
use anyhow::{Context, Result, ensure};
use qvit_device::exec::Executor;
use qvit_device::graph::{Graph, Op, ValueId};
use qvit_kernels::KernelSet;
use serde::Serialize;
use std::collections::HashMap;

/// Agreement of one quantized layer with the f32 model.
#[derive(Clone, Debug, Serialize)]
pub struct LayerFidelity {
    /// Quantized node.
    pub name: String,
    /// `linear`, `attn_qk` or `attn_v`.
    pub op: String,
    /// Value compared (the layer output, or the first later value both graphs share).
    pub value: String,
    /// Mean over images of the cosine similarity with the f32 value.
    pub cosine: f64,
}

/// Result of a comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Images compared.
    pub n: usize,
    /// Share of images where both models rank the same class first.
    pub top1_agreement: f64,
    /// Mean cosine similarity of the outputs.
    pub output_cosine_mean: f64,
    /// Smallest output cosine similarity.
    pub output_cosine_min: f64,
    /// Top-1 accuracy of the quantized bundle (labelled data only).
    pub top1_quantized: Option<f64>,
    /// Top-1 accuracy of the f32 model (labelled data only).
    pub top1_float: Option<f64>,
    /// Per quantized layer, in graph order.
    pub layers: Vec<LayerFidelity>,
}

/// Cosine similarity in f64 (1 when both are zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 && bb == 0.0 {
        1.0
    } else {
        ab / (aa.sqrt() * bb.sqrt()).max(f64::MIN_POSITIVE)
    }
}

/// For each quantized node of `q`, the value to compare and its id in `f`: its own output when
/// `f` has a value of that name and shape, else the first value downstream that does. Nodes
/// that reach the same value (the groups of a layer split by `--act-groups`) count once, as
/// the last of them.
fn pairs(q: &Graph, f: &Graph) -> Vec<(usize, ValueId, ValueId)> {
    let by_name: HashMap<&str, ValueId> = f
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.as_str(), i as ValueId))
        .collect();
    let cons = crate::graph::consumers(q);
    let mut out = Vec::new();
    for (i, n) in q.nodes.iter().enumerate() {
        if !matches!(n.op, Op::QLinear { .. } | Op::QMatMul { .. }) {
            continue;
        }
        let mut v = n.output;
        for _ in 0..16 {
            let val = &q.values[v as usize];
            if let Some(&fv) = by_name.get(val.name.as_str())
                && f.shape(fv) == val.shape.as_slice()
            {
                out.retain(|&(_, qv, _)| qv != v);
                out.push((i, v, fv));
                break;
            }
            match cons[v as usize].as_slice() {
                [(j, _)] => v = q.nodes[*j].output,
                _ => break,
            }
        }
    }
    out
}

fn argmax(x: &[f32]) -> usize {
    x.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Runs both graphs on the first `limit` samples of `data` (preprocessed with `pre`).
pub fn compare(
    quantized: &Graph,
    float: &Graph,
    data: &Dataset,
    pre: &qvit_device::Preprocess,
    limit: Option<usize>,
) -> Result<Comparison> {
    let n = limit.unwrap_or(usize::MAX).min(data.len());
    ensure!(n > 0, "no samples to compare on");
    let pairs = pairs(quantized, float);
    let quantized_layers = quantized
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::QLinear { .. } | Op::QMatMul { .. }))
        .count();
    ensure!(
        quantized_layers == 0 || !pairs.is_empty(),
        "none of the bundle's {quantized_layers} quantized layers has a counterpart in the model \
         (matched by value name and shape): is it the model the bundle was made from?"
    );
    ensure!(
        quantized.outputs.first().map(|&o| quantized.shape(o))
            == float.outputs.first().map(|&o| float.shape(o)),
        "the bundle's output shape differs from the model's"
    );
    let ks = KernelSet::detect();
    let mut qx = Executor::new(quantized.clone(), ks).context("planning the bundle")?;
    let mut fx = Executor::new(float.clone(), ks).context("planning the f32 model")?;
    let qwant: HashMap<ValueId, usize> = pairs.iter().enumerate().map(|(k, p)| (p.1, k)).collect();
    let fwant: HashMap<ValueId, usize> = pairs.iter().enumerate().map(|(k, p)| (p.2, k)).collect();
    let mut layer_cos = vec![0f64; pairs.len()];
    let (mut agree, mut cos_sum, mut cos_min) = (0usize, 0f64, f64::INFINITY);
    let (mut right_q, mut right_f, mut labelled) = (0usize, 0usize, 0usize);
    let bar = crate::progress::bar(n, "compare");
    for i in 0..n {
        let s = data.sample(i, pre)?;
        let mut qv: Vec<Vec<f32>> = vec![Vec::new(); pairs.len()];
        let mut fv: Vec<Vec<f32>> = vec![Vec::new(); pairs.len()];
        let qo = qx.run_observed(&[&s.input], &mut |v, d| {
            if let Some(&k) = qwant.get(&v) {
                qv[k] = d.to_vec();
            }
        })?;
        let fo = fx.run_observed(&[&s.input], &mut |v, d| {
            if let Some(&k) = fwant.get(&v) {
                fv[k] = d.to_vec();
            }
        })?;
        for k in 0..pairs.len() {
            layer_cos[k] += cosine(&qv[k], &fv[k]);
        }
        let (a, b) = (&qo[0].data, &fo[0].data);
        let c = cosine(a, b);
        cos_sum += c;
        cos_min = cos_min.min(c);
        agree += (argmax(a) == argmax(b)) as usize;
        if let Some(l) = s.label {
            labelled += 1;
            right_q += (argmax(a) == l) as usize;
            right_f += (argmax(b) == l) as usize;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let acc = |r: usize| (labelled == n).then(|| r as f64 / n as f64);
    Ok(Comparison {
        n,
        top1_agreement: agree as f64 / n as f64,
        output_cosine_mean: cos_sum / n as f64,
        output_cosine_min: cos_min,
        top1_quantized: acc(right_q),
        top1_float: acc(right_f),
        layers: pairs
            .iter()
            .zip(&layer_cos)
            .map(|(&(node, v, _), c)| LayerFidelity {
                name: crate::graph::layer_name(&quantized.nodes[node].name).to_string(),
                op: match quantized.nodes[node].op {
                    Op::QLinear { .. } => "linear".into(),
                    Op::QMatMul {
                        a: qvit_device::quant::ActQuant::Log2 { .. },
                        ..
                    } => "attn_v".into(),
                    _ => "attn_qk".into(),
                },
                value: quantized.values[v as usize].name.clone(),
                cosine: c / n as f64,
            })
            .collect(),
    })
}
