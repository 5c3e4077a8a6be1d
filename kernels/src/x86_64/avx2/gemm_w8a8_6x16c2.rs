//! W8A8 GEMM micro-kernel, 6 rows × 16 output channels, K in pairs, AVX2.
//!
//! AVX2 has no signed×signed 8-bit multiply (`vpmaddubsw` is unsigned×signed and saturates its
//! 16-bit pair sums), so both operands are sign-extended to i16 and multiplied with `vpmaddwd`,
//! which adds the (k, k+1) product pair into i32 exactly: 16 MACs per instruction. Packed layout
//! (see `pack`): an activation block is 6 rows × 2 k, a weight block 16 channels × 2 k, the
//! pair-interleaved order `vpmaddwd` consumes.
//!
//! The activation panel is widened to i16 pairs once per chunk of K into a stack buffer, so the
//! inner loop broadcasts each row's pair straight from memory (a load, no shuffle) and
//! sign-extends the weights from memory (`vpmovsxbw ymm, m128`). Per k-pair: 2 weight loads,
//! 6 broadcasts, 12 `vpmaddwd` + 12 `vpaddd` for 192 MACs. The 4-row kernel this replaces
//! widened and broadcast the activations in registers: 10 shuffles per 8 `vpmaddwd`, competing
//! for the shuffle ports. Six rows because AVX2 has 16 `ymm` registers: 12 accumulators + 2
//! weights + 1 broadcast.
//!
//! Two entry points share the dot-product loop: the tile micro-kernel of the inventory contract,
//! and a whole-GEMM driver that subtracts the zero-point fold in registers and stores straight
//! into the output rows.

use crate::Result;
use crate::cpu::Avx2Fma;
use std::arch::x86_64::*;

const MR: usize = 6;
const NR: usize = 16;
const KR: usize = 2;

/// K-pairs widened at a time: a 3 KiB stack buffer, reused across chunks of a long K.
const CHUNK: usize = 128;

/// Overwrites the row-major 6×16 `tile` with `Σ a·w` of one packed activation panel (`a`,
/// 12·kb bytes) and one packed weight panel (`b`, 32·kb bytes). Errors on other lengths.
pub fn gemm_w8a8_6x16c2(
    _cpu: Avx2Fma,
    a: &[i8],
    b: &[i8],
    kb: usize,
    tile: &mut [i32],
) -> Result<()> {
    crate::tier::hit(crate::Tier::Avx2);
    crate::pack::check_ukernel("x86_64.avx2.gemm_w8a8_6x16c2", (MR, NR, KR), a, b, kb, tile)?;
    let mut wide = [0i32; MR * CHUNK];
    // SAFETY: the token proves AVX2.
    let acc = unsafe { dot_tile(a, b, &mut wide) };
    for (halves, row) in acc.iter().zip(tile.as_chunks_mut::<NR>().0) {
        super::store_row16(halves, row);
    }
    Ok(())
}

