//! Layer-wise Relevance Propagation through a device graph (AttnLRP rules).
//!
//! One forward pass on the device executor records every value; one reverse pass applies a rule
//! per op ([`rules`]) to a *modified gradient*, and the relevance of a value `v` is `v ⊙ g_v`.
//! This "input × modified gradient" form (LXT's efficient AttnLRP) was chosen over explicit
//! `R_in = f(R_out)` rules because it needs no division by pre-activations that can vanish,
//! shares the backward products of ordinary gradients, and gives relevance at every value from
//! one pass, which is what per-layer scores need. Each rule is still the explicit LRP rule it
//! names: ε-rule on Linear / Conv2d / MatMul, identity on element-wise nonlinearities,
//! LayerNorm with σ held constant, AttnLRP's softmax rule and uniform rule on products of two
//! activations (or CP-LRP, which stops relevance at the attention probabilities).

pub mod derivative;
pub mod index;
pub mod rules;
pub mod scores;

use anyhow::{Context, Result, bail, ensure};
use qvit_device::exec::Executor;
use qvit_device::{Graph, Op, Source, Tensor};
use qvit_kernels::KernelSet;
use rules::Ctx;
use serde::Serialize;

/// How relevance crosses the attention probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AttnRule {
    /// AttnLRP: softmax by its Deep-Taylor rule, both products by the uniform rule (½ each).
    AttnLrp,
    /// CP-LRP: no relevance through the attention probabilities (and so none through Q and K).
    Cp,
}

/// Rule parameters.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LrpOptions {
    /// ε of the ε-rule (0 gives LRP-0, i.e. gradient × input on piecewise-linear nets).
    pub eps: f32,
    /// Attention rule.
    pub attn: AttnRule,
    /// Plain gradient instead of LRP rules (relevance = gradient × input): the baseline
    /// explanation, and a check of the backward products.
    pub gradient: bool,
    /// Also compute [`LayerRelevance::weight_noise`] (one more product per Linear).
    pub weight_noise: bool,
}

impl Default for LrpOptions {
    fn default() -> Self {
        LrpOptions {
            eps: 1e-6,
            attn: AttnRule::AttnLrp,
            gradient: false,
            weight_noise: false,
        }
    }
}

/// Where relevance starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seed {
    /// The logit of this class (the predicted class when `None`): relevance = that logit.
    Logit(Option<usize>),
    /// The output's L2 norm (models without a classifier): `R = y²/‖y‖`, summing to `‖y‖`.
    Norm,
    /// Every output token (row of the last axis) alike: `R_t = y_t²/‖y_t‖²`, one unit of
    /// relevance per token, so high-norm tokens do not dominate (as a mean token cosine does not).
    Tokens,
}

/// A relevance target by name: `auto` is the predicted class when the output is one vector of
/// logits, else the output norm.
pub fn parse_seed(target: &str, graph: &Graph) -> Result<Seed> {
    Ok(match target {
        "norm" => Seed::Norm,
        "tokens" => Seed::Tokens,
        "predicted" => Seed::Logit(None),
        "auto" => {
            if crate::graph::is_classifier(graph) {
                Seed::Logit(None)
            } else {
                Seed::Norm
            }
        }
        t => Seed::Logit(Some(t.parse().with_context(|| {
            format!("--target {t:?}: expected a class index, `predicted`, `norm` or `tokens`")
        })?)),
    })
}

/// Relevance a layer node passes to its activation input(s), and what it received.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LayerRelevance {
    /// Node index in the graph.
    pub node: usize,
    /// Node name.
    pub name: String,
    /// `Σ|x ⊙ g_x|` over its activation inputs.
    pub abs_in: f64,
    /// `Σ x ⊙ g_x` over its activation inputs.
    pub signed_in: f64,
    /// `Σ|x ⊙ g_x|` at its first input only (the attention probabilities of attn·V).
    pub abs_first: f64,
    /// `Σ x ⊙ g_x` at its first input only.
    pub signed_first: f64,
    /// `Σ y ⊙ g_y` at its output.
    pub signed_out: f64,
    /// `mean(x²)·Σ g_x²` over its activation inputs: the variance of the seeded output under
    /// independent noise of relative power 1 on the inputs, to first order with the modified
    /// gradient (what quantizing the inputs costs, per unit of relative error).
    pub act_noise: f64,
    /// `mean(W²)·‖g_yᵀx‖²` of a Linear: the same for noise on the weights (0 for other layers,
    /// and unless [`LrpOptions::weight_noise`] is set).
    pub weight_noise: f64,
}

