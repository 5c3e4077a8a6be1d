//! The log2 × int8 attention product against its definition in exact arithmetic.

use proptest::prelude::*;
use qvit_kernels::attn::{LOG2_FRAC_BITS, matmul_log2_i32};

/// The contract evaluated in f64 with real powers of two.
fn oracle(levels: &[u8], m: usize, k: usize, b: &[i8], n: usize) -> Vec<i64> {
    let mut out = vec![0i64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for t in 0..k {
                let q = levels[i * k + t] as i32;
                if q <= LOG2_FRAC_BITS as i32 {
                    s += 2f64.powi(LOG2_FRAC_BITS as i32 - q) * b[t * n + j] as f64;
                }
            }
            out[i * n + j] = s as i64;
        }
    }
    out
}

proptest! {
    #[test]
    fn equals_exact_sum(m in 1usize..9, k in 0usize..70, n in 1usize..40, seed in any::<u64>()) {
        let mut s = seed | 1;
        let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
        let levels: Vec<u8> = (0..m * k).map(|_| (next() % 20) as u8).collect();
        let b: Vec<i8> = (0..k * n).map(|_| next() as i8).collect();
        let mut out = vec![7i32; m * n];
        matmul_log2_i32(&levels, m, k, &b, n, &mut out).unwrap();
        let want = oracle(&levels, m, k, &b, n);
        for (o, w) in out.iter().zip(&want) {
            prop_assert_eq!(*o as i64, (*w).clamp(i32::MIN as i64, i32::MAX as i64));
        }
    }
}

#[test]
fn extreme_rows_take_the_wide_path_and_saturate() {
    // 2^17 terms of 2^15·(−128) = −2^39 in total: beyond i32, so the result saturates.
    let k = 1 << 17;
    let levels = vec![0u8; k];
    let b = vec![i8::MIN; k];
    let mut out = [0i32; 1];
    matmul_log2_i32(&levels, 1, k, &b, 1, &mut out).unwrap();
    assert_eq!(out[0], i32::MIN);
    // Just below the 32-bit bound the fast path is exact.
    let k = 512;
    let levels = vec![0u8; k];
    let b = vec![127i8; k];
    matmul_log2_i32(&levels, 1, k, &b, 1, &mut out).unwrap();
    assert_eq!(out[0] as i64, 512 * 127 * (1 << 15));
}

#[test]
fn rejects_mismatched_lengths() {
    let mut out = [0i32; 4];
    assert!(matmul_log2_i32(&[0; 6], 2, 3, &[0; 6], 2, &mut out).is_ok());
    assert!(matmul_log2_i32(&[0; 5], 2, 3, &[0; 6], 2, &mut out).is_err());
    assert!(matmul_log2_i32(&[0; 6], 2, 3, &[0; 5], 2, &mut out).is_err());
    assert!(matmul_log2_i32(&[0; 6], 2, 3, &[0; 6], 2, &mut out[..3]).is_err());
}
