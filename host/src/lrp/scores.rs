//! Per-layer contribution scores: relevance a layer passes on, averaged over images and
//! normalised across layers (LRP-QViT's contribution score, anchors §1.5).

use super::{Lrp, Relevance, Seed};
use crate::graph::kinds::{attention_of, block_of, kind};
use anyhow::{Result, ensure};
use qvit_device::{Graph, Op, Tensor};
use serde::Serialize;
use std::collections::BTreeMap;

/// Which per-layer relevance sum a score is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Statistic {
    /// `Σ|x ⊙ g_x|` at the layer's activation input(s): how much relevance flows through the
    /// values it quantizes, whatever its sign.
    AbsIn,
    /// `|Σ x ⊙ g_x|` at the input(s): net relevance, where positive and negative evidence cancel.
    SignedIn,
    /// `|Σ y ⊙ g_y|` at the layer's output.
    AbsOut,
    /// abs-in, except that the layers making attention logits (q, k, QKᵀ) are scored by the
    /// relevance of the attention probabilities they produce: AttnLRP's softmax rule leaves
    /// little relevance on the logits, yet an error in them moves every probability.
    AbsInAttn,
    /// First-order variance of the explained output under quantization noise, with LRP's
    /// modified gradient: `mean(x²)·Σ g_x²` for activations, `mean(W²)·‖g_yᵀx‖²` for weights.
    /// It weighs concentrated relevance above diffuse relevance of the same total, as noise does.
    Noise,
}

impl Statistic {
    fn of(self, l: &super::LayerRelevance) -> f64 {
        match self {
            Statistic::AbsIn | Statistic::AbsInAttn => l.abs_in,
            Statistic::SignedIn => l.signed_in.abs(),
            Statistic::AbsOut => l.signed_out.abs(),
            Statistic::Noise => l.act_noise,
        }
    }

    fn of_weights(self, l: &super::LayerRelevance) -> f64 {
        match self {
            Statistic::Noise => l.weight_noise,
            other => other.of(l),
        }
    }
}

/// One layer's score.
#[derive(Clone, Debug, Serialize)]
pub struct LayerScore {
    /// Node name (the key of per-layer bits).
    pub name: String,
    /// Layer kind: qkv, q, k, v, proj, fc1, fc2, head, patch_embed, qk (QKᵀ), av (attn·V), linear.
    pub kind: String,
    /// Transformer block, when the name carries one.
    pub block: Option<usize>,
    /// Weight parameters (0 for products of two activations).
    pub params: usize,
    /// Normalised score (all layers sum to 1).
    pub score: f64,
    /// Normalised score for the layer's weights (the same as `score` except for
    /// [`Statistic::Noise`]).
    pub weight_score: f64,
    /// Standard deviation of the per-image normalised score.
    pub std: f64,
}

/// Scores of every layer, plus how well relevance was conserved.
#[derive(Clone, Debug, Serialize)]
pub struct Scores {
    /// Images used.
    pub images: usize,
    /// The statistic.
    pub statistic: Statistic,
    /// Per layer, in graph order.
    pub layers: Vec<LayerScore>,
    /// Summed score per kind.
    pub by_kind: BTreeMap<String, f64>,
    /// Summed score per block.
    pub by_block: BTreeMap<usize, f64>,
    /// Per cut value (in order; the first is the input): mean of `ΣR / seeded relevance`.
    pub conservation: Vec<(String, f64)>,
    /// Seconds spent in relevance passes.
    pub seconds: f64,
}

