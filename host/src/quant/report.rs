//! The quantization report written beside a bundle, as JSON and Markdown.

use super::calib::TensorStats;
use super::describe;
use super::reparam::ReparamReport;
use qvit_device::bundle::BundleStats;
use qvit_device::graph::{Graph, Source};
use qvit_device::quant::ActQuant;
use serde::Serialize;

/// One quantized layer.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    /// Node name.
    pub name: String,
    /// `linear`, `attn_qk` (uniform × symmetric) or `attn_v` (post-softmax × symmetric).
    pub op: String,
    /// Role guessed from the name: qkv, proj, fc1, fc2, patch_embed, head, …
    pub kind: String,
    /// Weight bits (Linear only).
    pub wbits: Option<u8>,
    /// Activation bits.
    pub abits: u8,
    /// Weight parameters (Linear only).
    pub params: usize,
    /// Quantizer of the (left) input.
    pub act: String,
    /// Quantizer of the right operand (MatMul only).
    pub b: Option<String>,
    /// Observed range of the input during calibration.
    pub observed: [f32; 2],
}

fn kind(name: &str) -> String {
    let n = name.to_lowercase();
    let known = [
        ("#linear", "patch_embed"),
        ("qkv", "qkv"),
        ("query", "q"),
        ("key", "k"),
        ("value", "v"),
        ("proj", "proj"),
        ("fc1", "fc1"),
        ("fc2", "fc2"),
        ("reduction", "reduction"),
        ("head", "head"),
        ("classifier", "head"),
    ];
    known
        .iter()
        .find(|(k, _)| n.contains(k))
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| "linear".into())
}

impl LayerReport {
    /// A QLinear.
    pub fn linear(name: &str, params: usize, wbits: u8, act: ActQuant, s: &TensorStats) -> Self {
        LayerReport {
            name: name.into(),
            op: "linear".into(),
            kind: kind(name),
            wbits: Some(wbits),
            abits: act.bits(),
            params,
            act: describe(&act),
            b: None,
            observed: [s.min, s.max],
        }
    }

    /// A QMatMul.
    pub fn matmul(
        name: &str,
        softmax_in: bool,
        a: ActQuant,
        b: ActQuant,
        sa: &TensorStats,
        _sb: &TensorStats,
    ) -> Self {
        LayerReport {
            name: name.into(),
            op: if softmax_in { "attn_v" } else { "attn_qk" }.into(),
            kind: if softmax_in { "attn_v" } else { "attn_qk" }.into(),
            wbits: None,
            abits: a.bits(),
            params: 0,
            act: describe(&a),
            b: Some(describe(&b)),
            observed: [sa.min, sa.max],
        }
    }
}

/// Bundle size against the bound.
#[derive(Clone, Debug, Serialize)]
pub struct SizeReport {
    /// Section sizes of the written bundle.
    pub bundle: BundleStats,
    /// `Σ params × bits / 8` over quantized weights, plus the other constants at the body's
    /// weight bits.
    pub ideal_bytes: f64,
    /// `1.05 × ideal + 64 KiB`.
    pub bound_bytes: f64,
    /// Whether the bundle fits the bound.
    pub within_bound: bool,
}

/// Everything `qvit quantize` did.
#[derive(Clone, Debug, Serialize)]
pub struct QuantReport {
    /// Default weight bits.
    pub wbits: u8,
    /// Default activation bits.
    pub abits: u8,
    /// Bits of the patch embedding and the head.
    pub edge_bits: u8,
    /// Activation clipping method.
    pub clip: String,
    /// Post-LayerNorm reparameterisation on.
    pub reparam: bool,
    /// Outlier-channel clip factor `k` (None = off).
    pub channel_clip_k: Option<f32>,
    /// Log2 post-softmax quantizer on.
    pub log2_softmax: bool,
    /// Float constant tensors rounded to f16 (stored in 2 bytes per value).
    pub f16_tensors: usize,
    /// How weights were rounded onto their grid.
    pub weight_round: super::WeightRound,
    /// Where the body Linears' input scales come from.
    pub act_scale: super::ActScale,
    /// Where the attention products' Q, K and V scales come from.
    pub attn_scale: super::ActScale,
    /// Input features per activation group of the per-token layers (`None`: whole rows).
    pub act_groups: Option<usize>,
    /// Calibration images.
    pub calib_images: usize,
    /// Wall time of calibration and quantization.
    pub calib_seconds: f64,
    /// Quantized layers in graph order.
    pub layers: Vec<LayerReport>,
    /// Layers left in f32 (with reason in their name list order).
    pub float_layers: Vec<String>,
    /// Post-LayerNorm reparameterisations.
    pub reparams: Vec<ReparamReport>,
    /// Sizes, once the bundle is written.
    pub sizes: Option<SizeReport>,
    /// The Hadamard head rotation, when `--rotate hadamard` asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<super::rotate::RotateReport>,
    /// Mixed-precision allocation, when bits were chosen per layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixed: Option<super::mixed::MixedReport>,
}

