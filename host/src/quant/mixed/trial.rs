//! Phases 4 and 5 of the allocation: trials, where every pair of a weight and an activation
//! proposal quantizes the model and runs on calibration images, and the selection among them
//! ([`select::choose`]: the closest to f32, if its edge over uniform exceeds the noise).

use super::super::{QuantOptions, select};
use super::propose::{Proposal, Proposals, is_uniform};
use super::{LayerBits, MixedOptions, Setup, Trial};
use anyhow::{Context, Result};
use qvit_device::Tensor;

/// What the trials chose.
pub(super) struct Selection {
    /// Indices of the chosen weight and activation proposals.
    pub chosen: (usize, usize),
    /// Every pair tried (empty when there was only one pair or trials were off).
    pub trials: Vec<Trial>,
    /// Calibration images the trials ran on (0 when nothing was tried).
    pub images: usize,
    /// The best trial's paired advantage over uniform.
    pub advantage: Option<select::Advantage>,
}

/// The bits per layer name of a weight and an activation proposal.
pub(super) fn bitmap(s: &Setup, w: &Proposal, a: &Proposal) -> LayerBits {
    (s.body.iter().enumerate())
        .map(|(k, b)| {
            (
                s.name(b),
                (
                    w.bits[k].unwrap_or(a.bits[k].unwrap_or(8)),
                    a.bits[k].unwrap_or(8),
                ),
            )
        })
        .collect()
}

/// Runs every pair of proposals (when there is more than one and `m.select_images > 0`) and
/// selects one; without trials the first pair is taken.
pub(super) fn select_by_trials(
    s: &Setup,
    calib: &[Tensor],
    base: &QuantOptions,
    m: &MixedOptions,
    props: &Proposals,
) -> Result<Selection> {
    let (wprops, aprops) = (&props.weights, &props.activations);
    let pairs: Vec<(usize, usize)> = (0..wprops.len())
        .flat_map(|w| (0..aprops.len()).map(move |a| (w, a)))
        .collect();
    let n_select = m.select_images.min(calib.len());
    let mut selection = Selection {
        chosen: pairs[0],
        trials: Vec::new(),
        images: if pairs.len() > 1 { n_select } else { 0 },
        advantage: None,
    };
    if pairs.len() > 1 && n_select > 0 {
        let options: Vec<QuantOptions> = (pairs.iter())
            .map(|&(w, a)| QuantOptions {
                layer_bits: bitmap(s, &wprops[w], &aprops[a]),
                ..base.clone()
            })
            .collect();
        let fid = select::fidelity(s.graph(), &s.edges, &s.cal, &options, &calib[..n_select])?;
        let uniform = (pairs.iter())
            .position(|&(w, a)| is_uniform(&wprops[w].label) && is_uniform(&aprops[a].label))
            .context("uniform is always a proposal when trials run")?;
        let classifier = crate::graph::is_classifier(s.graph());
        let (best, adv) = select::choose(&fid, uniform, classifier);
        selection.chosen = pairs[best];
        selection.advantage = Some(adv);
        selection.trials = (pairs.iter().zip(&fid))
            .map(|(&(w, a), f)| Trial {
                weights: wprops[w].label.clone(),
                activations: aprops[a].label.clone(),
                cosine: f.cosine(),
                kl: f.kl(),
            })
            .collect();
    }
    Ok(selection)
}