/// Averages per-layer relevance over `inputs`. Each image's layer sums are normalised to sum 1
/// before averaging, so every image weighs the same whatever its logit.
pub fn layer_scores(
    lrp: &mut Lrp,
    inputs: &[Tensor],
    seed: Seed,
    stat: Statistic,
    mut each: impl FnMut(usize, &Relevance),
) -> Result<Scores> {
    ensure!(!inputs.is_empty(), "relevance needs at least one image");
    let start = std::time::Instant::now();
    let mut per_image: Vec<Vec<f64>> = Vec::new();
    let mut per_image_w: Vec<Vec<f64>> = Vec::new();
    let mut conservation: Vec<(String, f64)> = Vec::new();
    let mut names = Vec::new();
    let mut probs_of: Vec<Option<usize>> = Vec::new();
    for (i, x) in inputs.iter().enumerate() {
        let r = lrp.run(x, seed)?;
        if i == 0 {
            let nodes: Vec<usize> = r.layers.iter().map(|l| l.node).collect();
            probs_of = nodes
                .iter()
                .map(|&j| {
                    let av = attention_of(lrp.graph(), j)?;
                    nodes.iter().position(|&n| n == av)
                })
                .collect();
        }
        let normalised = |raw: Vec<f64>| -> Vec<f64> {
            let total: f64 = raw.iter().sum();
            raw.iter()
                .map(|v| if total > 0.0 { v / total } else { 0.0 })
                .collect()
        };
        let attn = |k: usize, v: f64| match probs_of.get(k).copied().flatten() {
            // A fused qkv projection keeps its own relevance when that is larger (it carries V's).
            Some(av) if stat == Statistic::AbsInAttn => v.max(r.layers[av].abs_first),
            _ => v,
        };
        let raw = |f: &dyn Fn(&super::LayerRelevance) -> f64| -> Vec<f64> {
            r.layers
                .iter()
                .enumerate()
                .map(|(k, l)| attn(k, f(l)))
                .collect()
        };
        per_image.push(normalised(raw(&|l| stat.of(l))));
        per_image_w.push(normalised(raw(&|l| stat.of_weights(l))));
        if conservation.is_empty() {
            conservation = r.cuts.iter().map(|(n, _)| (n.clone(), 0.0)).collect();
            names = r.layers.iter().map(|l| (l.node, l.name.clone())).collect();
        }
        for ((_, acc), (_, s)) in conservation.iter_mut().zip(&r.cuts) {
            *acc += if r.total != 0.0 { s / r.total } else { 0.0 } / inputs.len() as f64;
        }
        each(i, &r);
    }
    let g = lrp.graph();
    let n = inputs.len() as f64;
    let layers: Vec<LayerScore> = names
        .iter()
        .enumerate()
        .map(|(k, (node, name))| {
            let vals: Vec<f64> = per_image.iter().map(|v| v[k]).collect();
            let mean = vals.iter().sum::<f64>() / n;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            LayerScore {
                name: name.clone(),
                kind: kind(g, *node).to_string(),
                block: block_of(name),
                params: params(g, *node),
                score: mean,
                weight_score: per_image_w.iter().map(|v| v[k]).sum::<f64>() / n,
                std: var.sqrt(),
            }
        })
        .collect();
    let mut by_kind = BTreeMap::new();
    let mut by_block = BTreeMap::new();
    for l in &layers {
        *by_kind.entry(l.kind.clone()).or_insert(0.0) += l.score;
        if let Some(b) = l.block {
            *by_block.entry(b).or_insert(0.0) += l.score;
        }
    }
    Ok(Scores {
        images: inputs.len(),
        statistic: stat,
        layers,
        by_kind,
        by_block,
        conservation,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// [`layer_scores`] of a fresh pass over `graph` with a progress bar; `opts` gets the weight
/// products the noise statistic needs.
pub fn scores_with_progress(
    graph: Graph,
    inputs: &[Tensor],
    seed: Seed,
    opts: super::LrpOptions,
    stat: Statistic,
) -> Result<Scores> {
    let opts = super::LrpOptions {
        weight_noise: stat == Statistic::Noise,
        ..opts
    };
    let mut lrp = Lrp::new(graph, opts)?;
    let bar = crate::progress::bar(inputs.len(), "relevance");
    let s = layer_scores(&mut lrp, inputs, seed, stat, |_, _| bar.inc(1))?;
    bar.finish_and_clear();
    Ok(s)
}

/// Weight parameters of a layer node.
fn params(g: &Graph, j: usize) -> usize {
    let n = &g.nodes[j];
    match n.op {
        Op::Linear | Op::QLinear { .. } | Op::Conv2d { .. } => {
            g.shape(n.inputs[1]).iter().product()
        }
        _ => 0,
    }
}
