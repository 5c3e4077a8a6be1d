//! The log-domain level split on every tier against the scalar reference, bit for bit, and the
//! reference against the definition evaluated in f64 (away from the irrational half points).

use qvit_kernels::log2::{MANTISSA_THRESHOLDS, level, level_value, log2_split_i8};
use qvit_kernels::{KernelSet, Tier};

/// Probabilities that stress every branch: a geometric sweep, mantissas at and around every
/// threshold at several exponents, and the special values.
fn inputs() -> Vec<f32> {
    let mut x = Vec::new();
    let mut v = 1e-12f32;
    while v < 8.0 {
        x.push(v);
        v *= 1.0071;
    }
    for &t in &MANTISSA_THRESHOLDS {
        for e in [100u32, 120, 126, 127, 128] {
            for d in [-1i64, 0, 1] {
                let m = (t as i64 + d).clamp(0, 0x7f_ffff) as u32;
                x.push(f32::from_bits(e << 23 | m));
            }
        }
    }
    x.extend([
        0.0,
        -0.0,
        -0.5,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        f32::MIN_POSITIVE / 2.0,
        1.0,
        0.5,
        1.0e30,
    ]);
    x
}

#[test]
fn every_tier_equals_the_reference() {
    let x = inputs();
    let n = x.len();
    for (m, max) in [
        (1, 3),
        (1, 7),
        (1, 15),
        (2, 31),
        (4, 63),
        (8, 127),
        (16, 255),
        (16, 200),
    ] {
        for inv in [1.0f32, 1.0 / 0.9, 3.7] {
            let (mut wh, mut wl) = (vec![0i8; n], vec![0i8; n]);
            log2_split_i8(&x, inv, m, max, &mut wh, &mut wl).unwrap();
            for tier in Tier::supported() {
                let ks = KernelSet::with_tier(tier).unwrap();
                let (mut h, mut l) = (vec![0i8; n], vec![0i8; n]);
                ks.log2_split_i8(&x, inv, m, max, &mut h, &mut l).unwrap();
                for i in 0..n {
                    assert_eq!(
                        (h[i], l[i]),
                        (wh[i], wl[i]),
                        "tier {tier} m {m} max {max} inv {inv}: x = {:e} ({:#x})",
                        x[i],
                        x[i].to_bits()
                    );
                }
            }
        }
    }
}

#[test]
fn reference_follows_the_definition() {
    for m in [1u32, 2, 4, 8, 16] {
        let max = 16 * m as i32 - 1;
        for &x in &inputs() {
            let t = -(m as f64) * (x as f64).log2();
            let want = if x.is_nan() || x < f32::MIN_POSITIVE {
                max
            } else if (t.fract().abs() - 0.5).abs() < 1e-6 {
                continue; // within rounding of a half point: f32 vs f64 may differ
            } else {
                t.round().clamp(0.0, max as f64) as i32
            };
            assert_eq!(level(x, m, max), want, "x {x:e} m {m}");
        }
        for q in 0..=max as u32 {
            let exact = 2f64.powf(15.0 - q as f64 / m as f64);
            let got = level_value(q, m) as f64;
            assert!((got - exact).abs() <= 0.5, "q {q} m {m}: {got} vs {exact}");
        }
        // The split bytes reassemble P exactly.
        let (mut h, mut l) = ([0i8; 1], [0i8; 1]);
        for &x in &inputs() {
            log2_split_i8(&[x], 1.0, m, max, &mut h, &mut l).unwrap();
            let p = 256 * (h[0] as i32 + 64) + (l[0] as i32 + 128);
            assert_eq!(p, level_value(level(x, m, max) as u32, m), "x {x:e}");
        }
    }
}

#[test]
fn bad_parameters_are_errors() {
    let ks = KernelSet::detect();
    let (mut h, mut l) = ([0i8; 2], [0i8; 2]);
    assert!(
        ks.log2_split_i8(&[0.5; 2], 1.0, 3, 7, &mut h, &mut l)
            .is_err()
    );
    assert!(
        ks.log2_split_i8(&[0.5; 2], 1.0, 1, 16, &mut h, &mut l)
            .is_err()
    );
    assert!(
        ks.log2_split_i8(&[0.5; 3], 1.0, 16, 255, &mut h, &mut l)
            .is_err()
    );
}
