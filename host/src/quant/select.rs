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
//! allocation is never worse than uniform.

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

/// How close a quantized model's outputs stay to f32's, as means over images.
#[derive(Clone, Copy, Debug)]
pub struct Fidelity {
    /// Output cosine (what `qvit compare` reports as `output_cosine_mean`).
    pub cosine: f64,
    /// KL divergence of the softmax of the quantized output from f32's (nats).
    pub kl: f64,
}

impl Fidelity {
    /// Whether `self` is closer to f32 than `other`: by KL for a classifier, by cosine otherwise.
    pub fn better_than(&self, other: &Fidelity, classifier: bool) -> bool {
        if classifier {
            self.kl < other.kl
        } else {
            self.cosine > other.cosine
        }
    }
}

/// Whether `g`'s first output is a single vector per image (class logits), as opposed to
/// tokens or feature maps.
pub fn is_classifier(g: &Graph) -> bool {
    let shape = g.outputs.first().map(|&o| g.shape(o)).unwrap_or(&[]);
    shape[..shape.len().saturating_sub(1)]
        .iter()
        .product::<usize>()
        == 1
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
    let bar = crate::eval::progress(
        options.len(),
        "select (each candidate allocation run end to end)",
    );
    let scores = options
        .par_iter()
        .map(|opts| {
            let mut q = g.clone();
            quantize_nodes(&mut q, edges, cal, opts);
            let ys = outputs(q, images)?;
            let n = images.len().max(1) as f64;
            let pairs = || ys.iter().zip(&reference);
            bar.inc(1);
            Ok(Fidelity {
                cosine: pairs().map(|(y, r)| cosine(y, r)).sum::<f64>() / n,
                kl: pairs().map(|(y, r)| softmax_kl(r, y)).sum::<f64>() / n,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    bar.finish_and_clear();
    Ok(scores)
}