/// The result of one relevance pass.
#[derive(Clone, Debug)]
pub struct Relevance {
    /// Target class (for [`Seed::Logit`]).
    pub target: Option<usize>,
    /// The seeded relevance: the target logit, or the output norm.
    pub total: f64,
    /// The model's outputs.
    pub outputs: Vec<Tensor>,
    /// Relevance at the graph input (`x ⊙ g_x`), in the input's shape.
    pub input: Tensor,
    /// One entry per Linear, QLinear, Conv2d, MatMul and QMatMul node, in graph order.
    pub layers: Vec<LayerRelevance>,
    /// `(value name, Σ R)` at every value all input-to-output paths pass through, in order.
    pub cuts: Vec<(String, f64)>,
}

/// Whether an op is a layer that gets a relevance score (what mixed precision assigns bits to).
pub fn is_layer(op: &Op) -> bool {
    matches!(
        op,
        Op::Linear
            | Op::QLinear { .. }
            | Op::Conv2d { .. }
            | Op::MatMul { .. }
            | Op::QMatMul { .. }
    )
}

/// A graph prepared for relevance passes.
pub struct Lrp {
    exec: Executor,
    opts: LrpOptions,
    live: Vec<bool>,
    /// Per node: a MatMul whose left operand is attention probabilities (softmax output).
    attn_probs: Vec<bool>,
    /// Per node: its output is a cut value.
    cut_after: Vec<bool>,
}

impl Lrp {
    /// Plans `graph` on the detected kernels.
    pub fn new(graph: Graph, opts: LrpOptions) -> Result<Lrp> {
        ensure!(
            graph.inputs.len() == 1,
            "relevance needs a single-input graph"
        );
        ensure!(!graph.outputs.is_empty(), "the graph has no output");
        ensure!(
            opts.eps >= 0.0 && opts.eps.is_finite(),
            "ε must be finite and ≥ 0"
        );
        let live = live_values(&graph);
        rules::check(&graph, &live)?;
        let attn_probs = graph
            .nodes
            .iter()
            .map(|n| {
                matches!(n.op, Op::MatMul { .. } | Op::QMatMul { .. })
                    && crate::graph::is_softmax_output(&graph, n.inputs[0])
            })
            .collect();
        let cut_after = cut_values(&graph, &live);
        let exec = Executor::new(graph, KernelSet::detect()).context("planning the graph")?;
        Ok(Lrp {
            exec,
            opts,
            live,
            attn_probs,
            cut_after,
        })
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        self.exec.graph()
    }

