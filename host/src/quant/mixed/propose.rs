//! Phase 3 of the allocation: proposals. Each exponent γ weighs the penalty tables by the
//! scores raised to γ, and an exact knapsack (`allocate`) turns the weighed tables into bits
//! for each budget; uniform joins when there is nothing else or the proposals will be tried.

use super::super::allocate::{self, Item};
use super::penalty::{Penalties, Scores};
use super::{Body, MixedOptions};
use anyhow::{Context, Result};

/// One allocation of one budget (weights or activations), per body layer.
pub(super) struct Proposal {
    /// Where it comes from: `uniform`, `sensitivity`, or the allocator and γ; equal proposals
    /// joined by ` = `.
    pub label: String,
    /// Bits per body layer (none for the weights of products of two activations).
    pub bits: Vec<Option<u8>>,
    /// Penalty tables the knapsack saw (empty rows where none applies, and for uniform).
    pub penalties: Vec<Vec<f64>>,
    pub avg_bits: f64,
    pub exact: bool,
}

/// The proposals for the weight budget and for the activation budget.
pub(super) struct Proposals {
    pub weights: Vec<Proposal>,
    pub activations: Vec<Proposal>,
}

/// Whether a proposal with this label is uniform's (alone or equal to others).
pub(super) fn is_uniform(label: &str) -> bool {
    label.split(" = ").any(|l| l == "uniform")
}

/// Proposals for each budget: one per γ (the tables as they are without scores), and uniform
/// when there is nothing else or the candidates are run end to end. Equal proposals are kept
/// once, under all their labels ("lrp γ=2 = uniform").
pub(super) fn proposals(
    body: &[Body],
    scores: Option<&Scores>,
    penalties: Option<&Penalties>,
    m: &MixedOptions,
) -> Result<Proposals> {
    let choices = &m.choices;
    let (mut wprops, mut aprops) = (Vec::new(), Vec::new());
    if let Some(p) = penalties {
        let gammas: Vec<Option<f64>> = match scores {
            Some(_) => m.lrp_gammas.iter().copied().map(Some).collect(),
            None => vec![None],
        };
        for gamma in gammas {
            let weigh = |e: &[Vec<f64>], weights: bool| -> Vec<Vec<f64>> {
                let c = |k: usize| match (scores, gamma) {
                    (Some(s), Some(g)) => (if weights { s.0[k].1 } else { s.0[k].0 }).powf(g),
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
            let weighed = weigh(&p.weights, true);
            wprops.push(propose(&label, body, weighed, true, choices, m.budget)?);
            let weighed = weigh(&p.activations, false);
            aprops.push(propose(&label, body, weighed, false, choices, m.abudget)?);
        }
    }
    if penalties.is_none() || m.select_images > 0 {
        wprops.push(propose_uniform(body, true, choices, m.budget)?);
        aprops.push(propose_uniform(body, false, choices, m.abudget)?);
    }
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
    Ok(Proposals {
        weights: wprops,
        activations: aprops,
    })
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
