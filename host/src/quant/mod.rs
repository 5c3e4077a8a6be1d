//! Post-training quantization of an imported f32 graph into a quantized device graph.
//!
//! Pipeline ([`quantize`]):
//! 1. patch-embedding convolutions become Linear layers ([`patchify`]); with
//!    [`QuantOptions::rotate`], attention heads are Hadamard-rotated ([`rotate`]);
//! 2. calibration pass 1 (device f32 executor) records post-LayerNorm activations per channel;
//! 3. post-LayerNorm reparameterisation with outlier-channel clipping ([`reparam`]);
//! 4. calibration pass 2 records the input of every Linear and MatMul;
//! 5. every Linear becomes a QLinear (symmetric per-output-channel weights, per-tensor
//!    activations with a calibrated clip) and every activation × activation MatMul a QMatMul
//!    (post-softmax operands on the log2 quantizer).

pub mod allocate;
pub mod calib;
pub mod clip;
pub mod gptq;
pub mod groups;
pub mod layer_error;
pub mod linalg;
pub mod mixed;
pub mod patchify;
pub mod reparam;
pub mod report;
pub mod rotate;
pub mod select;

use crate::graph::consumers;
use crate::graph::edit::add_const;
use anyhow::{Result, ensure};
use calib::{calibrate, calibrate_with_gram};
use clip::ClipMethod;
use qvit_device::Tensor;
use qvit_device::graph::{Graph, Op, Source, ValueId};
use qvit_device::quant::ActQuant;
pub use report::{LayerReport, QuantReport};
use std::collections::BTreeMap;

/// What to quantize and how; every technique can be switched off for ablation.
#[derive(Clone, Debug)]
pub struct QuantOptions {
    /// Weight bits of the body (2..=8).
    pub wbits: u8,
    /// Activation bits of the body (2..=8).
    pub abits: u8,
    /// Weight and activation bits of the patch embedding and the classifier head.
    pub edge_bits: u8,
    /// Activation range selection.
    pub clip: ClipMethod,
    /// Post-LayerNorm per-channel reparameterisation (RepQ-ViT).
    pub reparam: bool,
    /// Clip outlier channels in the reparameterisation at `mean + k·std` of the ratios (applied
    /// where the consuming layer's activations have fewer than 8 bits).
    pub channel_clip: Option<f32>,
    /// Log2 quantizer for post-softmax operands (else uniform).
    pub log2_softmax: bool,
    /// Per-layer `(wbits, abits)` by node name, overriding the defaults (mixed precision).
    pub layer_bits: BTreeMap<String, (u8, u8)>,
    /// Round the remaining f32 constants (biases, norms, embeddings, scales) to f16 values so
    /// the bundle stores them in 2 bytes; tensors outside f16's normal range stay f32.
    pub f16_consts: bool,
    /// How weights are rounded onto their per-channel grid.
    pub weight_round: WeightRound,
    /// Rotate attention heads by a Hadamard matrix before calibration ([`rotate`]).
    pub rotate: bool,
    /// How the inputs of the body's Linear layers get their activation scale.
    pub act_scale: ActScale,
    /// How the operands of the attention products (Q, K, V; not the probabilities) get theirs:
    /// [`ActScale::Dynamic`] gives Q a step and zero point per token ([`ActQuant::Dynamic`]),
    /// K a step per token and V one per channel ([`ActQuant::DynamicSymmetric`]).
    pub attn_scale: ActScale,
    /// Under [`ActScale::Dynamic`], a step per token and group of this many input features
    /// instead of one per token ([`groups`]); `None`: whole rows.
    pub act_groups: Option<usize>,
}

/// Where the activation scale of a body Linear's input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActScale {
    /// One calibrated scale and zero point per tensor.
    Static,
    /// A scale and zero point per row (token), from that row's range at run time
    /// ([`ActQuant::Dynamic`]); the patch embedding and head stay static.
    Dynamic,
}

