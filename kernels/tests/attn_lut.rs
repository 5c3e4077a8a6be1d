//! The table-driven attention product against its definition in exact arithmetic.

use proptest::prelude::*;
use qvit_kernels::attn::matmul_lut_i32;
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

fn oracle(levels: &[u8], m: usize, k: usize, lut: &[i32], b: &[i8], n: usize) -> Vec<i64> {
    let mut out = vec![0i64; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k)
                .map(|t| lut[levels[i * k + t] as usize] as i64 * b[t * n + j] as i64)
                .sum();
        }
    }
    out
}

/// Powers of two from 2^15 down, then zeros: the 4-bit log2 table.
fn shift_table() -> Vec<i32> {
    (0..20)
        .map(|q| if q <= 15 { 1 << (15 - q) } else { 0 })
        .collect()
}

proptest! {
    #[test]
    fn equals_exact_sum(m in 1usize..9, k in 0usize..70, n in 1usize..40, seed in any::<u64>(), big in any::<bool>()) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut next = || rng.next_u64();
        let lut: Vec<i32> = if big {
            (0..20).map(|_| next() as i32).collect()
        } else {
            shift_table()
        };
        let levels: Vec<u8> = (0..m * k).map(|_| (next() % 20) as u8).collect();
        let b: Vec<i8> = (0..k * n).map(|_| next() as i8).collect();
        let mut out = vec![7i32; m * n];
        matmul_lut_i32(&levels, m, k, &lut, &b, n, &mut out).unwrap();
        let want = oracle(&levels, m, k, &lut, &b, n);
        for (o, w) in out.iter().zip(&want) {
            prop_assert_eq!(*o as i64, (*w).clamp(i32::MIN as i64, i32::MAX as i64));
        }
    }
}

#[test]
fn extreme_rows_take_the_wide_path_and_saturate() {
    let lut = shift_table();
    let k = 1 << 17;
    let mut out = [0i32; 1];
    matmul_lut_i32(&vec![0u8; k], 1, k, &lut, &vec![i8::MIN; k], 1, &mut out).unwrap();
    assert_eq!(out[0], i32::MIN);
    let k = 512;
    matmul_lut_i32(&vec![0u8; k], 1, k, &lut, &vec![127i8; k], 1, &mut out).unwrap();
    assert_eq!(out[0] as i64, 512 * 127 * (1 << 15));
}

#[test]
fn rejects_mismatched_lengths_and_levels_outside_the_table() {
    let lut = shift_table();
    let mut out = [0i32; 4];
    assert!(matmul_lut_i32(&[0; 6], 2, 3, &lut, &[0; 6], 2, &mut out).is_ok());
    assert!(matmul_lut_i32(&[0; 5], 2, 3, &lut, &[0; 6], 2, &mut out).is_err());
    assert!(matmul_lut_i32(&[0; 6], 2, 3, &lut, &[0; 5], 2, &mut out).is_err());
    assert!(matmul_lut_i32(&[0; 6], 2, 3, &lut, &[0; 6], 2, &mut out[..3]).is_err());
    assert!(matmul_lut_i32(&[20; 6], 2, 3, &lut, &[0; 6], 2, &mut out).is_err());
}

#[test]
fn every_tier_equals_the_portable_build() {
    use qvit_kernels::{KernelSet, Tier};
    let (m, k, n) = (13, 197, 64);
    let lut: Vec<i32> = (0..256)
        .map(|q| (32768.0 * 2f64.powf(-q as f64 / 16.0)).round() as i32)
        .collect();
    let levels: Vec<u8> = (0..m * k).map(|i| (i * 37 % 256) as u8).collect();
    let b: Vec<i8> = (0..k * n).map(|i| (i * 91 % 255) as i8).collect();
    let mut want = vec![0i32; m * n];
    matmul_lut_i32(&levels, m, k, &lut, &b, n, &mut want).unwrap();
    for tier in Tier::supported() {
        let ks = KernelSet::with_tier(tier).unwrap();
        let mut got = vec![1i32; m * n];
        ks.matmul_lut_i32(&levels, m, k, &lut, &b, n, &mut got)
            .unwrap();
        assert_eq!(got, want, "tier {}", tier.name());
        eprintln!("matmul_lut_i32: tier {} checked", tier.name());
    }
}
