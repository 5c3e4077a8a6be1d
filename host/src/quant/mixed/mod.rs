//! Mixed precision: bits per layer under an average-bit budget (LRP-QViT).
//!
//! Each body layer `l` (patch embedding and head stay at the edge bits) gets a penalty per bit
//! choice and an exact knapsack ([`super::allocate`]) picks the bits that minimise the summed penalty
//! while the parameter-weighted average weight bits (and, separately, the element-weighted
//! average activation bits) stay within budget. The allocators differ only in the penalty:
//! - `lrp`: `c_l · e_l(b)`, the layer's relevance share times its relative quantization error
//!   at `b` bits (weights: `‖W − Q_b(W)‖²/‖W‖²`; activations: the error they cause where the
//!   layer's output carries it, `‖Q_b(X)·Wᵀ − X·Wᵀ‖²/‖X·Wᵀ‖²` for a Linear and the product's or
//!   attention output's error for QKᵀ and attn·V, on calibration images). The relevance says
//!   how much of the prediction flows through the layer, the error how much `b` bits distort
//!   what flows. (Judging a Linear's activations element-wise, `‖Q_b(X) − X‖²/‖X‖²`, lets a
//!   post-LayerNorm outlier channel that holds the power but meets small weights can hide the
//!   error of every other channel; at 3 bits lrp then lost to sensitivity and was rarely
//!   kept over uniform: `bench-results/mixed-precision.md`.)
//! - `random:SEED`: the same with `c_l` drawn at random (the ablation of relevance itself);
//! - `sensitivity`: the model's relative output error when only layer `l` is quantized at `b`
//!   bits, measured on calibration images (Mix-QViT's sensitivity);
//! - `uniform`: every layer at the largest choice within budget.
//!
//! lrp and random propose one allocation per exponent γ on their scores (`--lrp-gamma`), and
//! sensitivity one; with `select_images > 0` every pair of weight and activation proposals, and
//! uniform, runs end to end on calibration images, and the pair closest to f32 wins when its
//! edge over uniform exceeds the calibration noise ([`select`]).
//!
//! [`allocate_bits`] runs the allocation as typed phases, one file each: scores (relevance or
//! random draws) and penalties (error model or sensitivity) in `penalty.rs` → proposals (one
//! knapsack per γ and budget) in `propose.rs` → trials end to end and the selection in
//! `trial.rs` → the [`MixedReport`].

mod penalty;
mod propose;
mod trial;

use super::calib::{Calibration, calibrate_with_gram};
use super::{Prepared, QuantOptions, edge_linears, gram_inputs, layer_inputs, prepare, select};
use crate::lrp::LrpOptions;
use crate::lrp::scores::Statistic;
use anyhow::{Context, Result, bail, ensure};
use penalty::Scores;
use propose::Proposals;
use qvit_device::{Graph, Op, Tensor};
use serde::Serialize;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Instant;
use trial::Selection;

/// How bits are assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocator {
    /// Relevance-weighted quantization error.
    Lrp,
    /// Every layer at the same bits.
    Uniform,
    /// Random relevance with this seed.
    Random(u64),
    /// Measured output error of each layer quantized alone.
    Sensitivity,
}

impl FromStr for Allocator {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "lrp" => Allocator::Lrp,
            "uniform" => Allocator::Uniform,
            "sensitivity" => Allocator::Sensitivity,
            _ => match s.strip_prefix("random:") {
                Some(seed) => Allocator::Random(
                    seed.parse()
                        .with_context(|| format!("random:{seed}: the seed must be an integer"))?,
                ),
                None => {
                    bail!("--allocate {s:?}: expected lrp, uniform, random:SEED or sensitivity")
                }
            },
        })
    }
}

impl std::fmt::Display for Allocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allocator::Lrp => write!(f, "lrp"),
            Allocator::Uniform => write!(f, "uniform"),
            Allocator::Random(s) => write!(f, "random:{s}"),
            Allocator::Sensitivity => write!(f, "sensitivity"),
        }
    }
}

/// Mixed-precision settings.
#[derive(Clone, Debug)]
pub struct MixedOptions {
    /// Average weight bits (parameter-weighted) of the body layers.
    pub budget: f64,
    /// Average activation bits (element-weighted) of the body layers.
    pub abudget: f64,
    /// Allowed bit widths, increasing.
    pub choices: Vec<u8>,
    /// The allocator.
    pub allocator: Allocator,
    /// Relevance rules.
    pub lrp: LrpOptions,
    /// Relevance target, as `qvit relevance --target` takes it (`auto`: the predicted class,
    /// or the output norm without a classifier).
    pub target: String,
    /// Relevance statistic.
    pub statistic: Statistic,
    /// Exponents on the relevance (or random) scores, one proposal each (1: as measured; 0: every
    /// layer alike, leaving only the quantization-error model; between: tempered).
    pub lrp_gammas: Vec<f64>,
    /// Calibration images on which every pair of weight and activation proposals (uniform
    /// included) runs end to end; the closest to f32 wins if its edge over uniform exceeds the
    /// noise ([`select::choose`]). 0 takes the first proposal untried.
    pub select_images: usize,
    /// Calibration images used for relevance.
    pub lrp_images: usize,
    /// Calibration images used to measure sensitivity.
    pub sensitivity_images: usize,
}