impl std::fmt::Display for ActScale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ActScale::Static => "static",
            ActScale::Dynamic => "dynamic",
        })
    }
}

/// How weights are rounded onto the grid their per-output-channel scales define.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightRound {
    /// Each weight to its nearest grid point.
    Nearest,
    /// GPTQ: column by column, each column's error fed forward through the inverse calibration
    /// Hessian of the layer's input ([`gptq`]), columns in their stored order.
    Gptq,
    /// GPTQ with the columns by decreasing Hessian diagonal (act-order).
    #[serde(rename = "gptq-act-order")]
    GptqActOrder,
}

impl WeightRound {
    /// The GPTQ column order, or `None` for nearest rounding.
    pub fn gptq_order(self) -> Option<gptq::Order> {
        match self {
            WeightRound::Nearest => None,
            WeightRound::Gptq => Some(gptq::Order::Natural),
            WeightRound::GptqActOrder => Some(gptq::Order::Activation),
        }
    }
}

impl std::fmt::Display for WeightRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WeightRound::Nearest => "nearest",
            WeightRound::Gptq => "gptq",
            WeightRound::GptqActOrder => "gptq-act-order",
        })
    }
}

impl Default for QuantOptions {
    fn default() -> Self {
        QuantOptions {
            wbits: 8,
            abits: 8,
            edge_bits: 8,
            clip: ClipMethod::Mse,
            reparam: true,
            channel_clip: Some(2.0),
            log2_softmax: true,
            layer_bits: BTreeMap::new(),
            f16_consts: true,
            weight_round: WeightRound::Nearest,
            rotate: false,
            act_scale: ActScale::Static,
            attn_scale: ActScale::Static,
            act_groups: None,
        }
    }
}

/// A quantized graph and what was done to it.
pub struct Quantized {
    /// The graph for the device.
    pub graph: Graph,
    /// Per-layer bits, quantizers and reparameterisations.
    pub report: QuantReport,
}

/// The f32 graph after the exact rewrites (patchify, reparameterisation) and before any
/// quantizer, plus what the pipeline needs to finish: useful on its own to check that the
/// rewrites keep the function.
pub struct Prepared {
    /// The rewritten f32 graph.
    pub graph: Graph,
    /// Linear nodes made from patch-embedding convolutions.
    pub patch_linears: Vec<String>,
    /// Reparameterisations applied.
    pub reparams: Vec<reparam::ReparamReport>,
    /// The head rotation, when asked for.
    pub rotation: Option<rotate::RotateReport>,
}

/// Steps 1–3 of the pipeline.
pub fn prepare(g: &Graph, calib: &[Tensor], opts: &QuantOptions) -> Result<Prepared> {
    let mut g = g.clone();
    let patch_linears = patchify::patchify_convs(&mut g);
    // Before the reparameterisation, so its ranges are those of the rotated graph.
    let rotation = match (opts.rotate, calib.first()) {
        (true, Some(probe)) => Some(rotate::rotate_heads(&mut g, probe)?),
        _ => None,
    };
    let mut reparams = Vec::new();
    if opts.reparam {
        let sites = reparam::sites(&g);
        let outs: Vec<ValueId> = sites.iter().map(|s| g.nodes[s.ln].output).collect();
        let cal = calibrate(&g, calib, &[], &outs, "calibrate (post-LayerNorm)")?;
        for (site, v) in sites.iter().zip(&outs) {
            let bits = site
                .linears
                .iter()
                .map(|&j| layer_bits(&g, j, opts, &[]).1)
                .max()
                .unwrap_or(opts.abits);
            let ranges: Vec<(f32, f32)> = cal.channels[v]
                .iter()
                .map(|s| clip::range_for(s, opts.clip, bits))
                .collect();
            // At 8 bits the clip gives up resolution without curing a range problem (measured in
            // bench-results/ptq-accuracy.md: W8A8 is as good or better without it).
            let clip = opts.channel_clip.filter(|_| bits < 8);
            reparams.push(reparam::apply(&mut g, site, &ranges, clip));
        }
    }
    Ok(Prepared {
        graph: g,
        patch_linears,
        reparams,
        rotation,
    })
}

