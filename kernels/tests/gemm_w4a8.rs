//! W4A8 through every W8A8 kernel of the inventory, bit-exact against the reference that unpacks
//! nibbles on the fly; the nibble helpers round-trip. Unsupported kernels print SKIPPED.

use proptest::prelude::*;
use qvit_kernels::gemm::PackedW8;
use qvit_kernels::inventory::{INVENTORY, KernelDesc, Op};
use qvit_kernels::{KernelSet, nibble, reference};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

fn kernels() -> Vec<&'static KernelDesc> {
    static REPORT: std::sync::Once = std::sync::Once::new();
    let all: Vec<_> = INVENTORY.iter().filter(|d| d.op == Op::GemmW8A8).collect();
    REPORT.call_once(|| {
        for d in all.iter().filter(|d| !d.is_supported()) {
            println!("SKIPPED {} (W4A8): CPU lacks {:?}", d.name, d.features);
        }
    });
    all.into_iter().filter(|d| d.is_supported()).collect()
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    Xoshiro256PlusPlus::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Nibble rows with the unused high nibble of an odd row cleared, as the format requires.
fn nibble_rows(n: usize, k: usize, seed: u64) -> Vec<u8> {
    let vals: Vec<i8> = bytes(n * k, seed)
        .iter()
        .map(|&b| ((b << 4) as i8) >> 4)
        .collect();
    nibble::pack_nibbles(&vals, k.max(1)).unwrap_or_default()
}

fn check(d: &'static KernelDesc, a: &[i8], w: &[u8], m: usize, n: usize, k: usize, za: i8) {
    let ks = KernelSet::with_tier(d.tier).unwrap();
    let packed = PackedW8::from_nibbles(d, w, n, k).unwrap();
    let mut got = vec![i32::MIN; m * n];
    ks.gemm_w8a8_i32(a, m, za, &packed, &mut got).unwrap();
    let mut want = vec![0; m * n];
    reference::gemm_w4a8_i32(a, m, k, za, w, n, &mut want).unwrap();
    assert_eq!(got, want, "{} m {m} n {n} k {k} za {za}", d.name);
}

#[test]
fn shape_matrix_is_bit_exact() {
    for d in kernels() {
        let mut seed = 0;
        for k in [1, 2, d.kr - 1, d.kr, d.kr + 1, 33, 64, 65] {
            for m in [1, d.mr - 1, d.mr + 1, 9] {
                for n in [1, d.nr - 1, d.nr + 1, 23] {
                    seed += 1;
                    let a: Vec<i8> = bytes(m * k, seed).iter().map(|&b| b as i8).collect();
                    check(
                        d,
                        &a,
                        &nibble_rows(n, k, seed + 50),
                        m,
                        n,
                        k,
                        (seed as i8).wrapping_mul(37),
                    );
                }
            }
        }
    }
}

#[test]
fn extreme_nibbles_are_bit_exact() {
    for d in kernels() {
        let (m, n, k) = (d.mr + 1, d.nr + 1, 301usize);
        // 0xFF = two −1 nibbles (all ones), 0x88 = two −8, 0x77 = two +7.
        for (byte, av, za) in [
            (0xFFu8, i8::MIN, 127i8),
            (0x88, i8::MIN, 127),
            (0x77, 127, i8::MIN),
            (0x88, 127, i8::MIN),
        ] {
            let mut w = vec![byte; n * k.div_ceil(2)];
            for row in w.chunks_mut(k.div_ceil(2)) {
                *row.last_mut().unwrap() &= 0x0F;
            }
            check(d, &vec![av; m * k], &w, m, n, k, za);
        }
    }
}

#[test]
fn nibbles_round_trip_and_check_range() {
    let vals: Vec<i8> = (-8..=7).chain(-8..=6).collect();
    for k in [1, 2, 3, 5, 31] {
        let rows: Vec<i8> = vals.iter().cycle().take(k * 4).copied().collect();
        let packed = nibble::pack_nibbles(&rows, k).unwrap();
        assert_eq!(packed.len(), 4 * nibble::row_bytes(k));
        assert_eq!(nibble::unpack_nibbles(&packed, 4, k).unwrap(), rows);
    }
    assert_eq!(
        nibble::pack_nibbles(&[1, -2], 2).unwrap(),
        vec![0xE1],
        "low nibble holds the first value"
    );
    assert!(nibble::pack_nibbles(&[8], 1).is_err());
    assert!(nibble::pack_nibbles(&[-9], 1).is_err());
    assert!(nibble::unpack_nibbles(&[0; 3], 2, 3).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn any_shape_is_bit_exact(m in 1usize..10, n in 1usize..40, k in 1usize..70, za in any::<i8>(), seed in any::<u64>()) {
        for d in kernels() {
            let a: Vec<i8> = bytes(m * k, seed).iter().map(|&b| b as i8).collect();
            check(d, &a, &nibble_rows(n, k, seed ^ 0x55), m, n, k, za);
        }
    }
}
