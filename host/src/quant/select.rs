//! End-to-end choice among candidate allocations: each candidate quantizes the whole model and
//! runs on calibration images, and the one whose outputs stay closest to f32 wins: the lowest
//! mean KL divergence of the class probabilities for a classifier (one output vector, whose
//! argmax is the prediction), the highest mean output cosine otherwise (tokens, features).
//!
//! An allocator's penalties are proxies: relevance times a per-layer error model, or one layer's
//! error measured alone. They add up errors that compound in the model, and they carry one
//! free parameter, the tempering γ of the relevance. Running the candidates settles what the
//! proxies cannot: which γ suits this model and budget, and whether the guided bits beat uniform
//! bits at all. Uniform is always among the candidates, so on the calibration images the chosen
//! allocation is never worse than uniform. A guided allocation must also beat uniform by more
//! than the noise of a finite calibration set ([`choose`]); otherwise uniform is kept, since an
//! advantage that small does not carry over to other images.

use super::calib::Calibration;
use super::{QuantOptions, quantize_nodes};
use crate::compare::cosine;
use anyhow::Result;
use qvit_device::exec::Executor;
use qvit_device::{Graph, Tensor};
use qvit_kernels::KernelSet;
use rayon::prelude::*;

/// The first output of `g` on every image.
pub fn outputs(g: Graph, images: &[Tensor]) -> Result<Vec<Vec<f32>>> {
    let mut ex = Executor::new(g, KernelSet::detect())?;
    images
        .iter()
        .map(|x| Ok(ex.run(&[x])?.remove(0).data))
        .collect()
}

/// How close a quantized model's outputs stay to f32's, per image.
#[derive(Clone, Debug)]
pub struct Fidelity {
    /// Output cosine per image (`qvit compare` reports their mean as `output_cosine_mean`).
    pub cosines: Vec<f64>,
    /// KL divergence of the softmax of the quantized output from f32's per image (nats).
    pub kls: Vec<f64>,
}

impl Fidelity {
    /// Mean output cosine.
    pub fn cosine(&self) -> f64 {
        mean(&self.cosines)
    }

    /// Mean KL divergence.
    pub fn kl(&self) -> f64 {
        mean(&self.kls)
    }

    /// Per image, the higher the closer to f32: −KL for a classifier, the cosine otherwise.
    pub fn scores(&self, classifier: bool) -> Vec<f64> {
        if classifier {
            self.kls.iter().map(|k| -k).collect()
        } else {
            self.cosines.clone()
        }
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

/// Standard errors a trial's mean per-image advantage over uniform must exceed to be kept.
pub const SIGNIFICANCE: f64 = 2.0;

/// The best trial's advantage over uniform on the calibration images.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Advantage {
    /// Mean per-image score difference, best trial minus uniform (score: −KL or cosine).
    pub mean: f64,
    /// Its standard error (per-image differences' standard deviation over √images).
    pub standard_error: f64,
    /// Whether `mean` exceeds [`SIGNIFICANCE`] standard errors, so the best trial is kept.
    pub kept: bool,
}

/// The trial to keep: the best by mean score (the first among equals) when its paired per-image
/// advantage over trial `uniform` exceeds [`SIGNIFICANCE`] standard errors, else `uniform`.
pub fn choose(fid: &[Fidelity], uniform: usize, classifier: bool) -> (usize, Advantage) {
    let scores: Vec<Vec<f64>> = fid.iter().map(|f| f.scores(classifier)).collect();
    let means: Vec<f64> = scores.iter().map(|s| mean(s)).collect();
    let best = (0..fid.len()).fold(0, |b, i| if means[i] > means[b] { i } else { b });
    let d: Vec<f64> = (scores[best].iter().zip(&scores[uniform]))
        .map(|(a, u)| a - u)
        .collect();
    let m = mean(&d);
    let n = d.len().max(1) as f64;
    let var = d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let se = (var / n).sqrt();
    let kept = best != uniform && m > SIGNIFICANCE * se;
    let advantage = Advantage {
        mean: m,
        standard_error: se,
        kept,
    };
    (if kept { best } else { uniform }, advantage)
}

/// `KL(softmax(p) ‖ softmax(q))` in nats.
pub fn softmax_kl(p: &[f32], q: &[f32]) -> f64 {
    let log_softmax = |x: &[f32]| -> Vec<f64> {
        let m = x.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
        let lse = m + x.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        x.iter().map(|&v| v as f64 - lse).collect()
    };
    let (lp, lq) = (log_softmax(p), log_softmax(q));
    lp.iter().zip(&lq).map(|(a, b)| a.exp() * (a - b)).sum()
}

/// Fidelity against the unquantized `g` on `images` of `g` quantized with each of `options`
/// (per-layer bits in [`QuantOptions::layer_bits`]; `edges` at the edge bits).
pub fn fidelity(
    g: &Graph,
    edges: &[usize],
    cal: &Calibration,
    options: &[QuantOptions],
    images: &[Tensor],
) -> Result<Vec<Fidelity>> {
    let reference = outputs(g.clone(), images)?;
    let bar = crate::progress::bar(
        options.len(),
        "select (each candidate allocation run end to end)",
    );
    let scores = options
        .par_iter()
        .map(|opts| {
            let mut q = g.clone();
            quantize_nodes(&mut q, edges, cal, opts);
            let ys = outputs(q, images)?;
            let pairs = || ys.iter().zip(&reference);
            bar.inc(1);
            Ok(Fidelity {
                cosines: pairs().map(|(y, r)| cosine(y, r)).collect(),
                kls: pairs().map(|(y, r)| softmax_kl(r, y)).collect(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    bar.finish_and_clear();
    Ok(scores)
}