/// `(wbits, abits)` of Linear node `j`.
fn layer_bits(g: &Graph, j: usize, opts: &QuantOptions, edges: &[usize]) -> (u8, u8) {
    if let Some(&b) = opts.layer_bits.get(&g.nodes[j].name) {
        return b;
    }
    if edges.contains(&j) {
        (opts.edge_bits, opts.edge_bits)
    } else {
        (opts.wbits, opts.abits)
    }
}

/// Quantizes every node of the prepared graph `g` at its bits (`edges` at the edge bits), then
/// splits per-token inputs into [`QuantOptions::act_groups`]: the quantized layers' reports and
/// the names of layers left f32.
pub fn quantize_nodes(
    g: &mut Graph,
    edges: &[usize],
    cal: &calib::Calibration,
    opts: &QuantOptions,
) -> (Vec<LayerReport>, Vec<String>) {
    let mut layers = Vec::new();
    let mut float_layers = Vec::new();
    for j in 0..g.nodes.len() {
        let (wb, ab) = layer_bits(g, j, opts, edges);
        match quantize_node(g, j, (wb, ab), edges.contains(&j), cal, opts) {
            Some(Converted::Layer(r)) => layers.push(r),
            Some(Converted::Float) => float_layers.push(g.nodes[j].name.clone()),
            None => {}
        }
    }
    if let Some(group) = opts.act_groups {
        let split = groups::split(g, group);
        for r in layers.iter_mut().filter(|r| split.contains(&r.name)) {
            r.act = format!("{}, groups of {group} features", r.act);
        }
    }
    (layers, float_layers)
}

/// Linear nodes kept at the edge bits: the patch embedding and the classifier head.
pub fn edge_linears(prep: &Prepared) -> Vec<usize> {
    let g = &prep.graph;
    let mut edges: Vec<usize> = head_linears(g);
    edges.extend(
        g.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| prep.patch_linears.contains(&n.name))
            .map(|(j, _)| j),
    );
    edges
}

/// Linear nodes that are the classifier head: their output reaches a graph output without
/// passing another Linear, MatMul, LayerNorm or Softmax.
fn head_linears(g: &Graph) -> Vec<usize> {
    let cons = consumers(g);
    let reaches_output = |start: ValueId| {
        let mut stack = vec![start];
        let mut steps = 0;
        while let Some(v) = stack.pop() {
            steps += 1;
            if g.outputs.contains(&v) {
                return true;
            }
            if steps > 64 {
                return false;
            }
            for &(j, _) in &cons[v as usize] {
                let stop = matches!(
                    g.nodes[j].op,
                    Op::Linear | Op::MatMul { .. } | Op::LayerNorm { .. } | Op::Softmax { .. }
                );
                if !stop {
                    stack.push(g.nodes[j].output);
                }
            }
        }
        false
    };
    (0..g.nodes.len())
        .filter(|&j| matches!(g.nodes[j].op, Op::Linear) && reaches_output(g.nodes[j].output))
        .collect()
}