/// One body layer's allocation.
#[derive(Clone, Debug, Serialize)]
pub struct MixedLayer {
    /// Node name.
    pub name: String,
    /// Weight parameters (0 for activation × activation products).
    pub params: usize,
    /// Activation elements it quantizes per image.
    pub act_elems: usize,
    /// Relevance share (lrp), random draw (random), or none: weighs the activation penalty.
    pub score: Option<f64>,
    /// The same for the weight penalty (differs from `score` for the noise statistic).
    pub weight_score: Option<f64>,
    /// Weight bits (none for products of two activations).
    pub wbits: Option<u8>,
    /// Activation bits.
    pub abits: u8,
    /// Weight penalty per bit choice, as the knapsack saw it (empty for products of two
    /// activations and for `uniform`).
    pub wpenalty: Vec<f64>,
    /// Activation penalty per bit choice.
    pub apenalty: Vec<f64>,
}

/// What the allocation chose and what it cost.
#[derive(Clone, Debug, Serialize)]
pub struct MixedReport {
    /// Allocator, as given.
    pub allocator: String,
    /// Weight budget (average bits).
    pub budget: f64,
    /// Activation budget (average bits).
    pub abudget: f64,
    /// Allowed bit widths.
    pub choices: Vec<u8>,
    /// Exponents tried on the scores (lrp, random).
    pub lrp_gammas: Vec<f64>,
    /// The proposal the weight bits come from (`uniform`, `sensitivity`, or allocator and γ;
    /// equal proposals joined by ` = `, as in `lrp γ=2 = uniform`).
    pub weights_from: String,
    /// The proposal the activation bits come from.
    pub activations_from: String,
    /// Achieved parameter-weighted average weight bits of the body.
    pub achieved_wbits: f64,
    /// Achieved element-weighted average activation bits of the body.
    pub achieved_abits: f64,
    /// Both knapsacks solved exactly.
    pub exact: bool,
    /// Body layers in graph order.
    pub layers: Vec<MixedLayer>,
    /// Fidelity (cosine and KL against f32) of every pair of proposals run end to end (empty
    /// when there was only one pair or trials were off).
    pub trials: Vec<Trial>,
    /// Calibration images the trials ran on.
    pub selection_images: usize,
    /// What the trials were judged by: `kl` (classifiers) or `cosine`.
    pub selection_metric: String,
    /// The best trial's paired advantage over uniform, and whether it was large enough to keep.
    pub advantage: Option<select::Advantage>,
    /// Seconds in relevance passes.
    pub relevance_seconds: f64,
    /// Seconds measuring sensitivity.
    pub sensitivity_seconds: f64,
    /// Seconds in error models and the knapsacks.
    pub allocation_seconds: f64,
    /// Seconds running the proposals end to end.
    pub selection_seconds: f64,
}

/// One pair of proposals run end to end on calibration images.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    /// Where the weight bits come from.
    pub weights: String,
    /// Where the activation bits come from.
    pub activations: String,
    /// Mean output cosine against f32 (the choice for models without a classifier).
    pub cosine: f64,
    /// Mean KL divergence of the output softmax from f32's, nats (the choice for classifiers).
    pub kl: f64,
}

/// Bits per layer name, as [`QuantOptions::layer_bits`] takes them.
pub type LayerBits = BTreeMap<String, (u8, u8)>;

/// A body layer: index, weight parameters, activation elements.
struct Body {
    node: usize,
    linear: bool,
    params: usize,
    elems: usize,
}

/// The model as every phase sees it: the prepared f32 graph (patchified, reparameterised), its
/// edge layers, the body layers that get bits, and calibration statistics of their inputs.
struct Setup {
    prep: Prepared,
    edges: Vec<usize>,
    body: Vec<Body>,
    cal: Calibration,
}

impl Setup {
    fn new(g: &Graph, calib: &[Tensor], base: &QuantOptions) -> Result<Setup> {
        let prep = prepare(g, calib, base)?;
        let edges = edge_linears(&prep);
        let pg = &prep.graph;
        let body = body_layers(pg, &edges);
        ensure!(
            !body.is_empty(),
            "the model has no body layers to allocate bits to"
        );
        let cal = calibrate_with_gram(
            pg,
            calib,
            &layer_inputs(pg),
            &[],
            &gram_inputs(pg, base),
            "calibrate (mixed precision)",
        )?;
        Ok(Setup {
            prep,
            edges,
            body,
            cal,
        })
    }

