//! Vectorised activation quantization on every tier against the definition evaluated with
//! `round_ties_even` (the libm-free rounding must agree with it everywhere, ties included).

use qvit_kernels::{KernelSet, Tier};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

fn oracle(x: f32, inv: f32, zero: i32, lo: i32, hi: i32) -> i8 {
    let y = x * inv;
    if y.is_nan() {
        return zero.clamp(lo, hi) as i8;
    }
    let r = y.clamp(-512.0, 512.0).round_ties_even() as i32;
    (r + zero).clamp(lo, hi) as i8
}

#[test]
fn levels_equal_round_ties_even_on_every_tier() {
    let mut x: Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.25).collect(); // every tie
    x.extend((-2400..2400).map(|i| i as f32 * 0.5)); // past ±512 with every zero point
    x.extend([
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e30,
        -1e30,
        0.0,
        -0.0,
        1e-40,
    ]);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x2545_f491_4f6c_dd1d);
    for _ in 0..5000 {
        let s = rng.next_u64();
        x.push(f32::from_bits(s as u32 & 0x43ff_ffff) * if s >> 63 == 1 { -1.0 } else { 1.0 });
    }
    for (inv, zero, lo, hi) in [
        (1.0, 0, -128, 127),
        (0.37, -5, -128, 127),
        (3.0, 7, -8, 7),
        (0.01, -128, -128, -113),
        // The edges of the tiers' saturating paths (|zero| ≤ 256) and beyond them.
        (1.0, 256, -128, 127),
        (0.5, -256, -128, 127),
        (1.0, 257, -128, 127),
        (2.0, -300, 0, 15),
        (0.75, 1000, -128, 127),
    ] {
        let want: Vec<i8> = x.iter().map(|&v| oracle(v, inv, zero, lo, hi)).collect();
        for tier in Tier::supported() {
            let ks = KernelSet::with_tier(tier).unwrap();
            let mut got = vec![0i8; x.len()];
            ks.levels_i8(&x, inv, zero, (lo as i8, hi as i8), &mut got)
                .unwrap();
            assert_eq!(got, want, "tier {} inv {inv} zero {zero}", tier.name());
        }
    }
    let ks = KernelSet::detect();
    assert!(ks.levels_i8(&[1.0], 1.0, 0, (5, 4), &mut [0]).is_err());
    assert!(
        ks.levels_i8(&[1.0, 2.0], 1.0, 0, (-1, 1), &mut [0])
            .is_err()
    );
}
