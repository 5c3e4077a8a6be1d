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
            run_tiles(&cpu, d, &ap, m, &packed.data, n, kb, &fold, &mut got, n).unwrap();
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
        assert!(run(&cpu, &ap, m, &b, n, kb, &fold, &mut out, n).is_ok());
        assert!(run(&cpu, &ap[1..], m, &b, n, kb, &fold, &mut out, n).is_err());
        assert!(run(&cpu, &ap, m, &b[1..], n, kb, &fold, &mut out, n).is_err());
        assert!(run(&cpu, &ap, m, &b, n, kb, &fold[1..], &mut out, n).is_err());
        assert!(run(&cpu, &ap, m, &b, n, kb, &fold, &mut out[1..], n).is_err());
        assert!(run(&cpu, &ap, m, &b, n, usize::MAX, &fold, &mut out, n).is_err());
        assert!(run(&cpu, &[], 0, &[], 0, 0, &[], &mut [], 0).is_err());
        // Rows `ldo` apart: the output must reach (m − 1)·ldo + n values, and ldo ≥ n.
        let ldo = n + 2;
        let mut wide = vec![0; (m - 1) * ldo + n];
        assert!(run(&cpu, &ap, m, &b, n, kb, &fold, &mut wide, ldo).is_ok());
        assert!(run(&cpu, &ap, m, &b, n, kb, &fold, &mut wide[1..], ldo).is_err());
        assert!(run(&cpu, &ap, m, &b, n, kb, &fold, &mut out, n - 1).is_err());
    }
}

/// Nibble weights expanded a few panels at a time give the reference product whatever the group
/// size: one panel per group, two, or all of them (the default budget at these sizes).
#[test]
fn nibble_panels_expand_in_groups_bit_exact() {
    let cpu = Cpu::detect();
    for d in INVENTORY.iter().filter(|d| d.supported_by(&cpu)) {
        // W4A4 kernels take activations with the zero point already subtracted, in [−15, 15].
        let w4a4 = d.op == Op::GemmW4A4;
        let shapes = [
            (1, 1, 1),
            (d.mr + 1, 3 * d.nr + 1, 2 * d.kr + 1),
            (9, 2 * d.nr, 4 * d.kr),
        ];
        for (i, (m, n, k)) in shapes.into_iter().enumerate() {
            let a: Vec<i8> = values(m * k, 7 + i as u32, -128)
                .into_iter()
                .map(|v| if w4a4 { v % 16 } else { v })
                .collect();
            let w: Vec<i8> = values(n * k, 70 + i as u32, -128)
                .into_iter()
                .map(|v| (v << 4) >> 4)
                .collect();
            let nib = crate::nibble::pack_nibbles(&w, k).unwrap();
            let packed = PackedW8::pack_nibbles(d, &nib, n, k).unwrap();
            assert!(packed.is_nibbles());
            let g = ExpandGroups::new(d, k, n, EXPAND_BYTES);
            assert_eq!(packed.data.len(), g.panels * g.half, "{} resident", d.name);
            let mut ap = Vec::new();
            pack_panels_into(&mut ap, &a, m, k, d.mr, d.kr, d.a_offset != 0);
            let fold: Vec<i32> = packed.col_sums.iter().map(|&c| d.a_offset * c).collect();
            let mut want = vec![0; m * n];
            crate::reference::gemm_w8a8_i32(&a, m, k, 0, &w, n, &mut want).unwrap();
            for budget in [0, 2 * g.panel, EXPAND_BYTES] {
                let groups = ExpandGroups::new(d, k, n, budget);
                let mut got = vec![i32::MIN; m * n];
                let mut wbuf = Vec::new();
                run_expanded(&cpu, &ap, m, &packed, groups, &fold, &mut wbuf, &mut got).unwrap();
                assert_eq!(got, want, "{} m {m} n {n} k {k} budget {budget}", d.name);
            }
        }
    }
}
