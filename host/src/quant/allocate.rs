//! Mixed-precision bit allocation as an exact multiple-choice knapsack.
//!
//! Every item (a layer's weights or activations) picks one bit width from a shared list of
//! choices; the cost-weighted average bit width must not exceed a budget, and the summed
//! penalty is minimised. The budget constraint is integral once costs are divided by their gcd,
//! so a dynamic programme over the integer capacity is exact; ViT layers share large divisors
//! (384·384 in ViT-S), which keeps that capacity in the hundreds.
//!
//! Budgets are read in thousandths of a bit: `budget` becomes the integer
//! `m = floor(1000·budget)`, except that a value within 1e-6 of a whole thousandth counts as
//! that thousandth (so `3.3`, stored as 3.2999…, means 3300/1000). The constraint solved is the
//! integer inequality `Σ cost·bits·1000 ≤ m·Σ cost`, evaluated in `u128`.

use anyhow::{Result, bail, ensure};

/// Table size in bytes above which [`allocate`] rounds costs onto a coarser grid. Each capacity
/// unit takes one choice byte per item plus [`ROW_BYTES`] for the two rolling rows; 2e8 bytes
/// is 200 MB and about a second of work in a release build.
pub const MAX_CELLS: usize = 200_000_000;

/// Bytes per capacity unit of the two rolling rows of the programme, counted in the table size.
pub const ROW_BYTES: usize = 32;

/// One layer to allocate bits for.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Layer name (carried for the caller's reports; unused by the solver).
    pub name: String,
    /// Size that the budget weights by (parameter count for weights, element count for
    /// activations). Must be > 0.
    pub cost: u64,
    /// Penalty (lower is better, finite) of giving this item `choices[c]` bits; same length as
    /// `choices`.
    pub penalty: Vec<f64>,
}

/// The bits chosen for every item.
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    /// Bits per item, in item order (values from `choices`).
    pub bits: Vec<u8>,
    /// Achieved cost-weighted average bit width, `Σ cost·bits / Σ cost`.
    pub avg_bits: f64,
    /// `Σ penalty` at the chosen bits.
    pub objective: f64,
    /// True when the programme ran on the exact (gcd-scaled) costs, so the objective is optimal;
    /// false when costs were rounded up to fit [`MAX_CELLS`] (budget still respected, optimality
    /// not guaranteed).
    pub exact: bool,
}

/// Minimises `Σ penalty` subject to `Σ cost_l·bits_l ≤ budget·Σ cost_l`: the cost-weighted
/// average bit width never exceeds `budget` (read in thousandths of a bit, see the module doc).
///
/// `choices` must be strictly increasing bit widths in `1..=16` (penalties are indexed like
/// them, so no reordering can go wrong). Among allocations with equal objective the one with
/// the larger `Σ cost·bits` wins (measured on the rounded costs when `exact` is false), then the
/// one giving more bits to the lowest-index item where they differ.
///
/// When the gcd-scaled table would exceed [`MAX_CELLS`], every item's cost is rounded *up* to a
/// coarser grid (conservative: the budget still holds) and the result has `exact == false`.
///
/// Errors on no items, bad choices, a zero cost, a penalty of the wrong length or not finite,
/// and a budget below the smallest choice (infeasible).
pub fn allocate(items: &[Item], choices: &[u8], budget: f64) -> Result<Allocation> {
    allocate_with_limit(items, choices, budget, MAX_CELLS)
}

/// [`allocate`] with an explicit table-size limit, `(items + ROW_BYTES)·(capacity + 1)` (must be at
/// least `items + ROW_BYTES`); a small limit forces the rounded, possibly sub-optimal path.
pub fn allocate_with_limit(
    items: &[Item],
    choices: &[u8],
    budget: f64,
    max_cells: usize,
) -> Result<Allocation> {
    let milli = check(items, choices, budget)?;
    let n = items.len();
    let per_unit = (n + ROW_BYTES) as u128;
    ensure!(
        max_cells as u128 >= per_unit,
        "table limit {max_cells} is below {per_unit} (items + {ROW_BYTES})"
    );
    let g = items.iter().fold(0, |g, it| gcd(g, it.cost));
    let units: Vec<u64> = items.iter().map(|it| it.cost / g).collect();
    let total: u128 = units.iter().map(|&u| u as u128).sum();

    // Every item takes at least the smallest choice; the programme spends only the extra bits
    // above it, which also bounds the useful capacity by `total·(max − min)`.
    let base = choices[0] as u128;
    let extra: Vec<u128> = choices.iter().map(|&b| b as u128 - base).collect();
    let spare = milli * total / 1000 - base * total;

    // Grid step 1 is exact; otherwise grow it until the table fits. Rounding item weights up
    // and capacity down keeps `Σ units·extra ≤ step·Σ ceil(units/step)·extra ≤ step·cap ≤ spare`.
    let mut step: u128 = 1;
    let (weights, cap) = loop {
        let w: Vec<u128> = units.iter().map(|&u| (u as u128).div_ceil(step)).collect();
        let reach: u128 = w.iter().sum::<u128>() * extra[extra.len() - 1];
        let cap = (spare / step).min(reach);
        if (cap + 1).saturating_mul(per_unit) <= max_cells as u128 {
            break (w, cap as usize);
        }
        let want = step.saturating_mul(cap + 1).saturating_mul(per_unit) / max_cells as u128;
        step = (step * 2).max(want);
    };

    // Weights are at most `cap` here or never fit; either way they fit a usize.
    let weights: Vec<usize> = weights
        .iter()
        .map(|&w| w.min(cap as u128 + 1) as usize)
        .collect();
    let extra: Vec<usize> = extra.iter().map(|&e| e as usize).collect();
    let bits_idx = solve(items, &weights, &extra, cap);
    Ok(summarise(
        items,
        choices,
        bits_idx.iter().map(|&c| c as usize),
        step == 1,
    ))
}

