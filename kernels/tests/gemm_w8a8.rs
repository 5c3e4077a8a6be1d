//! Every W8A8 kernel of the inventory against the reference GEMM, bit-exact: K below, at and
//! above the block size, ragged M and N around the tile, primes, extremes (i8::MIN activations,
//! ±127 weights, extreme zero points) and a property test. Kernels this CPU cannot run are
//! printed as SKIPPED, never passed silently.

use proptest::prelude::*;
use qvit_kernels::gemm::{MAX_K, PackedW8};
use qvit_kernels::inventory::{INVENTORY, KernelDesc, Op};
use qvit_kernels::{KernelSet, reference};
use rand_distr::{Distribution, Uniform};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

/// The W8A8 kernels this CPU runs; the others are printed once as skipped.
fn kernels() -> Vec<&'static KernelDesc> {
    static REPORT: std::sync::Once = std::sync::Once::new();
    let all: Vec<_> = INVENTORY.iter().filter(|d| d.op == Op::GemmW8A8).collect();
    REPORT.call_once(|| {
        for d in all.iter().filter(|d| !d.is_supported()) {
            println!("SKIPPED {}: CPU lacks {:?}", d.name, d.features);
        }
    });
    all.into_iter().filter(|d| d.is_supported()).collect()
}

fn rand_i8(n: usize, seed: u64, lo: i8) -> Vec<i8> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let range = Uniform::new_inclusive(lo, i8::MAX).unwrap();
    (0..n).map(|_| range.sample(&mut rng)).collect()
}

fn check(d: &'static KernelDesc, a: &[i8], w: &[i8], m: usize, n: usize, k: usize, za: i8) {
    let ks = KernelSet::with_tier(d.tier).unwrap();
    let packed = PackedW8::new(d, w, n, k).unwrap();
    let mut got = vec![i32::MIN; m * n];
    ks.gemm_w8a8_i32(a, m, za, &packed, &mut got).unwrap();
    let mut want = vec![0; m * n];
    reference::gemm_w8a8_i32(a, m, k, za, w, n, &mut want).unwrap();
    if let Some(i) = (0..m * n).find(|&i| got[i] != want[i]) {
        panic!(
            "{} (mr {} nr {} kr {}) m {m} n {n} k {k} za {za}: first mismatch at row {} col {}: got {} want {}",
            d.name,
            d.mr,
            d.nr,
            d.kr,
            i / n,
            i % n,
            got[i],
            want[i]
        );
    }
}

#[test]
fn shape_matrix_is_bit_exact() {
    for d in kernels() {
        let ks: Vec<usize> = [
            0,
            1,
            d.kr - 1,
            d.kr,
            d.kr + 1,
            2 * d.kr,
            3 * d.kr + 1,
            31,
            64,
            100,
            197,
        ]
        .into_iter()
        .filter(|&k| k != 0 || d.kr > 1)
        .collect();
        let ms = [1, 2, d.mr - 1, d.mr, d.mr + 1, 2 * d.mr + 1, 13];
        let ns = [1, 2, d.nr - 1, d.nr, d.nr + 1, 2 * d.nr + 1, 37];
        let mut seed = 0;
        for &k in &ks {
            for &m in ms.iter().filter(|&&m| m > 0) {
                for &n in ns.iter().filter(|&&n| n > 0) {
                    seed += 1;
                    let a = rand_i8(m * k, seed, i8::MIN);
                    let w = rand_i8(n * k, seed + 7_000, -127);
                    let za = rand_i8(1, seed + 9_000, i8::MIN)[0];
                    check(d, &a, &w, m, n, k, za);
                }
            }
        }
    }
}

#[test]
fn k_zero_gives_zero() {
    for d in kernels() {
        check(d, &[], &[], 3, 5, 0, 17);
    }
}

#[test]
fn extreme_values_are_bit_exact() {
    for d in kernels() {
        for (av, wv, za) in [
            (i8::MIN, 127, 127),
            (i8::MIN, -127, 127),
            (127, -127, i8::MIN),
            (i8::MIN, -127, i8::MIN),
            (0, 127, 0),
        ] {
            for k in [d.kr, 1000, 4099] {
                let (m, n) = (d.mr + 1, d.nr + 3);
                check(d, &vec![av; m * k], &vec![wv; n * k], m, n, k, za);
            }
        }
    }
}

#[test]
fn largest_k_does_not_overflow() {
    for d in kernels() {
        let k = MAX_K;
        check(d, &vec![i8::MIN; k], &vec![-127; 2 * k], 1, 2, k, 127);
    }
}

#[test]
fn vit_head_shape_is_bit_exact() {
    // Per-head attention-sized product 197×64 by 197 outputs.
    for d in kernels() {
        let (m, k, n) = (197, 64, 197);
        check(
            d,
            &rand_i8(m * k, 1, i8::MIN),
            &rand_i8(n * k, 2, -127),
            m,
            n,
            k,
            -3,
        );
    }
}