/// The whole product over packed operands: `out[i][j] = Σ a·w − fold[j]` for every row `i < m`
/// and channel `j < n`, where `ap` holds the ⌈m/6⌉ packed activation panels (12·kb bytes
/// each), `b` the ⌈n/16⌉ packed weight panels (32·kb bytes each), `fold` the `n` per-channel
/// values to subtract and `out` the `m × n` result, rows `ldo ≥ n` values apart. Errors on
/// other lengths.
#[allow(clippy::too_many_arguments)]
pub fn gemm_w8a8_6x16c2_packed(
    _cpu: Avx2Fma,
    ap: &[i8],
    m: usize,
    b: &[i8],
    n: usize,
    kb: usize,
    fold: &[i32],
    out: &mut [i32],
    ldo: usize,
) -> Result<()> {
    crate::tier::hit(crate::Tier::Avx2);
    crate::pack::check_packed(
        "x86_64.avx2.gemm_w8a8_6x16c2_packed",
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
    // SAFETY: the token proves AVX2; the lengths were checked just above.
    unsafe { store_packed(ap, m, b, n, kb, fold, out, ldo) };
    Ok(())
}

/// Sign-extends `blocks` (6 rows × 2 k each) into `wide`: one i32 per row and block holding the
/// row's pair as two i16, the operand `vpmaddwd` multiplies lane by lane.
#[inline]
#[target_feature(enable = "avx2")]
fn widen(blocks: &[[i8; MR * KR]], wide: &mut [i32; MR * CHUNK]) {
    let bytes = blocks.as_flattened();
    let (chunks, tail) = bytes.as_chunks::<16>();
    let (dst, _) = wide.as_chunks_mut::<8>();
    for (s, d) in chunks.iter().zip(dst.iter_mut()) {
        // SAFETY: `[i8; 16]` and `__m128i`, `__m256i` and `[i32; 8]` have the same sizes and
        // every bit pattern is valid for both.
        unsafe {
            let x = std::mem::transmute::<[i8; 16], __m128i>(*s);
            *d = std::mem::transmute::<__m256i, [i32; 8]>(_mm256_cvtepi8_epi16(x));
        }
    }
    let done = chunks.len() * 8;
    for (d, pair) in wide[done..].iter_mut().zip(tail.as_chunks::<2>().0) {
        *d = (pair[0] as i16 as u16 as u32 | (pair[1] as i16 as u16 as u32) << 16) as i32;
    }
}

/// `Σ a·w` of one activation panel and one weight panel, as 6 rows of two 8-lane halves, with
/// `wide` as the widening buffer (the caller's, so that it is not zeroed for every tile).
/// Blocks past the shorter operand are ignored (callers pass matching lengths).
///
/// Loads copy `[i8; N]` chunks instead of calling `_mm_loadu_si128`, whose `read_unaligned`
/// carries debug-build UB checks that cost more than the multiply they feed.
#[inline]
#[target_feature(enable = "avx2")]
fn dot_tile(a: &[i8], b: &[i8], wide: &mut [i32; MR * CHUNK]) -> [[__m256i; 2]; MR] {
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let (a_blocks, _) = a.as_chunks::<{ MR * KR }>();
    let (b_blocks, _) = b.as_chunks::<{ NR * KR }>();
    for (ac, bc) in a_blocks.chunks(CHUNK).zip(b_blocks.chunks(CHUNK)) {
        widen(ac, wide);
        let (rows, _) = wide.as_chunks::<MR>();
        for (x, bb) in rows.iter().zip(bc) {
            let (w0, w1) = bb.split_at(16);
            // SAFETY: `[i8; 16]` and `__m128i` have the same size and every bit pattern is valid.
            let (w0, w1) = unsafe {
                (
                    std::mem::transmute::<[i8; 16], __m128i>(w0.try_into().unwrap()),
                    std::mem::transmute::<[i8; 16], __m128i>(w1.try_into().unwrap()),
                )
            };
            let (w_lo, w_hi) = (_mm256_cvtepi8_epi16(w0), _mm256_cvtepi8_epi16(w1));
            for (acc_r, &pair) in acc.iter_mut().zip(x) {
                let xr = _mm256_set1_epi32(pair);
                acc_r[0] = _mm256_add_epi32(acc_r[0], _mm256_madd_epi16(xr, w_lo));
                acc_r[1] = _mm256_add_epi32(acc_r[1], _mm256_madd_epi16(xr, w_hi));
            }
        }
    }
    acc
}

/// # Safety
/// The lengths checked by [`gemm_w8a8_6x16c2_packed`] hold, and the CPU has AVX2.
#[target_feature(enable = "avx2")]
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
    let mut wide = [0i32; MR * CHUNK];
    // Weight panels outside: one panel (32·kb bytes) stays in L1 while the activation panels
    // stream past it.
    for (pj, b_panel) in b.chunks_exact(NR * KR * kb).enumerate() {
        let c0 = pj * NR;
        let cols = NR.min(n - c0);
        let mut f = [0i32; NR];
        f[..cols].copy_from_slice(&fold[c0..c0 + cols]);
        // SAFETY: `[i32; 8]` and `__m256i` have the same size and every bit pattern is valid.
        let f: [__m256i; 2] = unsafe { std::mem::transmute::<[i32; NR], [__m256i; 2]>(f) };
        for (pi, a_panel) in ap.chunks_exact(MR * KR * kb).enumerate() {
            let acc = dot_tile(a_panel, b_panel, &mut wide);
            let r0 = pi * MR;
            for (r, halves) in acc.iter().enumerate().take(MR.min(m - r0)) {
                let row = [
                    _mm256_sub_epi32(halves[0], f[0]),
                    _mm256_sub_epi32(halves[1], f[1]),
                ];
                // SAFETY: as above, two `__m256i` are the 16 `i32` of one tile row.
                let row = unsafe { std::mem::transmute::<[__m256i; 2], [i32; NR]>(row) };
                let at = (r0 + r) * ldo + c0;
                match cols {
                    // A fixed-size copy is two vector stores; a variable one calls memmove.
                    NR => out[at..at + NR].copy_from_slice(&row),
                    _ => out[at..at + cols].copy_from_slice(&row[..cols]),
                }
            }
        }
    }
}
