//! Activation × activation products of attention whose left operand is a log2-quantized
//! probability matrix (post-softmax): every product is a shift.
//!
//! # Contract (`matmul_log2_i32`)
//!
//! * `levels`: `[m, k]` row-major `u8`; level `q` stands for the fixed-point value
//!   `P(q) = 2^(LOG2_FRAC_BITS − q)` when `q ≤ LOG2_FRAC_BITS`, and for 0 above (a right shift of
//!   a 15-bit one past its last bit).
//! * `b`: `[k, n]` row-major `i8` (symmetric int8 values).
//! * `out[i][j] = Σₖ P(levels[i][k])·b[k][j]`, computed exactly in 64 bits and saturated to `i32`
//!   (it only saturates when a row's `Σ P` exceeds `2^24`, i.e. far from any softmax row).
//!
//! One portable implementation serves every tier: its inner loop is an `i32` multiply-add over
//! a contiguous row of `b` that the compiler vectorises for the baseline of each target, and it
//! is integer-exact, so it is bit-identical on every CPU.

use crate::{Error, Result};

/// Fraction bits of the fixed-point form of a log2 level.
pub const LOG2_FRAC_BITS: u32 = 15;

/// `out[m×n] = P(levels)[m×k] · b[k×n]`; see the module contract. Errors on mismatched lengths.
pub fn matmul_log2_i32(
    levels: &[u8],
    m: usize,
    k: usize,
    b: &[i8],
    n: usize,
    out: &mut [i32],
) -> Result<()> {
    let fits = |len: usize, r: usize, c: usize| r.checked_mul(c) == Some(len);
    if !fits(levels.len(), m, k) || !fits(b.len(), k, n) || !fits(out.len(), m, n) {
        return Err(Error::Shape {
            op: "matmul_log2_i32",
            what: format!(
                "levels {}, b {}, out {} for m={m}, k={k}, n={n}",
                levels.len(),
                b.len(),
                out.len()
            ),
        });
    }
    if n == 0 {
        return Ok(());
    }
    if k == 0 {
        out.fill(0);
        return Ok(());
    }
    let mut wide = Vec::new();
    for (row, orow) in levels.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
        let weight =
            |q: u8| (q as u32 <= LOG2_FRAC_BITS).then(|| 1i32 << (LOG2_FRAC_BITS - q as u32));
        let total: u64 = row
            .iter()
            .filter_map(|&q| weight(q))
            .map(|p| p as u64)
            .sum();
        orow.fill(0);
        // |Σ P·b| ≤ 128·Σ P: the 32-bit loop is exact while that stays below 2³¹.
        if total <= (i32::MAX as u64) / 128 {
            for (&q, brow) in row.iter().zip(b.chunks_exact(n)) {
                if let Some(p) = weight(q) {
                    for (o, &v) in orow.iter_mut().zip(brow) {
                        *o += p * v as i32;
                    }
                }
            }
        } else {
            wide.clear();
            wide.resize(n, 0i64);
            for (&q, brow) in row.iter().zip(b.chunks_exact(n)) {
                if let Some(p) = weight(q) {
                    for (o, &v) in wide.iter_mut().zip(brow) {
                        *o += p as i64 * v as i64;
                    }
                }
            }
            for (o, &w) in orow.iter_mut().zip(&wide) {
                *o = w.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            }
        }
    }
    Ok(())
}
