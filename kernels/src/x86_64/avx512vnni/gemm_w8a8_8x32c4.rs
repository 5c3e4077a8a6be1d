//! W8A8 GEMM micro-kernel, 8 rows × 32 output channels, K in blocks of 4, AVX-512 VNNI.
//!
//! The 512-bit form of the AVX-VNNI kernel: `vpdpbusd zmm` adds four u8×i8 products per i32 lane,
//! 64 MACs per instruction, twice the AVX-VNNI rate. Activations are packed as `a + 128` (see
//! `KernelDesc::a_offset`) and the driver removes `128·Σₖ w` with the packed column sums. A weight
//! block is 32 channels × 4 k (two registers); each row's 4 bytes are broadcast. Per block:
//! 2 loads, 8 broadcasts, 16 `vpdpbusd` for 1024 MACs.
//!
//! Two entry points share the dot-product loop: the tile micro-kernel of the inventory contract,
//! and a whole-GEMM driver that subtracts the zero-point fold in registers and stores straight
//! into the output rows (masked stores cover ragged N), so no tile round-trips through memory.

use crate::Result;
use crate::cpu::Avx512Vnni;
use std::arch::x86_64::*;

const MR: usize = 8;
const NR: usize = 32;
const KR: usize = 4;

/// Overwrites the row-major 8×32 `tile` with `Σ (a+128)·w` of one packed activation panel (`a`,
/// sign-flipped, 32·kb bytes) and one packed weight panel (`b`, 128·kb bytes). Errors on other
/// lengths.
pub fn gemm_w8a8_8x32c4(
    _cpu: Avx512Vnni,
    a: &[i8],
    b: &[i8],
    kb: usize,
    tile: &mut [i32],
) -> Result<()> {
    crate::tier::hit(crate::Tier::Avx512Vnni);
    crate::pack::check_ukernel(
        "x86_64.avx512vnni.gemm_w8a8_8x32c4",
        (MR, NR, KR),
        a,
        b,
        kb,
        tile,
    )?;
    // SAFETY: the token proves AVX-512 F/BW/VNNI.
    unsafe { store_tile(a, b, tile) };
    Ok(())
}

/// The whole product over packed operands: `out[i][j] = Σ (a+128)·w − fold[j]` for every row
/// `i < m` and channel `j < n`, where `ap` holds the ⌈m/8⌉ packed activation panels (32·kb bytes
/// each), `b` the ⌈n/32⌉ packed weight panels (128·kb bytes each), `fold` the `n` per-channel
/// values to subtract and `out` the `m × n` result, rows `ldo ≥ n` values apart. Errors on
/// other lengths.
#[allow(clippy::too_many_arguments)]
pub fn gemm_w8a8_8x32c4_packed(
    _cpu: Avx512Vnni,
    ap: &[i8],
    m: usize,
    b: &[i8],
    n: usize,
    kb: usize,
    fold: &[i32],
    out: &mut [i32],
    ldo: usize,
) -> Result<()> {
    crate::tier::hit(crate::Tier::Avx512Vnni);
    crate::pack::check_packed(
        "x86_64.avx512vnni.gemm_w8a8_8x32c4_packed",
        (MR, NR, KR),
        ap,
        m,
        b,
        n,
        kb,
        fold,
        out,
        ldo,
    )?;
    // SAFETY: the token proves AVX-512 F/BW/VNNI; the lengths were checked just above.
    unsafe { store_packed(ap, m, b, n, kb, fold, out, ldo) };
    Ok(())
}