/// Quantizes `g` with calibration inputs `calib`.
pub fn quantize(g: &Graph, calib: &[Tensor], opts: &QuantOptions) -> Result<Quantized> {
    ensure!(!calib.is_empty(), "calibration needs at least one input");
    for b in [opts.wbits, opts.abits, opts.edge_bits]
        .into_iter()
        .chain(opts.layer_bits.values().flat_map(|&(w, a)| [w, a]))
    {
        ensure!(
            (2..=8).contains(&b),
            "{b} bits: bit widths must lie in 2..=8"
        );
    }
    let start = std::time::Instant::now();
    let prep = prepare(g, calib, opts)?;
    let edges = edge_linears(&prep);
    let mut g = prep.graph;

    let cal = calibrate_with_gram(
        &g,
        calib,
        &layer_inputs(&g),
        &[],
        &gram_inputs(&g, opts),
        "calibrate (layer inputs)",
    )?;

    let (layers, float_layers) = quantize_nodes(&mut g, &edges, &cal, opts);
    let f16_tensors = if opts.f16_consts {
        round_consts_to_f16(&mut g)
    } else {
        0
    };
    g.validate()?;
    let report = QuantReport {
        f16_tensors,
        wbits: opts.wbits,
        abits: opts.abits,
        edge_bits: opts.edge_bits,
        clip: opts.clip.to_string(),
        reparam: opts.reparam,
        channel_clip_k: opts.channel_clip,
        log2_softmax: opts.log2_softmax,
        weight_round: opts.weight_round,
        act_scale: opts.act_scale,
        attn_scale: opts.attn_scale,
        act_groups: opts.act_groups,
        calib_images: calib.len(),
        calib_seconds: start.elapsed().as_secs_f64(),
        layers,
        float_layers,
        reparams: prep.reparams,
        rotation: prep.rotation,
        sizes: None,
        mixed: None,
    };
    Ok(Quantized { graph: g, report })
}

/// The inputs whose `XᵀX` the weight rounding needs: those of Linears with constant weights
/// under GPTQ rounding, none otherwise.
pub fn gram_inputs(g: &Graph, opts: &QuantOptions) -> Vec<ValueId> {
    if opts.weight_round.gptq_order().is_none() {
        return Vec::new();
    }
    let mut watch: Vec<ValueId> = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Linear) && g.const_data(n.inputs[1]).is_some())
        .map(|n| n.inputs[0])
        .collect();
    watch.sort_unstable();
    watch.dedup();
    watch
}

/// The activation inputs of every Linear and MatMul (what calibration must observe).
pub fn layer_inputs(g: &Graph) -> Vec<ValueId> {
    let mut watch = Vec::new();
    for n in &g.nodes {
        match n.op {
            Op::Linear => watch.push(n.inputs[0]),
            Op::MatMul { .. } => watch.extend([n.inputs[0], n.inputs[1]]),
            _ => {}
        }
    }
    watch.sort_unstable();
    watch.dedup();
    watch
}

/// What [`quantize_node`] did with a node.
pub enum Converted {
    /// Became a QLinear or QMatMul.
    Layer(LayerReport),
    /// A layer kind that stays f32 (a non-constant weight, broadcast batches, a convolution).
    Float,
}