/// The uniform baseline: every item gets the largest choice not above `budget`. Same input
/// rules and errors as [`allocate`]; `exact` is true.
pub fn uniform(items: &[Item], choices: &[u8], budget: f64) -> Result<Allocation> {
    let milli = check(items, choices, budget)?;
    // `check` guarantees choices[0]·1000 ≤ milli, so a choice exists.
    let c = choices
        .iter()
        .rposition(|&b| b as u128 * 1000 <= milli)
        .unwrap_or(0);
    Ok(summarise(
        items,
        choices,
        std::iter::repeat_n(c, items.len()),
        true,
    ))
}

/// The multiple-choice knapsack over `cap + 1` capacity units. Items are processed last to
/// first so that reconstruction decides item 0 first, which makes the "more bits to lower
/// indices" tie-break exact. Returns the chosen choice index per item.
fn solve(items: &[Item], weights: &[usize], extra: &[usize], cap: usize) -> Vec<u8> {
    let n = items.len();
    // Best (penalty, capacity units spent) of items i.. within capacity w ("at most" form, so
    // the base row is all zeros). Units spent never exceed `cap`.
    let mut best = vec![(0.0f64, 0usize); cap + 1];
    let mut next = best.clone();
    let mut table = vec![0u8; n * (cap + 1)];
    for i in (0..n).rev() {
        let row = &mut table[i * (cap + 1)..(i + 1) * (cap + 1)];
        for (w, slot) in next.iter_mut().enumerate() {
            let mut pick: Option<(usize, f64, usize)> = None;
            // Descending so that on a full tie the larger bit width (seen first) stays.
            for c in (0..extra.len()).rev() {
                let d = weights[i].saturating_mul(extra[c]);
                if d > w {
                    continue;
                }
                let (p, used) = best[w - d];
                let (p, used) = (p + items[i].penalty[c], used + d);
                let better = match pick {
                    None => true,
                    Some((_, bp, bu)) => p < bp || (p == bp && used > bu),
                };
                if better {
                    pick = Some((c, p, used));
                }
            }
            // Choice 0 has zero extra weight, so some choice always fits.
            let (c, p, used) = pick.unwrap_or((0, f64::INFINITY, 0));
            row[w] = c as u8;
            *slot = (p, used);
        }
        std::mem::swap(&mut best, &mut next);
    }
    let mut w = cap;
    let mut picked = Vec::with_capacity(n);
    for (i, &wi) in weights.iter().enumerate() {
        let c = table[i * (cap + 1) + w];
        w -= wi * extra[c as usize];
        picked.push(c);
    }
    picked
}

fn summarise(
    items: &[Item],
    choices: &[u8],
    picked: impl Iterator<Item = usize>,
    exact: bool,
) -> Allocation {
    let mut bits = Vec::with_capacity(items.len());
    let (mut weighted, mut total, mut objective) = (0u128, 0u128, 0.0);
    for (it, c) in items.iter().zip(picked) {
        bits.push(choices[c]);
        weighted += it.cost as u128 * choices[c] as u128;
        total += it.cost as u128;
        objective += it.penalty[c];
    }
    Allocation {
        bits,
        avg_bits: weighted as f64 / total as f64,
        objective,
        exact,
    }
}

/// Validates the inputs and returns the budget in thousandths of a bit.
fn check(items: &[Item], choices: &[u8], budget: f64) -> Result<u128> {
    ensure!(!items.is_empty(), "no items to allocate bits for");
    ensure!(!choices.is_empty(), "no bit-width choices");
    for &b in choices {
        ensure!(
            (1..=16).contains(&b),
            "{b} bits: choices must lie in 1..=16"
        );
    }
    ensure!(
        choices.windows(2).all(|p| p[0] < p[1]),
        "bit-width choices {choices:?} must be strictly increasing"
    );
    for it in items {
        ensure!(it.cost > 0, "item {}: cost must be > 0", it.name);
        ensure!(
            it.penalty.len() == choices.len(),
            "item {}: {} penalties for {} choices",
            it.name,
            it.penalty.len(),
            choices.len()
        );
        if let Some(p) = it.penalty.iter().find(|p| !p.is_finite()) {
            bail!("item {}: penalty {p} is not finite", it.name);
        }
    }
    ensure!(budget.is_finite(), "budget {budget} is not finite");
    // Anything above the largest possible width is as good as it; clamping keeps u128 sums safe.
    let x = budget.clamp(0.0, 16.0) * 1000.0;
    let milli = if (x - x.round()).abs() <= 1e-6 {
        x.round()
    } else {
        x.floor()
    } as u128;
    ensure!(
        milli >= choices[0] as u128 * 1000,
        "budget {budget} bits is infeasible: the minimum achievable average is {} bits",
        choices[0]
    );
    Ok(milli)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}
