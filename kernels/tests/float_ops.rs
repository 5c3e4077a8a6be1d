//! Every tier's f32 ops against the scalar f64-accumulating reference: the length matrix, special
//! values, invariants and a property test. Unsupported tiers are printed as SKIPPED, never passed
//! silently.

use proptest::prelude::*;
use qvit_kernels::{KernelSet, Tier, reference};
use rand_distr::{Distribution, Uniform};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

/// Lengths around the 4-, 8- and 16-lane vector widths, primes, ViT sizes.
const LENS: [usize; 19] = [
    1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 197, 384, 1000,
];

/// The kernel sets of every tier this CPU runs; the others are printed as skipped.
fn tiers() -> Vec<KernelSet> {
    static REPORT: std::sync::Once = std::sync::Once::new();
    let mut out = Vec::new();
    for t in Tier::ALL {
        match KernelSet::with_tier(t) {
            Ok(ks) => out.push(ks),
            Err(_) => REPORT.call_once(|| {
                for t in Tier::ALL.into_iter().filter(|t| !t.is_supported()) {
                    println!("SKIPPED tier {t}: not supported by this CPU/architecture");
                }
            }),
        }
    }
    out
}

/// Seeded uniform data in `[-scale, scale]`.
fn data(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let range = Uniform::new_inclusive(-scale, scale).unwrap();
    (0..n).map(|_| range.sample(&mut rng)).collect()
}

fn gelu_tol(x: f32) -> f32 {
    2e-6 * x.abs().max(1.0)
}

fn check_gelu(ks: &KernelSet, xs: &[f32], tanh: bool) {
    let mut got = xs.to_vec();
    let mut want = xs.to_vec();
    if tanh {
        ks.gelu_tanh_f32(&mut got);
        reference::gelu_tanh_f32(&mut want);
    } else {
        ks.gelu_erf_f32(&mut got);
        reference::gelu_erf_f32(&mut want);
    }
    let form = if tanh { "tanh" } else { "erf" };
    for i in 0..xs.len() {
        let (g, w) = (got[i], want[i]);
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= gelu_tol(xs[i]);
        assert!(
            ok,
            "tier {} gelu_{form} len {} at {i}: x={} got {g} want {w}",
            ks.tier(),
            xs.len(),
            xs[i]
        );
    }
}

#[test]
fn gelu_matches_reference_over_lengths() {
    for ks in tiers() {
        for (seed, &n) in LENS.iter().enumerate() {
            let xs = data(n, seed as u64, 8.0);
            check_gelu(&ks, &xs, false);
            check_gelu(&ks, &xs, true);
        }
    }
}

#[test]
fn gelu_dense_sweep_matches_reference() {
    // Every 1/256 step over [-12, 12] covers the A&S fit's whole range and both tails.
    let xs: Vec<f32> = (-12 * 256..=12 * 256).map(|i| i as f32 / 256.0).collect();
    for ks in tiers() {
        check_gelu(&ks, &xs, false);
        check_gelu(&ks, &xs, true);
    }
}

#[test]
fn gelu_special_values() {
    let xs = [
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        f32::MIN_POSITIVE,
        5.0,
        -5.0,
        9.0,
        -9.0,
        13.0,
        -13.0,
        80.0,
        -80.0,
        1e10,
        -1e10,
        1e30,
        -1e30,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NAN,
    ];
    for ks in tiers() {
        check_gelu(&ks, &xs, false);
        check_gelu(&ks, &xs, true);
        let mut z = [0.0f32, -0.0];
        ks.gelu_erf_f32(&mut z);
        assert!(
            z[0] == 0.0 && z[1] == 0.0,
            "tier {}: gelu(±0) = {z:?}",
            ks.tier()
        );
    }
}

fn check_softmax(ks: &KernelSet, xs: &[f32], row_len: usize) {
    let mut got = xs.to_vec();
    let mut want = xs.to_vec();
    ks.softmax_f32(&mut got, row_len).unwrap();
    reference::softmax_f32(&mut want, row_len).unwrap();
    for i in 0..xs.len() {
        let (g, w) = (got[i], want[i]);
        // 1e-6 relative; the absolute floor covers results the tiers flush to zero (< 2.3e-38).
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-6 * w.abs() + 3e-38;
        assert!(
            ok,
            "tier {} softmax row_len {row_len} at {i}: x={} got {g} want {w}",
            ks.tier(),
            xs[i]
        );
    }
    for row in got.chunks_exact(row_len) {
        if row.iter().any(|v| v.is_nan()) {
            continue;
        }
        assert!(
            row.iter().all(|&v| (0.0..=1.0).contains(&v)),
            "tier {}: softmax out of [0,1]",
            ks.tier()
        );
        let sum: f64 = row.iter().map(|&v| v as f64).sum();
        assert!(
            (sum - 1.0).abs() <= 2e-6,
            "tier {} softmax row sum {sum} (row_len {row_len})",
            ks.tier()
        );
    }
}

#[test]
fn softmax_matches_reference_over_lengths() {
    for ks in tiers() {
        for (seed, &n) in LENS.iter().enumerate() {
            for scale in [1.0, 10.0, 60.0] {
                // Three rows so row boundaries are exercised too.
                let xs = data(3 * n, seed as u64 + 100, scale);
                check_softmax(&ks, &xs, n);
            }
        }
    }
}