    fn graph(&self) -> &Graph {
        &self.prep.graph
    }

    fn name(&self, b: &Body) -> String {
        self.graph().nodes[b.node].name.clone()
    }
}

/// Seconds spent in each phase, as the report gives them.
#[derive(Default)]
struct Timings {
    relevance: f64,
    sensitivity: f64,
    allocation: f64,
    selection: f64,
}

/// Chooses `(wbits, abits)` per body layer of `g` (by node name, for
/// [`QuantOptions::layer_bits`]) with calibration images `calib`; `base` gives every other
/// quantization setting.
pub fn allocate_bits(
    g: &Graph,
    calib: &[Tensor],
    base: &QuantOptions,
    m: &MixedOptions,
) -> Result<(LayerBits, MixedReport)> {
    ensure!(
        !calib.is_empty(),
        "mixed precision needs calibration images"
    );
    ensure!(
        !m.choices.is_empty() && m.choices.iter().all(|b| (2..=8).contains(b)),
        "--bits-choices must lie in 2..=8"
    );
    let setup = Setup::new(g, calib, base)?;
    let mut time = Timings::default();

    let t = Instant::now();
    let scores = penalty::scores(&setup, calib, m)?;
    if m.allocator == Allocator::Lrp {
        time.relevance = t.elapsed().as_secs_f64();
    }

    let t = Instant::now();
    let penalties = penalty::penalties(&setup, calib, base, m)?;
    if m.allocator == Allocator::Sensitivity {
        time.sensitivity = t.elapsed().as_secs_f64();
    }
    let proposals = propose::proposals(&setup.body, scores.as_ref(), penalties.as_ref(), m)?;
    time.allocation = t.elapsed().as_secs_f64() - time.sensitivity;

    let t = Instant::now();
    let selection = trial::select_by_trials(&setup, calib, base, m, &proposals)?;
    time.selection = t.elapsed().as_secs_f64();

    Ok(report(
        &setup,
        m,
        scores.as_ref(),
        &proposals,
        selection,
        time,
    ))
}

/// Phase 6: the chosen bits per layer name, and the report of every phase.
fn report(
    s: &Setup,
    m: &MixedOptions,
    scores: Option<&Scores>,
    props: &Proposals,
    sel: Selection,
    time: Timings,
) -> (LayerBits, MixedReport) {
    let (wp, ap) = (
        &props.weights[sel.chosen.0],
        &props.activations[sel.chosen.1],
    );
    let layers = (s.body.iter().enumerate())
        .map(|(k, b)| MixedLayer {
            name: s.name(b),
            params: b.params,
            act_elems: b.elems,
            score: scores.map(|s| s.0[k].0),
            weight_score: scores.map(|s| s.0[k].1),
            wbits: wp.bits[k],
            abits: ap.bits[k].unwrap_or(8),
            wpenalty: wp.penalties[k].clone(),
            apenalty: ap.penalties[k].clone(),
        })
        .collect();
    let classifier = crate::graph::is_classifier(s.graph());
    (
        trial::bitmap(s, wp, ap),
        MixedReport {
            allocator: m.allocator.to_string(),
            budget: m.budget,
            abudget: m.abudget,
            choices: m.choices.clone(),
            lrp_gammas: m.lrp_gammas.clone(),
            weights_from: wp.label.clone(),
            activations_from: ap.label.clone(),
            achieved_wbits: wp.avg_bits,
            achieved_abits: ap.avg_bits,
            exact: wp.exact && ap.exact,
            layers,
            trials: sel.trials,
            selection_images: sel.images,
            selection_metric: if classifier { "kl" } else { "cosine" }.into(),
            advantage: sel.advantage,
            relevance_seconds: time.relevance,
            sensitivity_seconds: time.sensitivity,
            allocation_seconds: time.allocation,
            selection_seconds: time.selection,
        },
    )
}

/// Linear layers with constant weights outside `edges`, and activation × activation products
/// with equal batch axes: what [`super::quantize_node`] quantizes at the body's bits.
fn body_layers(g: &Graph, edges: &[usize]) -> Vec<Body> {
    let numel = |v: u32| g.shape(v).iter().product::<usize>();
    let mut body = Vec::new();
    for (j, n) in g.nodes.iter().enumerate() {
        match n.op {
            Op::Linear if !edges.contains(&j) && g.const_data(n.inputs[1]).is_some() => {
                body.push(Body {
                    node: j,
                    linear: true,
                    params: numel(n.inputs[1]),
                    elems: numel(n.inputs[0]),
                })
            }
            Op::MatMul { .. } if crate::graph::equal_batch(g, n.inputs[0], n.inputs[1]) => body
                .push(Body {
                    node: j,
                    linear: false,
                    params: 0,
                    elems: numel(n.inputs[0]) + numel(n.inputs[1]),
                }),
            _ => {}
        }
    }
    body
}