impl QuantReport {
    /// Markdown rendering.
    pub fn markdown(&self, title: &str) -> String {
        let mut s = format!("# Quantization report: {title}\n\n");
        s += &format!(
            "W{}A{} (patch embedding and head: {} bits), clip `{}`, post-LN reparameterisation {}, \
             outlier-channel clip {}, log2 softmax {}, weight rounding `{}`, activation scale `{}`, \
             attention scale `{}`, activation groups {}; {} calibration images, {:.1} s.\n\n",
            self.wbits,
            self.abits,
            self.edge_bits,
            self.clip,
            on(self.reparam),
            self.channel_clip_k
                .map_or("off".to_string(), |k| format!("k = {k}")),
            on(self.log2_softmax),
            self.weight_round,
            self.act_scale,
            self.attn_scale,
            self.act_groups
                .map_or("off".to_string(), |g| format!("of {g} features")),
            self.calib_images,
            self.calib_seconds
        );
        if let Some(z) = &self.sizes {
            s += &format!(
                "Size: {} bytes (integer weights {}, scales {}, float constants {}, graph {}, header {}); \
                 bound 1.05 × {:.0} + 64 KiB = {:.0}: {}.\n\n",
                z.bundle.total,
                z.bundle.int_weights,
                z.bundle.scales,
                z.bundle.float_consts,
                z.bundle.graph,
                z.bundle.header,
                z.ideal_bytes,
                z.bound_bytes,
                if z.within_bound { "within" } else { "EXCEEDED" }
            );
        }
        s += "| layer | kind | W bits | A bits | params | input quantizer | right operand | observed range |\n";
        s += "|---|---|---|---|---|---|---|---|\n";
        for l in &self.layers {
            s += &format!(
                "| `{}` | {} | {} | {} | {} | {} | {} | [{:.3}, {:.3}] |\n",
                l.name,
                l.kind,
                l.wbits.map_or("–".into(), |b| b.to_string()),
                l.abits,
                l.params,
                l.act,
                l.b.as_deref().unwrap_or("–"),
                l.observed[0],
                l.observed[1]
            );
        }
        if !self.reparams.is_empty() {
            s += "\n| LayerNorm | channels | clipped | max ratio | absorbed by |\n|---|---|---|---|---|\n";
            for r in &self.reparams {
                s += &format!(
                    "| `{}` | {} | {} | {:.2} | {} |\n",
                    r.layer_norm,
                    r.channels,
                    r.clipped,
                    r.max_ratio,
                    r.linears.join(", ")
                );
            }
        }
        if !self.float_layers.is_empty() {
            s += &format!("\nLeft in f32: {}\n", self.float_layers.join(", "));
        }
        if let Some(m) = &self.mixed {
            s += &mixed_markdown(m);
        }
        s
    }
}

fn mixed_markdown(m: &super::mixed::MixedReport) -> String {
    let mut s = format!(
        "\n## Mixed precision: `{}`\n\nBudget: weights {} bits (achieved {:.3}), activations {} bits \
         (achieved {:.3}); choices {:?}; knapsack {}; relevance {:.1} s, sensitivity {:.1} s, \
         allocation {:.2} s.\n\n",
        m.allocator,
        m.budget,
        m.achieved_wbits,
        m.abudget,
        m.achieved_abits,
        m.choices,
        if m.exact { "exact" } else { "on rounded costs" },
        m.relevance_seconds,
        m.sensitivity_seconds,
        m.allocation_seconds
    );
    if !m.trials.is_empty() {
        s += &format!(
            "Weights from `{}`, activations from `{}`: the best ({}) of {} pairs of proposals run \
             on {} calibration images ({:.1} s).\n\n| weights | activations | output cosine | KL (nats) |\n|---|---|---:|---:|\n",
            m.weights_from,
            m.activations_from,
            m.selection_metric,
            m.trials.len(),
            m.selection_images,
            m.selection_seconds
        );
        for t in &m.trials {
            s += &format!(
                "| {} | {} | {:.6} | {:.3e} |\n",
                t.weights, t.activations, t.cosine, t.kl
            );
        }
        if let Some(a) = &m.advantage {
            s += &format!(
                "\nBest trial's edge over uniform: {:+.3e} ± {:.3e} per image ({}).\n",
                a.mean,
                a.standard_error,
                if a.kept {
                    "kept"
                } else {
                    "within two standard errors: uniform kept"
                }
            );
        }
        s += "\n";
    }
    s += "| layer | params | act elements | score | W bits | A bits |\n|---|---:|---:|---:|---:|---:|\n";
    for l in &m.layers {
        s += &format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            l.name,
            l.params,
            l.act_elems,
            l.score.map_or("–".into(), |v| format!("{v:.4}")),
            l.wbits.map_or("–".into(), |b| b.to_string()),
            l.abits
        );
    }
    s
}

fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The size bound: `Σ params × bits / 8` (integer weights at their bits, every other
/// constant at the body's weight bits), times 1.05, plus 64 KiB.
pub fn size_report(g: &Graph, wbits: u8, stats: BundleStats) -> SizeReport {
    let ideal: f64 = g
        .values
        .iter()
        .map(|v| match &v.source {
            Source::Int(q) => q.data.len() as f64 * q.bits as f64 / 8.0,
            Source::Const(d) => d.len() as f64 * wbits as f64 / 8.0,
            _ => 0.0,
        })
        .sum();
    let bound = 1.05 * ideal + 65536.0;
    SizeReport {
        bundle: stats,
        ideal_bytes: ideal,
        bound_bytes: bound,
        within_bound: (stats.total as f64) <= bound,
    }
}