    /// One forward and one relevance pass on `input`.
    pub fn run(&mut self, input: &Tensor, seed: Seed) -> Result<Relevance> {
        let nvals = self.exec.graph().values.len();
        let mut values: Vec<Option<Vec<f32>>> = vec![None; nvals];
        let outputs = self.exec.run_observed(&[input], &mut |id, d| {
            values[id as usize] = Some(d.to_vec())
        })?;
        let g = self.exec.graph();
        let in_id = g.inputs[0];
        values[in_id as usize] = Some(input.data.clone());

        let out_id = g.outputs[0];
        let y = values[out_id as usize]
            .as_ref()
            .context("the output was not computed")?;
        let (target, total, seed_g) = seed_gradient(y, g.shape(out_id), seed)?;

        let mut grads: Vec<Option<Vec<f32>>> = vec![None; nvals];
        grads[out_id as usize] = Some(seed_g);
        let cx = Ctx {
            graph: g,
            values: &values,
            live: &self.live,
            opts: &self.opts,
        };
        let mut layers = Vec::new();
        let mut cuts = Vec::new();
        for (j, node) in g.nodes.iter().enumerate().rev() {
            let Some(gy) = grads[node.output as usize].take() else {
                if is_layer(&node.op) {
                    layers.push(LayerRelevance {
                        node: j,
                        name: node.name.clone(),
                        ..Default::default()
                    });
                }
                continue;
            };
            let y = values[node.output as usize]
                .as_deref()
                .context("node output missing")?;
            if self.cut_after[j] {
                cuts.push((g.values[node.output as usize].name.clone(), dot(y, &gy)));
            }
            let contrib = rules::backward(&cx, node, &gy, self.attn_probs[j])
                .with_context(|| format!("relevance through {}", node.name))?;
            let mut entry = LayerRelevance {
                node: j,
                name: node.name.clone(),
                signed_out: dot(y, &gy),
                ..Default::default()
            };
            if self.opts.weight_noise && is_layer(&node.op) {
                entry.weight_noise = rules::weight_noise(&cx, node, &gy)?;
            }
            for (pos, (&inp, c)) in node.inputs.iter().zip(contrib).enumerate() {
                let Some(c) = c else { continue };
                if !self.live[inp as usize] {
                    continue;
                }
                let x = values[inp as usize].as_deref().context("input missing")?;
                ensure!(
                    c.len() == x.len(),
                    "{}: gradient has the wrong size",
                    node.name
                );
                let (mut xx, mut gg, mut abs, mut signed) = (0.0, 0.0, 0.0, 0.0);
                for (&xv, &cv) in x.iter().zip(&c) {
                    let r = xv as f64 * cv as f64;
                    abs += r.abs();
                    signed += r;
                    xx += xv as f64 * xv as f64;
                    gg += cv as f64 * cv as f64;
                }
                if pos == 0 {
                    entry.abs_first = abs;
                    entry.signed_first = signed;
                }
                entry.abs_in += abs;
                entry.signed_in += signed;
                entry.act_noise += xx / x.len().max(1) as f64 * gg;
                match &mut grads[inp as usize] {
                    Some(acc) => acc.iter_mut().zip(&c).for_each(|(a, v)| *a += v),
                    slot => *slot = Some(c),
                }
            }
            if is_layer(&node.op) {
                layers.push(entry);
            }
        }
        layers.reverse();
        cuts.reverse();
        let gx = grads[in_id as usize]
            .take()
            .unwrap_or_else(|| vec![0.0; input.data.len()]);
        let rel: Vec<f32> = input.data.iter().zip(&gx).map(|(x, g)| x * g).collect();
        cuts.insert(0, (g.values[in_id as usize].name.clone(), sum(&rel)));
        Ok(Relevance {
            target,
            total,
            outputs,
            input: Tensor::new(input.shape.clone(), rel)?,
            layers,
            cuts,
        })
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn sum(a: &[f32]) -> f64 {
    a.iter().map(|&x| x as f64).sum()
}

/// The target, the seeded relevance and the output's modified gradient.
fn seed_gradient(y: &[f32], shape: &[usize], seed: Seed) -> Result<(Option<usize>, f64, Vec<f32>)> {
    ensure!(
        y.iter().all(|v| v.is_finite()),
        "the model output is not finite"
    );
    let mut g = vec![0.0; y.len()];
    match seed {
        Seed::Logit(t) => {
            let classes = *shape.last().unwrap_or(&1);
            ensure!(
                y.len() == classes,
                "a class target needs one output vector per image, the output is {shape:?}; \
                 seed the output norm instead"
            );
            let t = match t {
                Some(t) if t < classes => t,
                Some(t) => bail!("target class {t} is out of range (the model has {classes})"),
                None => argmax(y),
            };
            g[t] = 1.0;
            Ok((Some(t), y[t] as f64, g))
        }
        Seed::Norm => {
            let norm = y.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            ensure!(norm > 0.0, "the output is all zeros: nothing to explain");
            for (gv, &v) in g.iter_mut().zip(y) {
                *gv = (v as f64 / norm) as f32;
            }
            Ok((None, norm, g))
        }
        Seed::Tokens => {
            let d = *shape.last().unwrap_or(&1);
            let mut total = 0.0;
            for (gr, yr) in g.chunks_mut(d.max(1)).zip(y.chunks(d.max(1))) {
                let sq: f64 = yr.iter().map(|&v| (v as f64).powi(2)).sum();
                if sq > 0.0 {
                    total += 1.0;
                    for (gv, &v) in gr.iter_mut().zip(yr) {
                        *gv = (v as f64 / sq) as f32;
                    }
                }
            }
            ensure!(total > 0.0, "the output is all zeros: nothing to explain");
            Ok((None, total, g))
        }
    }
}

/// Index of the largest element (the first on ties).
pub fn argmax(y: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in y.iter().enumerate() {
        if v > y[best] {
            best = i;
        }
    }
    best
}

/// Whether each value depends on the graph input.
fn live_values(g: &Graph) -> Vec<bool> {
    let mut live: Vec<bool> = g
        .values
        .iter()
        .map(|v| matches!(v.source, Source::Input(_)))
        .collect();
    for n in &g.nodes {
        if n.inputs.iter().any(|&i| live[i as usize]) {
            live[n.output as usize] = true;
        }
    }
    live
}

/// Per node: whether its output is the only input-dependent value still needed after it, i.e.
/// every path from the input to the output passes through it (relevance must be conserved
/// there, up to what biases and ε absorb).
fn cut_values(g: &Graph, live: &[bool]) -> Vec<bool> {
    let n = g.nodes.len();
    let mut last_use = vec![None::<usize>; g.values.len()];
    for (j, node) in g.nodes.iter().enumerate() {
        for &i in &node.inputs {
            last_use[i as usize] = Some(j);
        }
    }
    for &o in &g.outputs {
        last_use[o as usize] = Some(n);
    }
    // Number of live values produced so far and still needed after node j.
    let mut closing = vec![0usize; n + 1];
    let mut open = g
        .inputs
        .iter()
        .filter(|&&i| last_use[i as usize].is_some())
        .count();
    for &i in &g.inputs {
        if let Some(k) = last_use[i as usize] {
            closing[k] += 1;
        }
    }
    let mut cut = vec![false; n];
    for (j, node) in g.nodes.iter().enumerate() {
        let o = node.output as usize;
        if live[o]
            && let Some(k) = last_use[o]
        {
            open += 1;
            closing[k] += 1;
        }
        open -= closing[j];
        cut[j] = live[o] && open == 1 && last_use[o].is_some_and(|k| k > j);
    }
    cut
}