#[test]
fn softmax_special_values() {
    let rows: [&[f32]; 6] = [
        &[0.0, -0.0, 0.0, -0.0, 0.0],
        &[1e30, -1e30, 0.0, 3.0, -3.0],
        &[-1000.0, 0.0, -87.0, -86.0, -104.0],
        &[f32::MIN, f32::MAX, 1.0, 2.0, 3.0],
        &[5.0, 5.0, 5.0, 5.0, 5.0],
        &[f32::NEG_INFINITY, 1.0, 2.0, f32::NEG_INFINITY, 0.5],
    ];
    for ks in tiers() {
        for r in rows {
            check_softmax(&ks, r, r.len());
        }
        let mut one = [7.5f32];
        ks.softmax_f32(&mut one, 1).unwrap();
        assert_eq!(one, [1.0], "tier {}", ks.tier());
    }
}

#[test]
fn softmax_rejects_bad_rows() {
    for ks in tiers() {
        assert!(ks.softmax_f32(&mut [1.0; 6], 4).is_err());
        assert!(ks.softmax_f32(&mut [1.0; 6], 0).is_err());
    }
}

fn check_layer_norm(ks: &KernelSet, xs: &[f32], gamma: &[f32], beta: &[f32]) {
    let c = gamma.len();
    let mut got = vec![0.0; xs.len()];
    let mut want = vec![0.0; xs.len()];
    ks.layer_norm_f32(xs, gamma, beta, 1e-6, &mut got).unwrap();
    reference::layer_norm_f32(xs, gamma, beta, 1e-6, &mut want).unwrap();
    for i in 0..xs.len() {
        let (g, w) = (got[i], want[i]);
        // 1e-5 relative to the output scale |γ|·(1 + |x̂|) + |β| (an output that cancels to ~0
        // has no meaningful relative error of its own).
        let xhat = (w - beta[i % c]) / gamma[i % c];
        let scale = gamma[i % c].abs() * (1.0 + xhat.abs()) + beta[i % c].abs();
        assert!(
            (g - w).abs() <= 1e-5 * scale,
            "tier {} layer_norm c {c} at {i}: got {g} want {w}",
            ks.tier()
        );
    }
}

#[test]
fn layer_norm_matches_reference_over_lengths() {
    for ks in tiers() {
        for (seed, &c) in LENS.iter().enumerate() {
            let xs: Vec<f32> = data(3 * c, seed as u64 + 200, 4.0)
                .iter()
                .map(|v| v + 2.0)
                .collect();
            let gamma: Vec<f32> = data(c, seed as u64 + 300, 1.0)
                .iter()
                .map(|v| v + 1.5)
                .collect();
            let beta = data(c, seed as u64 + 400, 0.5);
            check_layer_norm(&ks, &xs, &gamma, &beta);
        }
    }
}

#[test]
fn layer_norm_output_is_standardised() {
    for ks in tiers() {
        for (seed, &c) in LENS.iter().enumerate().filter(|(_, c)| **c >= 2) {
            let xs: Vec<f32> = data(2 * c, seed as u64 + 500, 30.0)
                .iter()
                .map(|v| v - 100.0)
                .collect();
            let (gamma, beta) = (vec![1.0; c], vec![0.0; c]);
            let mut out = vec![0.0; xs.len()];
            ks.layer_norm_f32(&xs, &gamma, &beta, 1e-9, &mut out)
                .unwrap();
            for row in out.chunks_exact(c) {
                let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
                let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
                assert!(mean.abs() < 1e-5, "tier {} c {c}: mean {mean}", ks.tier());
                assert!(
                    (var - 1.0).abs() < 1e-4,
                    "tier {} c {c}: var {var}",
                    ks.tier()
                );
            }
        }
    }
}

#[test]
fn layer_norm_constant_row_is_beta() {
    for ks in tiers() {
        let c = 33;
        let xs = vec![-7.25f32; 2 * c];
        let gamma = data(c, 1, 2.0);
        let beta = data(c, 2, 1.0);
        let mut out = vec![1.0; xs.len()];
        ks.layer_norm_f32(&xs, &gamma, &beta, 1e-5, &mut out)
            .unwrap();
        for (i, &o) in out.iter().enumerate() {
            assert_eq!(o, beta[i % c], "tier {} at {i}", ks.tier());
        }
    }
}

#[test]
fn layer_norm_rejects_bad_shapes() {
    for ks in tiers() {
        let mut out = [0.0; 6];
        assert!(
            ks.layer_norm_f32(&[1.0; 6], &[1.0; 4], &[0.0; 4], 1e-5, &mut out)
                .is_err()
        );
        assert!(
            ks.layer_norm_f32(&[1.0; 6], &[1.0; 3], &[0.0; 2], 1e-5, &mut out)
                .is_err()
        );
        assert!(
            ks.layer_norm_f32(&[1.0; 6], &[1.0; 3], &[0.0; 3], 1e-5, &mut out[..3])
                .is_err()
        );
        assert!(ks.layer_norm_f32(&[], &[], &[], 1e-5, &mut []).is_err());
    }
}

proptest! {
    #[test]
    fn gelu_any_finite_input(xs in proptest::collection::vec(-1e4f32..1e4, 1..70)) {
        for ks in tiers() {
            check_gelu(&ks, &xs, false);
            check_gelu(&ks, &xs, true);
        }
    }

    #[test]
    fn softmax_any_rows(row_len in 1usize..40, rows in 1usize..4, scale in 0.1f32..100.0, seed in 0u64..1000) {
        let xs = data(row_len * rows, seed, scale);
        for ks in tiers() {
            check_softmax(&ks, &xs, row_len);
        }
    }
}
