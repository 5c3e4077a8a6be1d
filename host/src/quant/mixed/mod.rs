//! Mixed precision: bits per layer under an average-bit budget (LRP-QViT).
//!
//! Each body layer `l` (patch embedding and head stay at the edge bits) gets a penalty per bit
//! choice and an exact knapsack ([`allocate`]) picks the bits that minimise the summed penalty
//! while the parameter-weighted average weight bits (and, separately, the element-weighted
//! average activation bits) stay within budget. The allocators differ only in the penalty:
//! - `lrp`: `c_l · e_l(b)`, the layer's relevance share times its relative quantization error
//!   at `b` bits (weights: `‖W − Q_b(W)‖²/‖W‖²`; activations: the same on calibration samples).
//!   The relevance says how much of the prediction flows through the layer, the error how much
//!   `b` bits distort what flows;
//! - `random:SEED`: the same with `c_l` drawn at random (the ablation of relevance itself);
//! - `sensitivity`: the model's relative output error when only layer `l` is quantized at `b`
//!   bits, measured on calibration images (Mix-QViT's sensitivity);
//! - `uniform`: every layer at the largest choice within budget.
//!
//! lrp and random propose one allocation per exponent γ on their scores (`--lrp-gamma`), and
//! sensitivity one; with `select_images > 0` every pair of weight and activation proposals, and
//! uniform, runs end to end on calibration images, and the pair closest to f32 wins when its
//! edge over uniform exceeds the calibration noise ([`select`]).

use super::allocate::{self, Item};
use super::calib::{Calibration, calibrate};
use super::{
    QuantOptions, clip, edge_linears, layer_error, layer_inputs, prepare, quantize_node, select,
};
use crate::fixtures::SplitMix;
use crate::lrp::LrpOptions;
use crate::lrp::scores::{Statistic, scores_with_progress};
use anyhow::{Context, Result, bail, ensure};
use qvit_device::{Graph, Op, Tensor};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

/// Operand values (f32) of all attention products kept at once for the products' error model:
/// as many calibration images as fit, at least 2 and at most 32 (2 on a ViT-S at 224²).
const PROBE_FLOATS: usize = 1 << 23;

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

/// Penalty tables per body layer and choice: weights, activations.
type Penalties = (Vec<Vec<f64>>, Vec<Vec<f64>>);

/// A body layer: index, weight parameters, activation elements.
struct Body {
    node: usize,
    linear: bool,
    params: usize,
    elems: usize,
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
    let choices = &m.choices;
    ensure!(
        !choices.is_empty() && choices.iter().all(|b| (2..=8).contains(b)),
        "--bits-choices must lie in 2..=8"
    );
    let prep = prepare(g, calib, base)?;
    let edges = edge_linears(&prep);
    let pg = &prep.graph;
    let body = body_layers(pg, &edges);
    ensure!(
        !body.is_empty(),
        "the model has no body layers to allocate bits to"
    );
    let cal = calibrate(
        pg,
        calib,
        &layer_inputs(pg),
        &[],
        "calibrate (mixed precision)",
    )?;

    let (mut relevance_seconds, mut sensitivity_seconds) = (0.0, 0.0);
    // Per body layer: (activation score, weight score).
    let scores: Option<Vec<(f64, f64)>> = match m.allocator {
        Allocator::Lrp => {
            let t = std::time::Instant::now();
            let s = relevance(pg, &calib[..m.lrp_images.clamp(1, calib.len())], m)?;
            relevance_seconds = t.elapsed().as_secs_f64();
            Some(
                body.iter()
                    .map(|b| s.get(&pg.nodes[b.node].name).copied().unwrap_or_default())
                    .collect(),
            )
        }
        Allocator::Random(seed) => {
            let mut rng = SplitMix(seed);
            Some(
                body.iter()
                    .map(|_| {
                        let c = rng.uniform() as f64;
                        (c, c)
                    })
                    .collect(),
            )
        }
        Allocator::Uniform | Allocator::Sensitivity => None,
    };

    let t = std::time::Instant::now();
    // Penalty tables before the scores weigh them: the error model (lrp, random) or the measured
    // sensitivity; uniform has none.
    let tables: Option<Penalties> = match m.allocator {
        Allocator::Lrp | Allocator::Random(_) => {
            let products: Vec<usize> = body.iter().filter(|b| !b.linear).map(|b| b.node).collect();
            let per_image: usize = (products.iter())
                .flat_map(|&j| &pg.nodes[j].inputs[..2])
                .map(|&v| pg.shape(v).iter().product::<usize>())
                .sum();
            let fit = (PROBE_FLOATS / per_image.max(1)).clamp(2, 32);
            let images = &calib[..fit.min(calib.len())];
            let operands = layer_error::record_operands(pg, &products, images)?;
            Some(error_model(pg, &body, &cal, &operands, base, choices))
        }
        Allocator::Sensitivity => {
            let n = m.sensitivity_images.clamp(1, calib.len());
            let r = sensitivity(pg, &body, &cal, base, choices, &calib[..n])?;
            sensitivity_seconds = t.elapsed().as_secs_f64();
            Some(r)
        }
        Allocator::Uniform => None,
    };

