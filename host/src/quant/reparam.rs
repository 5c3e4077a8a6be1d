//! Post-LayerNorm channel-wise quantization made per-tensor (RepQ-ViT's scale
//! reparameterisation) with LRP-QViT-style clipping of outlier channels.
//!
//! For a LayerNorm whose output `x` feeds only Linear layers, each channel `c` gets a centre
//! `o_c` and a ratio `r_c` from its calibrated (clipped) range, and the graph computes
//! `x'_c = (x_c − o_c) / r_c` instead: the LayerNorm affine becomes `γ/r`, `(β − o)/r`, and every
//! consuming Linear absorbs the inverse, `W' = W·diag(r)`, `b' = b + W·o`. In real arithmetic
//! the network's function is unchanged, while every channel of `x'` now spans about the same
//! range, so one per-tensor activation scale fits them all.
//!
//! Clipping: a channel whose ratio exceeds `mean(r) + k·std(r)` keeps that threshold as its
//! ratio, so its outliers are clipped by the per-tensor quantizer instead of widening the
//! weight columns `W·r` that the next layer's (low-bit) weight quantizer has to cover.

use crate::graph::consumers;
use crate::graph::edit::add_const;
use qvit_device::graph::{Graph, Op, Source, ValueId};
use serde::Serialize;

/// What one reparameterisation did.
#[derive(Clone, Debug, Serialize)]
pub struct ReparamReport {
    /// LayerNorm node.
    pub layer_norm: String,
    /// Linear nodes that absorbed the inverse.
    pub linears: Vec<String>,
    /// Channels.
    pub channels: usize,
    /// Channels whose ratio was clipped.
    pub clipped: usize,
    /// Largest channel ratio before clipping.
    pub max_ratio: f32,
}

/// A LayerNorm node whose output reaches only Linear inputs (directly, or through token
/// Gather/Slice and Reshapes that keep the channel axis), with those Linear nodes.
pub struct Site {
    /// The LayerNorm node.
    pub ln: usize,
    /// Consuming Linear nodes.
    pub linears: Vec<usize>,
}

/// Every LayerNorm that can be reparameterised.
pub fn sites(g: &Graph) -> Vec<Site> {
    let cons = consumers(g);
    let mut out = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if !matches!(n.op, Op::LayerNorm { .. }) || g.outputs.contains(&n.output) {
            continue;
        }
        let mut linears = Vec::new();
        if reaches_only_linears(g, &cons, n.output, &mut linears, 0) && !linears.is_empty() {
            out.push(Site { ln: i, linears });
        }
    }
    out
}

fn reaches_only_linears(
    g: &Graph,
    cons: &[Vec<(usize, usize)>],
    v: ValueId,
    linears: &mut Vec<usize>,
    depth: usize,
) -> bool {
    if g.outputs.contains(&v) || depth > 4 {
        return false;
    }
    let last_axis = g.shape(v).len().saturating_sub(1);
    cons[v as usize].iter().all(|&(j, pos)| {
        let node = &g.nodes[j];
        match &node.op {
            Op::Linear if pos == 0 && g.const_data(node.inputs[1]).is_some() => {
                linears.push(j);
                true
            }
            Op::Gather { axis, .. } | Op::Slice { axis, .. } if *axis != last_axis => {
                reaches_only_linears(g, cons, node.output, linears, depth + 1)
            }
            Op::Reshape if g.shape(node.output).last() == g.shape(v).last() => {
                reaches_only_linears(g, cons, node.output, linears, depth + 1)
            }
            _ => false,
        }
    })
}

/// Applies the reparameterisation at `site` from per-channel ranges `[lo_c, hi_c]`;
/// `clip_k = None` disables outlier clipping.
pub fn apply(
    g: &mut Graph,
    site: &Site,
    ranges: &[(f32, f32)],
    clip_k: Option<f32>,
) -> ReparamReport {
    let c = ranges.len();
    let centre: Vec<f32> = ranges.iter().map(|&(lo, hi)| 0.5 * (lo + hi)).collect();
    let half: Vec<f32> = ranges
        .iter()
        .map(|&(lo, hi)| (0.5 * (hi - lo)).max(1e-6))
        .collect();
    let mean_half = half.iter().sum::<f32>() / c as f32;
    let mut ratio: Vec<f32> = half.iter().map(|h| h / mean_half).collect();
    let max_ratio = ratio.iter().fold(0f32, |m, &r| m.max(r));
    let mut clipped = 0;
    if let Some(k) = clip_k {
        let mean = ratio.iter().sum::<f32>() / c as f32;
        let var = ratio.iter().map(|r| (r - mean).powi(2)).sum::<f32>() / c as f32;
        let thr = mean + k * var.sqrt();
        for r in &mut ratio {
            if *r > thr {
                *r = thr;
                clipped += 1;
            }
        }
    }
    let ln = &g.nodes[site.ln];
    let (gamma, beta) = (ln.inputs[1] as usize, ln.inputs[2] as usize);
    if let Source::Const(gm) = &mut g.values[gamma].source {
        for (x, r) in gm.iter_mut().zip(&ratio) {
            *x /= r;
        }
    }
    if let Source::Const(b) = &mut g.values[beta].source {
        for ((x, o), r) in b.iter_mut().zip(&centre).zip(&ratio) {
            *x = (*x - o) / r;
        }
    }
    let mut names = Vec::new();
    for &j in &site.linears {
        names.push(g.nodes[j].name.clone());
        let w_id = g.nodes[j].inputs[1] as usize;
        let n = g.values[w_id].shape[0];
        let Source::Const(w) = &mut g.values[w_id].source else {
            continue;
        };
        let shift: Vec<f32> = w
            .chunks_exact(c)
            .map(|row| row.iter().zip(&centre).map(|(a, b)| a * b).sum())
            .collect();
        for row in w.chunks_exact_mut(c) {
            for (x, r) in row.iter_mut().zip(&ratio) {
                *x *= r;
            }
        }
        match g.nodes[j].inputs.get(2).copied() {
            Some(b) => {
                if let Source::Const(bias) = &mut g.values[b as usize].source {
                    for (x, s) in bias.iter_mut().zip(&shift) {
                        *x += s;
                    }
                }
            }
            None => {
                let name = format!("{}.reparam_bias", g.nodes[j].name);
                let b = add_const(g, name, vec![n], Source::Const(shift));
                g.nodes[j].inputs.push(b);
            }
        }
    }
    ReparamReport {
        layer_norm: g.nodes[site.ln].name.clone(),
        linears: names,
        channels: c,
        clipped,
        max_ratio,
    }
}
