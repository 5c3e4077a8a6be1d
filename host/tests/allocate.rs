//! The bit allocator against brute-force enumeration and its budget invariant.

use proptest::prelude::*;
use qvit_host::quant::allocate::{Item, allocate, allocate_with_limit, uniform};

/// Budget given in whole thousandths of a bit, so the test's integer check is independent of
/// the allocator's float handling.
fn budget(milli: u32) -> f64 {
    milli as f64 / 1000.0
}

/// `Σ cost·bits·1000 ≤ milli·Σ cost`, exactly.
fn within_budget(items: &[Item], bits: &[u8], milli: u32) -> bool {
    let used: u128 = items
        .iter()
        .zip(bits)
        .map(|(it, &b)| it.cost as u128 * b as u128 * 1000)
        .sum();
    let total: u128 = items.iter().map(|it| it.cost as u128).sum();
    used <= milli as u128 * total
}

/// Best objective over every assignment that respects the budget (None if none does).
fn brute_force(items: &[Item], choices: &[u8], milli: u32) -> Option<f64> {
    let k = choices.len();
    let mut best: Option<f64> = None;
    for code in 0..k.pow(items.len() as u32) {
        let (mut rest, mut bits, mut obj) = (code, Vec::new(), 0.0);
        for it in items {
            bits.push(choices[rest % k]);
            obj += it.penalty[rest % k];
            rest /= k;
        }
        if within_budget(items, &bits, milli) && best.is_none_or(|b| obj < b) {
            best = Some(obj);
        }
    }
    best
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

/// Recomputes the reported objective and average from the bits.
fn consistent(items: &[Item], choices: &[u8], a: &qvit_host::quant::allocate::Allocation) {
    assert_eq!(a.bits.len(), items.len());
    let mut obj = 0.0;
    let (mut used, mut total) = (0.0, 0.0);
    for (it, &b) in items.iter().zip(&a.bits) {
        let c = choices
            .iter()
            .position(|&x| x == b)
            .expect("bits are a choice");
        obj += it.penalty[c];
        used += it.cost as f64 * b as f64;
        total += it.cost as f64;
    }
    assert!(close(obj, a.objective), "{obj} vs {}", a.objective);
    assert!(close(used / total, a.avg_bits));
}

/// Small random instance: items, strictly increasing choices, a feasible budget in thousandths.
fn instance() -> impl Strategy<Value = (Vec<Item>, Vec<u8>, u32)> {
    let choices = proptest::sample::subsequence((1u8..=16).collect::<Vec<_>>(), 2..=4);
    // Common divisors as in ViTs (1 = none); penalties from a small grid so ties happen.
    let divisor = prop_oneof![Just(1u64), Just(384), Just(384 * 384)];
    (choices, divisor, 1usize..=6).prop_flat_map(|(choices, divisor, n)| {
        let k = choices.len();
        let item =
            (1u64..=60, proptest::collection::vec(0u32..=20, k)).prop_map(move |(c, p)| Item {
                name: String::new(),
                cost: c * divisor,
                penalty: p.into_iter().map(|x| x as f64 * 0.25).collect(),
            });
        let lo = choices[0] as u32 * 1000;
        let hi = choices[k - 1] as u32 * 1000 + 500;
        (proptest::collection::vec(item, n), Just(choices), lo..=hi)
    })
}

proptest! {
    #[test]
    fn matches_brute_force((items, choices, milli) in instance()) {
        let a = allocate(&items, &choices, budget(milli)).unwrap();
        let best = brute_force(&items, &choices, milli).unwrap();
        prop_assert!(a.exact);
        prop_assert!(within_budget(&items, &a.bits, milli));
        prop_assert!(close(a.objective, best), "dp {} vs brute {best}", a.objective);
        consistent(&items, &choices, &a);
    }

    #[test]
    fn larger_budget_never_worse((items, choices, milli) in instance(), more in 0u32..3000) {
        let a = allocate(&items, &choices, budget(milli)).unwrap();
        let b = allocate(&items, &choices, budget(milli + more)).unwrap();
        prop_assert!(b.objective <= a.objective + 1e-9);
        prop_assert!(within_budget(&items, &b.bits, milli + more));
    }

    #[test]
    fn uniform_is_the_single_choice_allocation((items, choices, milli) in instance()) {
        let u = uniform(&items, &choices, budget(milli)).unwrap();
        let c = choices.iter().rposition(|&b| b as u32 * 1000 <= milli).unwrap();
        prop_assert!(u.bits.iter().all(|&b| b == choices[c]));
        prop_assert!(within_budget(&items, &u.bits, milli));
        consistent(&items, &choices, &u);
        // The allocator offered only that width must give the same answer.
        let single: Vec<Item> = items
            .iter()
            .map(|it| Item { penalty: vec![it.penalty[c]], ..it.clone() })
            .collect();
        let a = allocate(&single, &choices[c..=c], budget(milli)).unwrap();
        prop_assert_eq!(&a.bits, &u.bits);
        prop_assert!(close(a.objective, u.objective));
        // And the free allocation is never worse than the baseline.
        let free = allocate(&items, &choices, budget(milli)).unwrap();
        prop_assert!(free.objective <= u.objective + 1e-9);
    }

    /// Huge co-prime costs force the rounded path: still within budget, never better than the
    /// true optimum (which would mean a budget violation), marked inexact.
    #[test]
    fn rounding_fallback_respects_budget(
        (items, choices, milli) in instance(),
        offsets in proptest::collection::vec(0u64..1_000_000, 6),
        limit in 40usize..400,
    ) {
        let items: Vec<Item> = items
            .into_iter()
            .zip(&offsets)
            .map(|(it, &o)| Item { cost: it.cost * 1_000_003 + o, ..it })
            .collect();
        let a = allocate_with_limit(&items, &choices, budget(milli), limit).unwrap();
        let best = brute_force(&items, &choices, milli).unwrap();
        prop_assert!(within_budget(&items, &a.bits, milli));
        prop_assert!(a.objective >= best - 1e-9);
        if a.exact {
            prop_assert!(close(a.objective, best));
        }
        consistent(&items, &choices, &a);
    }
}

#[test]
fn default_limit_rounds_huge_coprime_costs() {
    // Primes around 1e12: gcd 1, capacity in the 1e13 range, far beyond the table limit.
    let costs = [999_999_999_989u64, 1_000_000_000_039, 999_999_999_961];
    let choices = [2u8, 4, 8];
    let items: Vec<Item> = costs
        .iter()
        .enumerate()
        .map(|(i, &cost)| Item {
            name: format!("l{i}"),
            cost,
            penalty: vec![16.0 / (i + 1) as f64, 4.0 / (i + 1) as f64, 0.0],
        })
        .collect();
    let milli = 4_700;
    let a = allocate(&items, &choices, budget(milli)).unwrap();
    assert!(!a.exact);
    assert!(within_budget(&items, &a.bits, milli));
    let best = brute_force(&items, &choices, milli).unwrap();
    assert!(a.objective >= best - 1e-9);
    // The grid is fine enough here to find the optimum anyway.
    assert!(close(a.objective, best), "{} vs {best}", a.objective);
}

#[test]
fn vit_small_instance_is_exact() {
    // Twelve blocks of qkv, proj, fc1, fc2 with ViT-S shapes.
    let shapes = [384u64 * 1152, 384 * 384, 384 * 1536, 1536 * 384];
    let choices = [2u8, 3, 4, 5, 6, 8];
    let items: Vec<Item> = (0..72)
        .map(|i| {
            let cost = shapes[i % 4];
            // Deterministic, layer-dependent sensitivity; error falls by ~4× per extra bit.
            let s = 1.0 + ((i * 37) % 11) as f64;
            Item {
                name: format!("blocks.{}.{}", i / 4, i % 4),
                cost,
                penalty: choices
                    .iter()
                    .map(|&b| s * cost as f64 * 4f64.powi(-(b as i32)))
                    .collect(),
            }
        })
        .collect();
    for milli in [2_000, 3_000, 4_000, 4_250, 6_000, 8_000] {
        let a = allocate(&items, &choices, budget(milli)).unwrap();
        assert!(a.exact);
        assert!(within_budget(&items, &a.bits, milli));
        let u = uniform(&items, &choices, budget(milli)).unwrap();
        assert!(a.objective <= u.objective + 1e-9);
    }
    // At the top budget every layer can take 8 bits, which is the unique optimum.
    let top = allocate(&items, &choices, 8.0).unwrap();
    assert!(top.bits.iter().all(|&b| b == 8));
}

#[test]
fn ties_prefer_more_bits_then_lower_index() {
    // Zero penalties everywhere: the budget (2 of 3 items at 4 bits) goes to the first items.
    let items: Vec<Item> = (0..3)
        .map(|i| Item {
            name: format!("l{i}"),
            cost: 10,
            penalty: vec![0.0, 0.0],
        })
        .collect();
    let a = allocate(&items, &[2, 4], budget(3_400)).unwrap();
    assert_eq!(a.bits, vec![4, 4, 2]);
}

#[test]
fn bad_inputs_are_errors() {
    let item = |cost, penalty: Vec<f64>| Item {
        name: "x".into(),
        cost,
        penalty,
    };
    let ok = vec![item(4, vec![1.0, 0.0])];
    let err = |items: &[Item], choices: &[u8], b: f64| {
        allocate(items, choices, b).unwrap_err().to_string()
    };
    let msg = err(&ok, &[3, 5], 2.5);
    assert!(
        msg.contains("infeasible") && msg.contains("3 bits"),
        "{msg}"
    );
    assert!(uniform(&ok, &[3, 5], 2.999).is_err());
    assert!(allocate(&ok, &[3, 5], 3.0).is_ok());
    assert!(err(&ok, &[], 4.0).contains("no bit-width"));
    assert!(err(&[item(4, vec![1.0])], &[0], 4.0).contains("1..=16"));
    assert!(err(&ok, &[4, 17], 4.0).contains("1..=16"));
    assert!(err(&ok, &[5, 3], 4.0).contains("increasing"));
    assert!(err(&ok, &[3, 3], 4.0).contains("increasing"));
    assert!(err(&ok, &[2, 4, 8], 4.0).contains("penalties"));
    assert!(err(&[item(4, vec![f64::NAN, 0.0])], &[2, 4], 4.0).contains("finite"));
    assert!(err(&[item(4, vec![0.0, f64::INFINITY])], &[2, 4], 4.0).contains("finite"));
    assert!(err(&[item(0, vec![1.0, 0.0])], &[2, 4], 4.0).contains("cost"));
    assert!(err(&[], &[2, 4], 4.0).contains("no items"));
    assert!(err(&ok, &[2, 4], f64::NAN).contains("finite"));
    assert!(allocate_with_limit(&ok, &[2, 4], 4.0, 1).is_err());
}