#[test]
fn packing_rejects_bad_weights() {
    for d in INVENTORY.iter().filter(|d| d.op == Op::GemmW8A8) {
        assert!(
            PackedW8::new(d, &[1, 2, i8::MIN, 4], 2, 2).is_err(),
            "{}: -128 accepted",
            d.name
        );
        assert!(
            PackedW8::new(d, &[1, 2, 3], 2, 2).is_err(),
            "{}: short weights accepted",
            d.name
        );
        assert!(
            PackedW8::new(d, &vec![0; MAX_K + 1], 1, MAX_K + 1).is_err(),
            "{}: K too large",
            d.name
        );
    }
}

#[test]
fn gemm_rejects_bad_lengths() {
    for d in kernels() {
        let ks = KernelSet::with_tier(d.tier).unwrap();
        let w = PackedW8::new(d, &[1; 6], 2, 3).unwrap();
        assert!(ks.gemm_w8a8_i32(&[1; 5], 2, 0, &w, &mut [0; 4]).is_err());
        assert!(ks.gemm_w8a8_i32(&[1; 6], 2, 0, &w, &mut [0; 3]).is_err());
        assert!(ks.gemm_w8a8_i32(&[1; 6], 2, 0, &w, &mut [0; 4]).is_ok());
    }
}

#[test]
fn dequantizing_epilogue_matches_closed_form() {
    for d in kernels() {
        let ks = KernelSet::with_tier(d.tier).unwrap();
        let (m, n, k) = (7, 11, 45);
        let a = rand_i8(m * k, 3, i8::MIN);
        let w = rand_i8(n * k, 4, -127);
        let packed = PackedW8::new(d, &w, n, k).unwrap();
        let w_scales: Vec<f32> = (0..n).map(|j| 0.001 * (j + 1) as f32).collect();
        let bias: Vec<f32> = (0..n).map(|j| j as f32 - 5.0).collect();
        let mut out = vec![0.0; m * n];
        ks.gemm_w8a8_f32(&a, m, 5, 0.02, &packed, &w_scales, Some(&bias), &mut out)
            .unwrap();
        for i in 0..m {
            for j in 0..n {
                let exact: f64 = (0..k)
                    .map(|p| (a[i * k + p] as f64 - 5.0) * w[j * k + p] as f64)
                    .sum::<f64>()
                    * 0.02
                    * w_scales[j] as f64
                    + bias[j] as f64;
                let got = out[i * n + j] as f64;
                assert!(
                    (got - exact).abs() <= 1e-5 * exact.abs().max(1.0),
                    "{}: {got} vs {exact}",
                    d.name
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_shape_is_bit_exact(m in 1usize..13, n in 1usize..49, k in 0usize..70, za in any::<i8>(), seed in any::<u64>()) {
        for d in kernels() {
            let a = rand_i8(m * k, seed, i8::MIN);
            let w = rand_i8(n * k, seed ^ 0xABCD, -127);
            check(d, &a, &w, m, n, k, za);
        }
    }
}

#[test]
fn reused_scratch_gives_the_same_results() {
    // One scratch across shrinking and growing shapes: stale bytes must never leak into a result.
    let mut scratch = qvit_kernels::gemm::Scratch::default();
    for d in kernels() {
        let ks = KernelSet::with_tier(d.tier).unwrap();
        for (i, (m, n, k)) in [(13, 37, 100), (2, 3, 5), (9, 17, 64), (1, 1, 1)]
            .into_iter()
            .enumerate()
        {
            let a = rand_i8(m * k, 40 + i as u64, i8::MIN);
            let w = rand_i8(n * k, 50 + i as u64, -127);
            let packed = PackedW8::new(d, &w, n, k).unwrap();
            let mut got = vec![0; m * n];
            ks.gemm_w8a8_i32_with(&mut scratch, &a, m, 7, &packed, &mut got)
                .unwrap();
            let mut want = vec![0; m * n];
            reference::gemm_w8a8_i32(&a, m, k, 7, &w, n, &mut want).unwrap();
            assert_eq!(got, want, "{} m {m} n {n} k {k}", d.name);
            let scales = vec![0.5; n];
            let mut f_with = vec![0.0; m * n];
            let mut f_plain = vec![0.0; m * n];
            ks.gemm_w8a8_f32_with(
                &mut scratch,
                &a,
                m,
                7,
                0.25,
                &packed,
                &scales,
                None,
                &mut f_with,
            )
            .unwrap();
            ks.gemm_w8a8_f32(&a, m, 7, 0.25, &packed, &scales, None, &mut f_plain)
                .unwrap();
            assert_eq!(f_with, f_plain, "{}", d.name);
        }
    }
}
