//! Activation × activation products of attention whose left operand is a log-quantized
//! probability matrix (post-softmax): each level stands for a fixed-point value from a small
//! table, so the product is exact integer arithmetic (with power-of-two tables, shifts).
//!
//! # Contract (`matmul_lut_i32`)
//!
//! * `levels`: `[m, k]` row-major `u8`; level `q` stands for the integer `lut[q]`
//!   (every level must index `lut`).
//! * `b`: `[k, n]` row-major `i8`.
//! * `out[i][j] = Σₖ lut[levels[i][k]]·b[k][j]`, exact in 64 bits and saturated to `i32` (the
//!   32-bit loop runs whenever `128·Σₖ |lut[levels[i][k]]|` fits `i32`, i.e. always for softmax
//!   rows with a 15-bit table).
//!
//! One portable implementation serves every tier: its inner loop is an `i32` multiply-add over
//! a contiguous row of `b` that the compiler vectorises for each target's baseline, and it is
//! integer-exact, so every CPU gives identical results.

use crate::{Error, Result};

/// `out[m×n] = lut[levels][m×k] · b[k×n]`; see the module contract. Errors on mismatched
/// lengths or a level outside the table. Portable build; [`crate::KernelSet::matmul_lut_i32`]
/// picks the tier's compilation of the same code.
pub fn matmul_lut_i32(
    levels: &[u8],
    m: usize,
    k: usize,
    lut: &[i32],
    b: &[i8],
    n: usize,
    out: &mut [i32],
) -> Result<()> {
    if check(levels, m, k, lut, b, n, out)? {
        crate::generic::attn::matmul_lut_rows(levels, k, lut, b, n, out);
    }
    Ok(())
}

/// Checks the lengths and levels of a table product and settles the empty cases (zero-filling
/// `out` when `k = 0`); `Ok(true)` means the rows still have to be computed.
pub(crate) fn check(
    levels: &[u8],
    m: usize,
    k: usize,
    lut: &[i32],
    b: &[i8],
    n: usize,
    out: &mut [i32],
) -> Result<bool> {
    let op = "matmul_lut_i32";
    let fits = |len: usize, r: usize, c: usize| r.checked_mul(c) == Some(len);
    if !fits(levels.len(), m, k) || !fits(b.len(), k, n) || !fits(out.len(), m, n) {
        let what = format!(
            "levels {}, b {}, out {} for m={m}, k={k}, n={n}",
            levels.len(),
            b.len(),
            out.len()
        );
        return Err(Error::Shape { op, what });
    }
    if let Some(&q) = levels.iter().find(|&&q| q as usize >= lut.len()) {
        let what = format!("level {q} outside the {}-entry table", lut.len());
        return Err(Error::Shape { op, what });
    }
    if n == 0 || k == 0 {
        out.fill(0);
        return Ok(false);
    }
    Ok(true)
}
