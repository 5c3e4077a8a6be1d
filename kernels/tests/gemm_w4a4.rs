//! Every W4A4 kernel of the inventory against the reference, bit-exact: shapes around the tiles,
//! the largest products (15·−8, −15·−8) over K long enough to cross the NEON kernel's i16 flush
//! boundary, range checks, and a property test. Unsupported kernels print SKIPPED.

use proptest::prelude::*;
use qvit_kernels::gemm::PackedW8;
use qvit_kernels::inventory::{INVENTORY, KernelDesc, Op};
use qvit_kernels::{KernelSet, nibble, reference};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

fn kernels() -> Vec<&'static KernelDesc> {
    static REPORT: std::sync::Once = std::sync::Once::new();
    let all: Vec<_> = INVENTORY.iter().filter(|d| d.op == Op::GemmW4A4).collect();
    REPORT.call_once(|| {
        for d in all.iter().filter(|d| !d.is_supported()) {
            println!("SKIPPED {}: CPU lacks {:?}", d.name, d.features);
        }
    });
    all.into_iter().filter(|d| d.is_supported()).collect()
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    Xoshiro256PlusPlus::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn weights(n: usize, k: usize, seed: u64) -> Vec<u8> {
    let vals: Vec<i8> = bytes(n * k, seed)
        .iter()
        .map(|&b| ((b << 4) as i8) >> 4)
        .collect();
    nibble::pack_nibbles(&vals, k).unwrap()
}

fn check(d: &'static KernelDesc, a: &[u8], w: &[u8], m: usize, n: usize, k: usize, za: u8) {
    let ks = KernelSet::with_tier(d.tier).unwrap();
    let packed = PackedW8::for_w4a4(d, w, n, k).unwrap();
    let mut got = vec![i32::MIN; m * n];
    ks.gemm_w4a4_i32(a, m, za, &packed, &mut got).unwrap();
    let mut want = vec![0; m * n];
    reference::gemm_w4a4_i32(a, m, k, za, w, n, &mut want).unwrap();
    if let Some(i) = (0..m * n).find(|&i| got[i] != want[i]) {
        panic!(
            "{} m {m} n {n} k {k} za {za}: first mismatch at {}×{}: got {} want {}",
            d.name,
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
        let mut seed = 0;
        for k in [1, d.kr - 1, d.kr, d.kr + 1, 2 * d.kr + 3, 64, 197] {
            for m in [1, d.mr - 1, d.mr, d.mr + 1, 11] {
                for n in [1, d.nr - 1, d.nr, d.nr + 1, 29] {
                    seed += 1;
                    let a: Vec<u8> = bytes(m * k, seed).iter().map(|b| b & 15).collect();
                    check(d, &a, &weights(n, k, seed + 99), m, n, k, (seed % 16) as u8);
                }
            }
        }
    }
}

#[test]
fn largest_products_across_flush_boundaries() {
    for d in kernels() {
        let (m, n) = (d.mr + 1, d.nr + 1);
        for k in [2048, 2048 + 16, 3 * 2048 + 5] {
            for (av, za, wv) in [(15u8, 0u8, -8i8), (0, 15, -8), (15, 0, 7), (0, 15, 7)] {
                let w = nibble::pack_nibbles(&vec![wv; n * k], k).unwrap();
                check(d, &vec![av; m * k], &w, m, n, k, za);
            }
        }
    }
}

#[test]
fn ranges_and_packing_are_checked() {
    for d in kernels() {
        let ks = KernelSet::with_tier(d.tier).unwrap();
        let w = PackedW8::for_w4a4(d, &[0x21, 0x43], 2, 2).unwrap();
        let mut out = [0; 2];
        assert!(
            ks.gemm_w4a4_i32(&[1, 16], 1, 0, &w, &mut out).is_err(),
            "{}: 16 accepted",
            d.name
        );
        assert!(
            ks.gemm_w4a4_i32(&[1, 2], 1, 16, &w, &mut out).is_err(),
            "{}: zero point 16",
            d.name
        );
        assert!(ks.gemm_w4a4_i32(&[1, 2], 1, 3, &w, &mut out).is_ok());
        assert!(
            ks.gemm_w8a8_i32(&[1, 2], 1, 3, &w, &mut out).is_err(),
            "{}: W8A8 ran W4A4 weights",
            d.name
        );
        assert!(
            PackedW8::new(d, &[1, 2], 1, 2).is_err(),
            "{}: W8A8 packing for a W4A4 kernel",
            d.name
        );
    }
    assert!(reference::gemm_w4a4_i32(&[16], 1, 1, 0, &[0], 1, &mut [0]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn any_shape_is_bit_exact(m in 1usize..12, n in 1usize..40, k in 1usize..90, za in 0u8..16, seed in any::<u64>()) {
        for d in kernels() {
            let a: Vec<u8> = bytes(m * k, seed).iter().map(|b| b & 15).collect();
            check(d, &a, &weights(n, k, seed ^ 0x77), m, n, k, za);
        }
    }
}
