//! Phases 1 and 2 of the allocation: how much each body layer matters ([`Scores`]: relevance,
//! or random draws), and what each bit choice costs it ([`Penalties`]: the quantization-error
//! model, or the measured sensitivity).

use super::super::calib::Calibration;
use super::super::{QuantOptions, clip, layer_error, quantize_node, select};
use super::{Allocator, Body, MixedOptions, Setup};
use crate::fixtures::SeededRng;
use crate::lrp::parse_seed;
use crate::lrp::scores::scores_with_progress;
use anyhow::Result;
use qvit_device::{Graph, Tensor};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// Input values (f32) of every body layer kept at once for the error model: as many
/// calibration images as fit, at least 2 and at most 32 (2 on a ViT-S at 224²).
const PROBE_FLOATS: usize = 1 << 23;

/// Per body layer: (activation score, weight score), the weights of its penalties.
pub(super) struct Scores(pub Vec<(f64, f64)>);

/// Per body layer and bit choice: the penalty of its weights (zeros for products of two
/// activations) and of its activations, before any score weighs them.
pub(super) struct Penalties {
    pub weights: Vec<Vec<f64>>,
    pub activations: Vec<Vec<f64>>,
}

/// Phase 1: the scores of the allocator (none for uniform and sensitivity).
pub(super) fn scores(s: &Setup, calib: &[Tensor], m: &MixedOptions) -> Result<Option<Scores>> {
    let pg = s.graph();
    Ok(match m.allocator {
        Allocator::Lrp => {
            let r = relevance(pg, &calib[..m.lrp_images.clamp(1, calib.len())], m)?;
            Some(Scores(
                (s.body.iter())
                    .map(|b| r.get(&pg.nodes[b.node].name).copied().unwrap_or_default())
                    .collect(),
            ))
        }
        Allocator::Random(seed) => {
            let mut rng = SeededRng::new(seed);
            Some(Scores(
                (s.body.iter())
                    .map(|_| {
                        let c = rng.uniform() as f64;
                        (c, c)
                    })
                    .collect(),
            ))
        }
        Allocator::Uniform | Allocator::Sensitivity => None,
    })
}

/// Phase 2: the penalty tables of the allocator: the error model (lrp, random) or the measured
/// sensitivity; uniform has none.
pub(super) fn penalties(
    s: &Setup,
    calib: &[Tensor],
    base: &QuantOptions,
    m: &MixedOptions,
) -> Result<Option<Penalties>> {
    let (pg, body, choices) = (s.graph(), &s.body, &m.choices);
    Ok(match m.allocator {
        Allocator::Lrp | Allocator::Random(_) => {
            // Every body layer's input: Linear activation errors are judged at the layer's
            // output, products' at the product (or the attention output).
            let probed: Vec<usize> = body.iter().map(|b| b.node).collect();
            let per_image: usize = (probed.iter())
                .flat_map(|&j| &pg.nodes[j].inputs[..2])
                .filter(|&&v| pg.const_data(v).is_none())
                .map(|&v| pg.shape(v).iter().product::<usize>())
                .sum();
            let fit = (PROBE_FLOATS / per_image.max(1)).clamp(2, 32);
            let images = &calib[..fit.min(calib.len())];
            let operands = layer_error::record_operands(pg, &probed, images)?;
            Some(error_model(pg, body, &s.cal, &operands, base, choices))
        }
        Allocator::Sensitivity => {
            let n = m.sensitivity_images.clamp(1, calib.len());
            Some(sensitivity(pg, body, &s.cal, base, choices, &calib[..n])?)
        }
        Allocator::Uniform => None,
    })
}

/// Relevance shares per layer name: (activation score, weight score).
fn relevance(
    g: &Graph,
    images: &[Tensor],
    m: &MixedOptions,
) -> Result<BTreeMap<String, (f64, f64)>> {
    let seed = parse_seed(&m.target, g)?;
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
    let (weights, activations) = body
        .par_iter()
        .map(|b| {
            let n = &g.nodes[b.node];
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
            let quantizers: Vec<_> = (choices.iter())
                .map(|&bits| clip::uniform_for(sa, opts.clip, bits))
                .collect();
            let ea = match operands.get(&b.node) {
                Some(x) => layer_error::linear_input_error(g, b.node, x, &quantizers),
                None => quantizers.iter().map(|q| rel(q, &sa.samples)).collect(),
            };
            let mut ew = Vec::new();
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
            }
            (ew, ea)
        })
        .unzip();
    Penalties {
        weights,
        activations,
    }
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
            quantize_node(&mut q, body[k].node, (wb, ab), false, cal, opts);
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
    Ok(Penalties {
        weights: ew,
        activations: ea,
    })
}
