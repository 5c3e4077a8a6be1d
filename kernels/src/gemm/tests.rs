//! Driver paths the public entry points do not reach: the tile micro-kernel of kernels that
//! have their own whole-GEMM loop, and that loop's input checks.

use super::*;
use crate::inventory::INVENTORY;

fn values(len: usize, seed: u32, lo: i32) -> Vec<i8> {
    use rand_distr::{Distribution, Uniform};
    use rand_xoshiro::Xoshiro256PlusPlus;
    use rand_xoshiro::rand_core::SeedableRng;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(u64::from(seed));
    let range = Uniform::new_inclusive(lo as i8, i8::MAX).unwrap();
    (0..len).map(|_| range.sample(&mut rng)).collect()
}

/// Kernels with their own whole-GEMM loop still ship a tile micro-kernel (the inventory
/// contract); the public entry points never reach it, so check it here against the reference.
#[test]
fn tile_path_of_packed_kernels_is_bit_exact() {
    let cpu = Cpu::detect();
    let kernels = INVENTORY
        .iter()
        .filter(|d| d.op == Op::GemmW8A8 && d.packed.is_some() && d.supported_by(&cpu));
    for d in kernels {
        for (m, n, k) in [(1, 1, 1), (d.mr + 1, d.nr + 3, 4 * d.kr + 1), (13, 37, 197)] {
            let a = values(m * k, (m * n + k) as u32, -128);
            let w = values(n * k, (m + n * k) as u32, -127);
            let za = -3i8;
            let packed = PackedW8::new(d, &w, n, k).unwrap();
            let mut ap = Vec::new();
            pack_panels_into(&mut ap, &a, m, k, d.mr, d.kr, d.a_offset != 0);
            let za_fold = za as i32 + d.a_offset;
            let fold: Vec<i32> = packed.col_sums.iter().map(|&c| za_fold * c).collect();
            let kb = k_blocks(k, d.kr);
            let mut got = vec![i32::MIN; m * n];
            run_tiles(&cpu, &ap, m, &packed, kb, &fold, &mut got).unwrap();
            let mut want = vec![0; m * n];
            crate::reference::gemm_w8a8_i32(&a, m, k, za, &w, n, &mut want).unwrap();
            assert_eq!(got, want, "{} m {m} n {n} k {k}", d.name);
        }
    }
}

#[test]
fn packed_entries_reject_bad_lengths() {
    let cpu = Cpu::detect();
    let kernels = INVENTORY
        .iter()
        .filter(|d| d.packed.is_some() && d.supported_by(&cpu));
    for d in kernels {
        let run = d.packed.unwrap();
        let (m, n, kb) = (3usize, 5usize, 2);
        let ap = vec![0i8; m.div_ceil(d.mr) * d.mr * d.kr * kb];
        let b = vec![0i8; n.div_ceil(d.nr) * d.nr * d.kr * kb];
        let (fold, mut out) = (vec![0; n], vec![0; m * n]);
        assert!(run(&cpu, &ap, m, &b, n, kb, &fold, &mut out).is_ok());
        assert!(run(&cpu, &ap[1..], m, &b, n, kb, &fold, &mut out).is_err());
        assert!(run(&cpu, &ap, m, &b[1..], n, kb, &fold, &mut out).is_err());
        assert!(run(&cpu, &ap, m, &b, n, kb, &fold[1..], &mut out).is_err());
        assert!(run(&cpu, &ap, m, &b, n, kb, &fold, &mut out[1..]).is_err());
        assert!(run(&cpu, &ap, m, &b, n, usize::MAX, &fold, &mut out).is_err());
        assert!(run(&cpu, &[], 0, &[], 0, 0, &[], &mut []).is_err());
    }
}
