//! `qvit relevance`: per-layer relevance scores of a model on images, as a table, JSON and a
//! bar chart.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use qvit_device::{Graph, Tensor};
use qvit_host::data::load_inputs;
use qvit_host::lrp::scores::{Scores, Statistic, scores_with_progress};
use qvit_host::lrp::{AttnRule, LrpOptions, Seed, parse_seed};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Attention rule on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AttnArg {
    /// AttnLRP: softmax Deep-Taylor rule, uniform rule on QKᵀ and attn·V.
    Attnlrp,
    /// CP-LRP: relevance does not cross the attention probabilities.
    Cp,
}

/// Relevance flags shared by `qvit relevance` and `qvit quantize --allocate lrp`.
#[derive(Args, Clone, Debug)]
pub struct LrpArgs {
    /// Relevance target: a class index, `predicted` (the argmax logit; the default for
    /// classifiers), `norm` (the output's L2 norm; the default without a classifier) or `tokens`
    /// (every output token alike: one unit of relevance per token).
    #[arg(long, default_value = "auto")]
    pub target: String,
    /// ε of the ε-rule on Linear, Conv and MatMul.
    #[arg(long, default_value_t = 1e-6)]
    pub eps: f32,
    /// Rule through attention.
    #[arg(long, value_enum, default_value_t = AttnArg::Attnlrp)]
    pub attn_rule: AttnArg,
}

/// Which per-layer relevance sum a score is built from (`--statistic`, `--lrp-statistic`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatisticArg {
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

impl StatisticArg {
    /// The statistic.
    pub fn statistic(self) -> Statistic {
        match self {
            StatisticArg::AbsIn => Statistic::AbsIn,
            StatisticArg::SignedIn => Statistic::SignedIn,
            StatisticArg::AbsOut => Statistic::AbsOut,
            StatisticArg::AbsInAttn => Statistic::AbsInAttn,
            StatisticArg::Noise => Statistic::Noise,
        }
    }
}

impl AttnArg {
    /// The rule.
    pub fn rule(self) -> AttnRule {
        match self {
            AttnArg::Attnlrp => AttnRule::AttnLrp,
            AttnArg::Cp => AttnRule::Cp,
        }
    }
}

impl LrpArgs {
    /// Refuses an ε that is negative or not finite.
    pub fn check(&self) -> Result<()> {
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            bail!("--eps {} must be a finite number ≥ 0, e.g. 1e-6", self.eps);
        }
        Ok(())
    }

    /// Rule options.
    pub fn options(&self) -> LrpOptions {
        LrpOptions {
            eps: self.eps,
            attn: self.attn_rule.rule(),
            gradient: false,
            weight_noise: false,
        }
    }

    /// The seed for `graph` (see [`qvit_host::lrp::parse_seed`]).
    pub fn seed(&self, graph: &Graph) -> Result<Seed> {
        parse_seed(&self.target, graph)
    }
}

/// Scores of `graph` on the first `limit` images of `data`, with a progress bar.
pub fn scores_on(
    graph: Graph,
    pre: &qvit_device::Preprocess,
    data: &Path,
    limit: usize,
    args: &LrpArgs,
    stat: Statistic,
) -> Result<Scores> {
    let inputs = load_inputs(data, pre, limit)?;
    scores_for(graph, &inputs, args, stat)
}

/// Scores of `graph` on `inputs`.
pub fn scores_for(
    graph: Graph,
    inputs: &[Tensor],
    args: &LrpArgs,
    stat: Statistic,
) -> Result<Scores> {
    let seed = args.seed(&graph)?;
    scores_with_progress(graph, inputs, seed, args.options(), stat)
}

/// The scores as Markdown: per layer, per kind, per block, and conservation.
pub fn render(s: &Scores) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Relevance scores ({:?}, mean over {} images, normalised to sum 1; {:.2} s)\n",
        s.statistic, s.images, s.seconds
    );
    let _ = writeln!(o, "| layer | kind | block | params | score | std |");
    let _ = writeln!(o, "|---|---|---:|---:|---:|---:|");
    for l in &s.layers {
        let block = l.block.map_or("-".to_string(), |b| b.to_string());
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {:.4} | {:.4} |",
            l.name, l.kind, block, l.params, l.score, l.std
        );
    }
    let _ = writeln!(o, "\n| kind | score |\n|---|---:|");
    for (k, v) in &s.by_kind {
        let _ = writeln!(o, "| {k} | {v:.4} |");
    }
    if !s.by_block.is_empty() {
        let _ = writeln!(o, "\n| block | score |\n|---:|---:|");
        for (b, v) in &s.by_block {
            let _ = writeln!(o, "| {b} | {v:.4} |");
        }
    }
    if let (Some(first), Some(last)) = (s.conservation.first(), s.conservation.last()) {
        let (lo, hi) = s
            .conservation
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), (_, v)| {
                (a.min(*v), b.max(*v))
            });
        let _ = writeln!(
            o,
            "\nConservation (Σ relevance / target, mean over images) at {} cuts: input {:.3}, \
             last cut {} {:.3}, range {:.3}..{:.3}",
            s.conservation.len(),
            first.1,
            last.0,
            last.1,
            lo,
            hi
        );
    }
    o
}

/// Bar chart of the scores, one bar per layer coloured by kind.
pub fn plot(s: &Scores, path: &Path) -> Result<()> {
    let kinds: Vec<String> = s.by_kind.keys().cloned().collect();
    let bars: Vec<qvit_host::plot::Bar> = s
        .layers
        .iter()
        .map(|l| qvit_host::plot::Bar {
            label: short_name(&l.name),
            value: l.score,
            group: kinds.iter().position(|k| *k == l.kind).unwrap_or(0),
        })
        .collect();
    let title = format!("relevance per layer ({} images)", s.images);
    qvit_host::plot::bar_chart(path, &title, &bars, &kinds)
        .with_context(|| format!("writing {}", path.display()))
}

/// A layer name without exporter noise (`/blocks.0/attn/qkv/MatMul` → `blocks.0/attn/qkv`).
fn short_name(name: &str) -> String {
    let t = name.trim_start_matches('/');
    let t = t
        .strip_suffix("/MatMul")
        .or_else(|| t.strip_suffix("/Gemm"))
        .or_else(|| t.strip_suffix("/Conv"))
        .unwrap_or(t);
    t.to_string()
}

/// Where `--plot` goes when it is given without a path check: refuses a non-PNG extension.
pub fn check_plot_path(p: &Option<PathBuf>) -> Result<()> {
    if let Some(p) = p
        && p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            != Some("png".into())
    {
        bail!("--plot writes a PNG: give a path ending in .png");
    }
    Ok(())
}