    // Proposals for each budget: one per γ (the tables as they are without scores), and
    // uniform when there is nothing else or the candidates are run end to end.
    let (mut wprops, mut aprops) = (Vec::new(), Vec::new());
    if let Some((ew, ea)) = &tables {
        let gammas: Vec<Option<f64>> = match &scores {
            Some(_) => m.lrp_gammas.iter().copied().map(Some).collect(),
            None => vec![None],
        };
        for gamma in gammas {
            let weigh = |e: &[Vec<f64>], weights: bool| -> Vec<Vec<f64>> {
                let c = |k: usize| match (&scores, gamma) {
                    (Some(s), Some(g)) => (if weights { s[k].1 } else { s[k].0 }).powf(g),
                    _ => 1.0,
                };
                (e.iter().enumerate())
                    .map(|(k, row)| row.iter().map(|e| c(k) * e).collect())
                    .collect()
            };
            let label = match gamma {
                Some(g) => format!("{} γ={g}", m.allocator),
                None => m.allocator.to_string(),
            };
            wprops.push(propose(
                &label,
                &body,
                weigh(ew, true),
                true,
                choices,
                m.budget,
            )?);
            aprops.push(propose(
                &label,
                &body,
                weigh(ea, false),
                false,
                choices,
                m.abudget,
            )?);
        }
    }
    if tables.is_none() || m.select_images > 0 {
        wprops.push(propose_uniform(&body, true, choices, m.budget)?);
        aprops.push(propose_uniform(&body, false, choices, m.abudget)?);
    }
    // Equal proposals run once, under all their labels ("lrp γ=2 = uniform").
    for props in [&mut wprops, &mut aprops] {
        let mut kept: Vec<Proposal> = Vec::new();
        for p in props.drain(..) {
            match kept.iter_mut().find(|k| k.bits == p.bits) {
                Some(k) => k.label = format!("{} = {}", k.label, p.label),
                None => kept.push(p),
            }
        }
        *props = kept;
    }
    let allocation_seconds = t.elapsed().as_secs_f64() - sensitivity_seconds;

    let t = std::time::Instant::now();
    let bitmap = |w: &Proposal, a: &Proposal| -> LayerBits {
        (body.iter().enumerate())
            .map(|(k, b)| {
                (
                    name(pg, b),
                    (
                        w.bits[k].unwrap_or(a.bits[k].unwrap_or(8)),
                        a.bits[k].unwrap_or(8),
                    ),
                )
            })
            .collect()
    };
    let pairs: Vec<(usize, usize)> = (0..wprops.len())
        .flat_map(|w| (0..aprops.len()).map(move |a| (w, a)))
        .collect();
    let n_select = m.select_images.min(calib.len());
    let classifier = crate::graph::is_classifier(pg);
    let (mut chosen, mut trials, mut advantage) = (pairs[0], Vec::new(), None);
    if pairs.len() > 1 && n_select > 0 {
        let options: Vec<QuantOptions> = (pairs.iter())
            .map(|&(w, a)| QuantOptions {
                layer_bits: bitmap(&wprops[w], &aprops[a]),
                ..base.clone()
            })
            .collect();
        let fid = select::fidelity(pg, &edges, &cal, &options, &calib[..n_select])?;
        let is_uniform = |label: &str| label.split(" = ").any(|l| l == "uniform");
        let uniform = (pairs.iter())
            .position(|&(w, a)| is_uniform(&wprops[w].label) && is_uniform(&aprops[a].label))
            .context("uniform is always a proposal when trials run")?;
        let (best, adv) = select::choose(&fid, uniform, classifier);
        chosen = pairs[best];
        advantage = Some(adv);
        trials = (pairs.iter().zip(&fid))
            .map(|(&(w, a), f)| Trial {
                weights: wprops[w].label.clone(),
                activations: aprops[a].label.clone(),
                cosine: f.cosine(),
                kl: f.kl(),
            })
            .collect();
    }
    let selection_seconds = t.elapsed().as_secs_f64();
    let (wp, ap) = (&wprops[chosen.0], &aprops[chosen.1]);