/// `Σ (a+128)·w` of one activation panel and one weight panel, as 8 rows of two 16-lane halves.
/// Blocks past the shorter operand are ignored (callers pass matching lengths).
///
/// No raw-pointer loads: `_mm512_loadu_si512` and `read_unaligned` carry debug-build UB checks
/// that cost more than the `vpdpbusd` they feed, while copying a `[i8; 64]` out of a chunk is one
/// plain vector load in every profile.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn dot_tile(a: &[i8], b: &[i8]) -> [[__m512i; 2]; MR] {
    let mut acc = [[_mm512_setzero_si512(); 2]; MR];
    let (a_blocks, _) = a.as_chunks::<{ MR * KR }>();
    let (b_blocks, _) = b.as_chunks::<{ NR * KR }>();
    for (ab, bb) in a_blocks.iter().zip(b_blocks) {
        let (w0, w1) = bb.split_at(64);
        let (w0, w1): ([i8; 64], [i8; 64]) = (w0.try_into().unwrap(), w1.try_into().unwrap());
        // SAFETY: `[i8; 64]` and `__m512i` have the same size and every bit pattern is valid.
        let (w0, w1): (__m512i, __m512i) = unsafe {
            (
                std::mem::transmute::<[i8; 64], __m512i>(w0),
                std::mem::transmute::<[i8; 64], __m512i>(w1),
            )
        };
        for (acc_r, x) in acc.iter_mut().zip(ab.as_chunks::<KR>().0) {
            let x = _mm512_set1_epi32(i32::from_ne_bytes(x.map(|v| v as u8)));
            acc_r[0] = _mm512_dpbusd_epi32(acc_r[0], x, w0);
            acc_r[1] = _mm512_dpbusd_epi32(acc_r[1], x, w1);
        }
    }
    acc
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn store_tile(a: &[i8], b: &[i8], tile: &mut [i32]) {
    let acc = dot_tile(a, b);
    for (halves, row) in acc.iter().zip(tile.as_chunks_mut::<NR>().0) {
        // SAFETY: `__m512i` and `[i32; 16]` are the same 64 bytes; every bit pattern is valid.
        let (lo, hi): ([i32; 16], [i32; 16]) = unsafe {
            (
                std::mem::transmute::<__m512i, [i32; 16]>(halves[0]),
                std::mem::transmute::<__m512i, [i32; 16]>(halves[1]),
            )
        };
        row[..16].copy_from_slice(&lo);
        row[16..].copy_from_slice(&hi);
    }
}

/// Lane mask selecting the first `lanes` (≤ 16) of 16.
fn first_lanes(lanes: usize) -> __mmask16 {
    ((1u32 << lanes) - 1) as __mmask16
}

/// # Safety
/// The lengths checked by [`gemm_w8a8_8x32c4_packed`] hold, and the CPU has AVX-512 VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn store_packed(
    ap: &[i8],
    m: usize,
    b: &[i8],
    n: usize,
    kb: usize,
    fold: &[i32],
    out: &mut [i32],
    ldo: usize,
) {
    let (fp, op) = (fold.as_ptr(), out.as_mut_ptr());
    // Weight panels outside: one panel (128·kb bytes) stays in L1 while the activation panels
    // stream past it.
    for (pj, b_panel) in b.chunks_exact(NR * KR * kb).enumerate() {
        let c0 = pj * NR;
        let cols = NR.min(n - c0);
        let (lo, hi) = (
            first_lanes(cols.min(16)),
            first_lanes(cols.saturating_sub(16)),
        );
        // Pointers are formed with `wrapping_add`: a half whose mask is empty may point past the
        // end, and masked-off lanes are never accessed.
        // SAFETY: the masks select channels c0 .. c0 + cols ≤ n of `fold` (length n).
        let (f0, f1) = unsafe {
            (
                _mm512_maskz_loadu_epi32(lo, fp.wrapping_add(c0)),
                _mm512_maskz_loadu_epi32(hi, fp.wrapping_add(c0 + 16)),
            )
        };
        for (pi, a_panel) in ap.chunks_exact(MR * KR * kb).enumerate() {
            let acc = dot_tile(a_panel, b_panel);
            let r0 = pi * MR;
            for (r, halves) in acc.iter().enumerate().take(MR.min(m - r0)) {
                let o = op.wrapping_add((r0 + r) * ldo + c0);
                // SAFETY: row r0 + r < m, and the masks select columns c0 .. c0 + cols ≤ n of
                // it: inside `out`, which reaches (m − 1)·ldo + n values.
                unsafe {
                    _mm512_mask_storeu_epi32(o, lo, _mm512_sub_epi32(halves[0], f0));
                    _mm512_mask_storeu_epi32(
                        o.wrapping_add(16),
                        hi,
                        _mm512_sub_epi32(halves[1], f1),
                    );
                }
            }
        }
    }
}
