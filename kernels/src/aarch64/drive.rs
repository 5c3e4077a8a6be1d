//! The whole-GEMM loop the aarch64 micro-kernels share. Per tile, the generic driver
//! (`gemm::run_tiles`) makes an indirect call that checks lengths and returns a `Result`, the
//! kernel reduces and stores a tile to memory, and the driver reloads it to subtract the fold:
//! under qemu that was about 100 instructions per 4×4 tile, a quarter of the tile's own work at
//! DeiT's K = 192. Here the tile function is inlined into the loop and its rows, held as vectors
//! of four channels, have the fold subtracted in registers and go straight to `out`.

use std::arch::aarch64::*;

/// The panel geometry of one kernel: `MR` rows, `4·V` channels, `kr` bytes per k block.
pub(crate) struct Panels {
    pub kr: usize,
    pub kb: usize,
}

/// Stores `Σ a·w − fold` of every (weight panel, activation panel) pair into the `m × n` `out`
/// whose rows start `ldo` values apart (`n` = `fold.len()` channels). `tile(a_panel, b_panel)` returns the panel product as `MR` rows of `V`
/// four-channel vectors. Operand lengths were checked by `pack::check_packed`; weight panels
/// are the outer loop, so one stays in L1 while the activation panels stream past it.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn store_packed<const MR: usize, const V: usize>(
    geometry: Panels,
    ap: &[i8],
    m: usize,
    b: &[i8],
    fold: &[i32],
    out: &mut [i32],
    ldo: usize,
    tile: impl Fn(&[i8], &[i8]) -> [[int32x4_t; V]; MR],
) {
    let nr = 4 * V;
    let Panels { kr, kb } = geometry;
    for (pj, (b_panel, fold_j)) in b
        .chunks_exact(nr * kr * kb)
        .zip(fold.chunks(nr))
        .enumerate()
    {
        let c0 = pj * nr;
        let mut f = [0i32; 32];
        f[..fold_j.len()].copy_from_slice(fold_j);
        // SAFETY: `f` holds 32 ≥ 4·V values.
        let fv: [int32x4_t; V] =
            std::array::from_fn(|v| unsafe { vld1q_s32(f.as_ptr().add(4 * v)) });
        for (pi, a_panel) in ap.chunks_exact(MR * kr * kb).enumerate() {
            let acc = tile(a_panel, b_panel);
            let r0 = pi * MR;
            for (r, row) in acc.iter().enumerate().take(MR.min(m - r0)) {
                let at = (r0 + r) * ldo + c0;
                let dst = &mut out[at..at + fold_j.len()];
                if fold_j.len() == nr {
                    for (v, (&x, &fx)) in row.iter().zip(&fv).enumerate() {
                        // SAFETY: `dst` holds 4·V values, so lanes 4v .. 4v+4 are inside it.
                        unsafe { vst1q_s32(dst.as_mut_ptr().add(4 * v), vsubq_s32(x, fx)) };
                    }
                } else {
                    let mut t = [0i32; 32];
                    for (v, (&x, &fx)) in row.iter().zip(&fv).enumerate() {
                        // SAFETY: `t` holds 32 ≥ 4·V values.
                        unsafe { vst1q_s32(t.as_mut_ptr().add(4 * v), vsubq_s32(x, fx)) };
                    }
                    dst.copy_from_slice(&t[..dst.len()]);
                }
            }
        }
    }
}

/// The four-channel sums of a row whose 4 (row, channel) partial-sum vectors are `p`:
/// two rounds of pairwise adds instead of four across-lane `addv`.
#[inline(always)]
pub(crate) fn reduce_row(p: [int32x4_t; 4]) -> int32x4_t {
    // SAFETY: NEON is part of the aarch64 baseline; these are register-only operations.
    unsafe { vpaddq_s32(vpaddq_s32(p[0], p[1]), vpaddq_s32(p[2], p[3])) }
}

/// The entry points every aarch64 GEMM kernel file builds around its `dot_tile(a, b)` (the
/// panel product as `MR` rows of `V` four-channel vectors): the tile micro-kernel's body
/// `kernel(a, b, tile)` (rows stored into the tile), the public whole-product entry (tier hit,
/// length check, then the loop) and that loop, `store_all`, compiled with the kernel's
/// features so `dot_tile` inlines into it.
macro_rules! gemm_entries {
    (
        token: $token:ty,
        tier: $tier:ident,
        features: $features:literal,
        packed: $packed:ident,
        mr: $mr:expr,
        vectors: $v:literal,
        kr: $kr:expr $(,)?
    ) => {
        /// # Safety
        /// `a` and `b` are one panel each of the same number of blocks, `tile` holds MR·NR
        /// values, and the CPU has the kernel's features.
        #[target_feature(enable = $features)]
        unsafe fn kernel(a: &[i8], b: &[i8], tile: &mut [i32]) {
            for (row, out) in dot_tile(a, b).iter().zip(tile.chunks_exact_mut(4 * $v)) {
                for (i, &v) in row.iter().enumerate() {
                    // SAFETY: `out` holds the 4·V values of one tile row; 4i + 4 ≤ 4·V.
                    unsafe { std::arch::aarch64::vst1q_s32(out.as_mut_ptr().add(4 * i), v) };
                }
            }
        }

        #[doc = concat!(
            "The whole product over packed operands: `out[i][j] = Σ a·w − fold[j]` for every ",
            "row `i < m` and channel `j < n`, where `ap` holds the ⌈m/", stringify!($mr),
            "⌉ activation panels, `b` the ⌈n/", stringify!($v), "·4⌉ weight panels (blocks of ",
            stringify!($kr), " k) and `out`'s rows start `ldo ≥ n` values apart. Errors on other ",
            "lengths."
        )]
        #[allow(clippy::too_many_arguments)]
        pub fn $packed(
            _cpu: $token,
            ap: &[i8],
            m: usize,
            b: &[i8],
            n: usize,
            kb: usize,
            fold: &[i32],
            out: &mut [i32],
            ldo: usize,
        ) -> $crate::Result<()> {
            $crate::tier::hit($crate::Tier::$tier);
            let geometry = ($mr, 4 * $v, $kr);
            let name = concat!(module_path!(), "::", stringify!($packed));
            $crate::pack::check_packed(name, geometry, ap, m, b, n, kb, fold, out, ldo)?;
            // SAFETY: the token proves the kernel's features; lengths were checked just above.
            unsafe { store_all(ap, m, b, kb, fold, out, ldo) };
            Ok(())
        }

        /// # Safety
        /// The lengths the packed entry checks hold, and the CPU has the kernel's features.
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn store_all(
            ap: &[i8],
            m: usize,
            b: &[i8],
            kb: usize,
            fold: &[i32],
            out: &mut [i32],
            ldo: usize,
        ) {
            let geometry = $crate::aarch64::drive::Panels { kr: $kr, kb };
            $crate::aarch64::drive::store_packed::<{ $mr }, $v>(
                geometry,
                ap,
                m,
                b,
                fold,
                out,
                ldo,
                |a, b| dot_tile(a, b),
            );
        }
    };
}
pub(crate) use gemm_entries;