    let mut layers = Vec::new();
    for (k, b) in body.iter().enumerate() {
        layers.push(MixedLayer {
            name: name(pg, b),
            params: b.params,
            act_elems: b.elems,
            score: scores.as_ref().map(|s| s[k].0),
            weight_score: scores.as_ref().map(|s| s[k].1),
            wbits: wp.bits[k],
            abits: ap.bits[k].unwrap_or(8),
            wpenalty: wp.penalties[k].clone(),
            apenalty: ap.penalties[k].clone(),
        });
    }
    Ok((
        bitmap(wp, ap),
        MixedReport {
            allocator: m.allocator.to_string(),
            budget: m.budget,
            abudget: m.abudget,
            choices: choices.clone(),
            lrp_gammas: m.lrp_gammas.clone(),
            weights_from: wp.label.clone(),
            activations_from: ap.label.clone(),
            achieved_wbits: wp.avg_bits,
            achieved_abits: ap.avg_bits,
            exact: wp.exact && ap.exact,
            layers,
            trials,
            selection_images: if pairs.len() > 1 { n_select } else { 0 },
            selection_metric: if classifier { "kl" } else { "cosine" }.into(),
            advantage,
            relevance_seconds,
            sensitivity_seconds,
            allocation_seconds,
            selection_seconds,
        },
    ))
}

/// One allocation of one budget (weights or activations), per body layer.
struct Proposal {
    /// Where it comes from: `uniform`, `sensitivity`, or the allocator and γ; equal proposals
    /// joined by ` = `.
    label: String,
    /// Bits per body layer (none for the weights of products of two activations).
    bits: Vec<Option<u8>>,
    /// Penalty tables the knapsack saw (empty rows where none applies, and for uniform).
    penalties: Vec<Vec<f64>>,
    avg_bits: f64,
    exact: bool,
}

fn name(g: &Graph, b: &Body) -> String {
    g.nodes[b.node].name.clone()
}

/// The knapsack items of the weights (Linear layers) or the activations (every body layer).
fn items(body: &[Body], weights: bool, penalties: impl Fn(usize) -> Vec<f64>) -> Vec<Item> {
    (body.iter().enumerate())
        .filter(|(_, b)| b.linear || !weights)
        .map(|(k, b)| Item {
            name: format!("#{k}"),
            cost: if weights { b.params } else { b.elems } as u64,
            penalty: penalties(k),
        })
        .collect()
}

/// Spreads an allocation over the items back over the body (none where a layer has no item).
fn spread(body: &[Body], weights: bool, bits: &[u8]) -> Vec<Option<u8>> {
    let mut it = bits.iter();
    (body.iter())
        .map(|b| (b.linear || !weights).then(|| *it.next().expect("one bit width per item")))
        .collect()
}

fn propose(
    label: &str,
    body: &[Body],
    penalties: Vec<Vec<f64>>,
    weights: bool,
    choices: &[u8],
    budget: f64,
) -> Result<Proposal> {
    let what = if weights { "weight" } else { "activation" };
    let a = allocate::allocate(
        &items(body, weights, |k| penalties[k].clone()),
        choices,
        budget,
    )
    .with_context(|| format!("allocating {what} bits ({label})"))?;
    let penalties = (body.iter().zip(penalties))
        .map(|(b, p)| if b.linear || !weights { p } else { Vec::new() })
        .collect();
    Ok(Proposal {
        label: label.into(),
        bits: spread(body, weights, &a.bits),
        penalties,
        avg_bits: a.avg_bits,
        exact: a.exact,
    })
}

fn propose_uniform(body: &[Body], weights: bool, choices: &[u8], budget: f64) -> Result<Proposal> {
    let zero = |_| vec![0.0; choices.len()];
    let a = allocate::uniform(&items(body, weights, zero), choices, budget)
        .context("allocating uniform bits")?;
    Ok(Proposal {
        label: "uniform".into(),
        bits: spread(body, weights, &a.bits),
        penalties: vec![Vec::new(); body.len()],
        avg_bits: a.avg_bits,
        exact: a.exact,
    })
}

/// Linear layers with constant weights outside `edges`, and activation × activation products
/// with equal batch axes: what [`quantize_node`] quantizes at the body's bits.
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

/// Relevance shares per layer name: (activation score, weight score).
fn relevance(
    g: &Graph,
    images: &[Tensor],
    m: &MixedOptions,
) -> Result<BTreeMap<String, (f64, f64)>> {
    let seed = crate::lrp::parse_seed(&m.target, g)?;
    let s = scores_with_progress(g.clone(), images, seed, m.lrp, m.statistic)?;
    Ok(s.layers
        .into_iter()
        .map(|l| (l.name, (l.score, l.weight_score)))
        .collect())
}

