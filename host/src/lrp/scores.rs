//! Per-layer contribution scores: relevance a layer passes on, averaged over images and
//! normalised across layers (LRP-QViT's contribution score, anchors §1.5).

use super::{Lrp, Relevance, Seed};
use anyhow::{Result, ensure};
use qvit_device::{Graph, Op, Tensor};
use serde::Serialize;
use std::collections::BTreeMap;

/// Which per-layer relevance sum a score is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
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
    let bar = crate::eval::progress(inputs.len(), "relevance");
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

/// Ops that only move or add data, seen through when asking what feeds what.
fn is_passthrough(op: &Op) -> bool {
    matches!(
        op,
        Op::Reshape
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Gather { .. }
            | Op::Concat { .. }
            | Op::Broadcast
            | Op::Binary(qvit_device::graph::BinaryOp::Add)
            | Op::Binary(qvit_device::graph::BinaryOp::Mul)
            | Op::Binary(qvit_device::graph::BinaryOp::Div)
    )
}

/// The first non-pass-through producer of `v`'s data (its first input at each step).
fn producer(g: &Graph, mut v: u32) -> Option<usize> {
    loop {
        let qvit_device::Source::Node(i) = g.values[v as usize].source else {
            return None;
        };
        if !is_passthrough(&g.nodes[i].op) || matches!(g.nodes[i].op, Op::Binary(_)) {
            return Some(i);
        }
        v = g.nodes[i].inputs[0];
    }
}

/// Whether node `j`'s output reaches a node satisfying `f` through pass-through ops only.
fn feeds(g: &Graph, j: usize, f: &dyn Fn(&qvit_device::Node) -> bool) -> bool {
    let mut stack = vec![g.nodes[j].output];
    let mut seen = 0;
    while let Some(v) = stack.pop() {
        seen += 1;
        if seen > 64 {
            return false;
        }
        for n in g.nodes.iter().filter(|n| n.inputs.contains(&v)) {
            if f(n) {
                return true;
            }
            // Binary ops are followed only with a constant other side (scaling, a bias), so a
            // residual add does not lead into the next block.
            let with_const = n.inputs.iter().any(|&i| g.const_data(i).is_some());
            if is_passthrough(&n.op) && (!matches!(n.op, Op::Binary(_)) || with_const) {
                stack.push(n.output);
            }
        }
    }
    false
}

/// For a node making attention logits (a q or k projection, or QKᵀ itself), the attn·V
/// product whose probabilities those logits become; `None` for every other node (v included).
pub fn attention_of(g: &Graph, j: usize) -> Option<usize> {
    let is_softmax = |n: &qvit_device::Node| matches!(n.op, Op::Softmax { .. });
    let act_product = |n: &qvit_device::Node| {
        matches!(n.op, Op::MatMul { .. } | Op::QMatMul { .. })
            && g.const_data(n.inputs[1]).is_none()
    };
    let mut stack = vec![(g.nodes[j].output, false)];
    let mut seen = 0;
    while let Some((v, after_softmax)) = stack.pop() {
        seen += 1;
        if seen > 256 {
            return None;
        }
        for (i, n) in g
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.contains(&v))
        {
            let with_const = n.inputs.iter().any(|&i| g.const_data(i).is_some());
            if act_product(n) {
                if after_softmax && n.inputs[0] == v {
                    return Some(i);
                }
                // Logits pass QKᵀ once; a product met after it (or V's) ends the search.
                if !after_softmax && !crate::quant::edit::is_softmax_output(g, n.inputs[0]) {
                    stack.push((n.output, false));
                }
            } else if is_softmax(n) {
                stack.push((n.output, true));
            } else if is_passthrough(&n.op) && (!matches!(n.op, Op::Binary(_)) || with_const) {
                stack.push((n.output, after_softmax));
            }
        }
    }
    None
}

/// The layer kind: from the graph's structure (what feeds the layer and what it feeds), with
/// the exporter's names (timm, torchvision, Hugging Face) to tell q, k and v apart.
pub fn kind(g: &Graph, j: usize) -> &'static str {
    let node = &g.nodes[j];
    let name = node.name.to_ascii_lowercase();
    let has = |keys: &[&str]| keys.iter().any(|k| name.contains(k));
    let probs = |n: usize| crate::quant::edit::is_softmax_output(g, g.nodes[n].inputs[0]);
    let act_product = |n: &qvit_device::Node| {
        matches!(n.op, Op::MatMul { .. } | Op::QMatMul { .. })
            && g.const_data(n.inputs[1]).is_none()
    };
    if act_product(node) {
        return if probs(j) { "av" } else { "qk" };
    }
    let nonlinear = |op: &Op| matches!(op, Op::Gelu(_) | Op::Relu | Op::Unary(_));
    let from = producer(g, node.inputs[0]).map(|p| &g.nodes[p]);
    let outside_blocks = block_of(&node.name).is_none();
    if matches!(node.op, Op::Conv2d { .. }) || from.is_none() || has(&["patch", "embed", "stem"]) {
        "patch_embed"
    } else if outside_blocks && has(&["head", "classifier", "fc_norm", "pre_logits"]) {
        "head"
    } else if from.is_some_and(|p| act_product(p) && probs(producer(g, p.output).unwrap_or(0))) {
        "proj"
    } else if from.is_some_and(|p| nonlinear(&p.op)) {
        "fc2"
    } else if feeds(g, j, &|n| nonlinear(&n.op)) {
        "fc1"
    } else if feeds(g, j, &act_product) {
        if has(&["query", "q_proj", "/q/"]) {
            "q"
        } else if has(&["key", "k_proj", "/k/"]) {
            "k"
        } else if has(&["value", "v_proj", "/v/"]) {
            "v"
        } else {
            "qkv"
        }
    } else if outside_blocks {
        "head"
    } else {
        "linear"
    }
}

/// The block index in names like `/blocks.3/…`, `/encoder/layer.3/…`, `layers_3`.
pub fn block_of(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    for key in ["blocks", "block", "layers", "layer", "encoder_layer_"] {
        let mut rest = lower.as_str();
        while let Some(at) = rest.find(key) {
            let after = &rest[at + key.len()..];
            let digits: String = after
                .trim_start_matches(['.', '_', '/'])
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if !digits.is_empty() {
                return digits.parse().ok();
            }
            rest = after;
        }
    }
    None
}