/// Turns Linear node `j` into a QLinear with `wb`-bit weights and `ab`-bit input, or an
/// activation × activation MatMul into a QMatMul with `ab`-bit operands, using calibration
/// statistics of its inputs; `None` for other ops. An `edge` Linear (patch embedding, head)
/// keeps a static input scale whatever [`QuantOptions::act_scale`] says.
pub fn quantize_node(
    g: &mut Graph,
    j: usize,
    (wb, ab): (u8, u8),
    edge: bool,
    cal: &calib::Calibration,
    opts: &QuantOptions,
) -> Option<Converted> {
    let node = g.nodes[j].clone();
    match node.op {
        Op::Linear => {
            let w_id = node.inputs[1];
            let (n, k) = (g.shape(w_id)[0], g.shape(w_id)[1]);
            let Some(w) = g.const_data(w_id) else {
                return Some(Converted::Float);
            };
            let (mut q, scales) = clip::quantize_weights(w, n, k, wb);
            if let Some(order) = opts.weight_round.gptq_order()
                && let Some(gram) = cal.gram.get(&node.inputs[0])
                && let Some(codes) = gptq::round(w, n, k, wb, &scales, gram, order)
            {
                q.data = codes;
            }
            let stats = &cal.tensors[&node.inputs[0]];
            let act = if opts.act_scale == ActScale::Dynamic && !edge {
                ActQuant::Dynamic { bits: ab }
            } else {
                clip::uniform_for(stats, opts.clip, ab)
            };
            g.values[w_id as usize].source = Source::Int(q);
            let s_id = add_const(
                g,
                format!("{}.w_scale", node.name),
                vec![n],
                Source::Const(scales),
            );
            let mut inputs = vec![node.inputs[0], w_id, s_id];
            inputs.extend(node.inputs.get(2));
            g.nodes[j].inputs = inputs;
            g.nodes[j].op = Op::QLinear { act };
            Some(Converted::Layer(LayerReport::linear(
                &node.name,
                n * k,
                wb,
                act,
                stats,
            )))
        }
        Op::MatMul { transpose_b } => {
            let (a, b) = (node.inputs[0], node.inputs[1]);
            if !crate::graph::equal_batch(g, a, b) {
                return Some(Converted::Float);
            }
            let softmax_in = crate::graph::is_softmax_output(g, a);
            let (sa_stats, sb_stats) = (&cal.tensors[&a], &cal.tensors[&b]);
            let dynamic = opts.attn_scale == ActScale::Dynamic;
            let qa = if softmax_in && opts.log2_softmax {
                clip::log2_for(sa_stats, ab)
            } else if dynamic && !softmax_in {
                ActQuant::Dynamic { bits: ab }
            } else {
                clip::uniform_for(sa_stats, opts.clip, ab)
            };
            let qb = if dynamic {
                ActQuant::DynamicSymmetric { bits: ab }
            } else {
                clip::symmetric_for(sb_stats, opts.clip, ab)
            };
            g.nodes[j].op = Op::QMatMul {
                transpose_b,
                a: qa,
                b: qb,
            };
            Some(Converted::Layer(LayerReport::matmul(
                &node.name, softmax_in, qa, qb, sa_stats, sb_stats,
            )))
        }
        Op::Conv2d { .. } => Some(Converted::Float),
        _ => None,
    }
}

/// Rounds f32 constants to f16 values (the bundle then stores them in half the bytes,
/// losslessly from here on); returns the number of tensors rounded. Weight scales multiply whole
/// output channels, so they are rounded only when every value is a normal f16 (relative error
/// ≤ 2⁻¹¹); other constants (biases, norms, embeddings) are added, so f16's subnormal range
/// (absolute error ≤ 2⁻²⁵) is fine for them. Tensors beyond ±65504 stay f32.
fn round_consts_to_f16(g: &mut Graph) -> usize {
    let scales: std::collections::HashSet<ValueId> = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::QLinear { .. }))
        .filter_map(|n| n.inputs.get(2).copied())
        .collect();
    let normal = |x: f32| x == 0.0 || (6.2e-5..=65504.0).contains(&x.abs());
    let finite = |x: f32| x.abs() <= 65504.0;
    let mut n = 0;
    for (id, v) in g.values.iter_mut().enumerate() {
        let ok: &dyn Fn(f32) -> bool = if scales.contains(&(id as ValueId)) {
            &normal
        } else {
            &finite
        };
        if let Source::Const(d) = &mut v.source
            && d.iter().all(|&x| ok(x))
        {
            for x in d.iter_mut() {
                *x = qvit_device::quant::round_to_f16(*x);
            }
            n += 1;
        }
    }
    n
}

/// Uniform activation quantizer summary for reports.
pub fn describe(q: &ActQuant) -> String {
    match *q {
        ActQuant::Uniform { bits, scale, zero } => {
            format!(
                "uniform{bits} [{:.4}, {:.4}]",
                -(zero as f32) * scale,
                ((1 << bits) - 1 - zero) as f32 * scale
            )
        }
        ActQuant::Symmetric { bits, scale } => {
            format!(
                "symmetric{bits} ±{:.4}",
                scale * qvit_device::quant::symmetric_max(bits) as f32
            )
        }
        ActQuant::Log2 { bits, scale } => format!("log2-{bits} max {scale:.4}"),
        ActQuant::Dynamic { bits } => format!("dynamic{bits} per row"),
        ActQuant::DynamicSymmetric { bits } => format!("dynamic symmetric{bits} per column"),
    }
}