/// Relative quantization error of each body layer's weights and activations at each choice.
fn error_model(
    g: &Graph,
    body: &[Body],
    cal: &Calibration,
    operands: &HashMap<usize, layer_error::Operands>,
    opts: &QuantOptions,
    choices: &[u8],
) -> Penalties {
    let rel = |q: &qvit_device::quant::ActQuant, xs: &[f32]| {
        let power = xs.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / xs.len().max(1) as f64;
        clip::mse(q, xs) / power.max(1e-30)
    };
    body.par_iter()
        .map(|b| {
            let n = &g.nodes[b.node];
            let mut ew = Vec::new();
            let mut ea = Vec::new();
            let sa = &cal.tensors[&n.inputs[0]];
            if !b.linear {
                // Products: one call measures every choice, so the exact product is computed once.
                let probs = crate::graph::is_softmax_output(g, n.inputs[0]);
                let quantizers: Vec<_> = (choices.iter())
                    .map(|&bits| {
                        let qa = if probs && opts.log2_softmax {
                            clip::log2_for(sa, bits)
                        } else {
                            clip::uniform_for(sa, opts.clip, bits)
                        };
                        let qb = clip::symmetric_for(&cal.tensors[&n.inputs[1]], opts.clip, bits);
                        (qa, qb)
                    })
                    .collect();
                let recorded = |j: usize| operands.get(&j).map_or(&[][..], |o| &o[..]);
                let ea = match layer_error::logits_path(g, b.node) {
                    Some(path) if operands.contains_key(&path.1) => {
                        let (qk, av) = (recorded(b.node), recorded(path.1));
                        layer_error::attention_error(g, b.node, qk, path, av, &quantizers)
                    }
                    _ => layer_error::product_error(g, b.node, recorded(b.node), &quantizers),
                };
                return (vec![0.0; choices.len()], ea);
            }
            for &bits in choices {
                let w = g.const_data(n.inputs[1]).unwrap_or(&[]);
                let (rows, k) = (g.shape(n.inputs[1])[0], g.shape(n.inputs[1])[1]);
                let (q, s) = clip::quantize_weights(w, rows, k, bits);
                let (mut err, mut pow) = (0.0, 0.0);
                for (i, (&x, &l)) in w.iter().zip(&q.data).enumerate() {
                    err += (x as f64 - l as f64 * s[i / k] as f64).powi(2);
                    pow += (x as f64).powi(2);
                }
                ew.push(err / pow.max(1e-30));
                ea.push(rel(&clip::uniform_for(sa, opts.clip, bits), &sa.samples));
            }
            (ew, ea)
        })
        .unzip()
}

/// Relative output error `‖y_q − y‖²/‖y‖²` of the model with only one layer quantized: weights
/// at each choice (activations at 8 bits), and activations at each choice (weights at 8 bits).
fn sensitivity(
    g: &Graph,
    body: &[Body],
    cal: &Calibration,
    opts: &QuantOptions,
    choices: &[u8],
    images: &[Tensor],
) -> Result<Penalties> {
    let outputs = |graph: Graph| select::outputs(graph, images);
    let reference = outputs(g.clone())?;
    let power: f64 = reference
        .iter()
        .flatten()
        .map(|&v| (v as f64).powi(2))
        .sum();
    // (layer, choice, weights?) for every measurement.
    let jobs: Vec<(usize, usize, bool)> = (0..body.len())
        .flat_map(|k| (0..choices.len()).flat_map(move |c| [(k, c, true), (k, c, false)]))
        .filter(|&(k, _, w)| !w || body[k].linear)
        .collect();
    let bar = crate::progress::bar(jobs.len(), "sensitivity (one layer quantized at a time)");
    let errs: Vec<f64> = jobs
        .par_iter()
        .map(|&(k, c, weights)| {
            let mut q = g.clone();
            let (wb, ab) = if weights {
                (choices[c], 8)
            } else {
                (8, choices[c])
            };
            quantize_node(&mut q, body[k].node, wb, ab, cal, opts);
            let ys = outputs(q)?;
            let err: f64 = ys
                .iter()
                .flatten()
                .zip(reference.iter().flatten())
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum();
            bar.inc(1);
            Ok(err / power.max(1e-30))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let mut ew = vec![vec![0.0; choices.len()]; body.len()];
    let mut ea = vec![vec![0.0; choices.len()]; body.len()];
    for (&(k, c, weights), e) in jobs.iter().zip(errs) {
        if weights {
            ew[k][c] = e;
        } else {
            ea[k][c] = e;
        }
    }
    Ok((ew, ea))
}
