//! Reference W8A8 GEMM (the oracle) and the scalar micro-kernel of the reference tier.

use crate::{Error, Result};

/// `out[m][n] = Σₖ (a[m][k] − a_zero)·w[n][k]` for row-major `a: [m, k]`, `w: [n, k]`,
/// computed directly in i64 and narrowed (exact for the contract's `K ≤ 65 536`).
pub fn gemm_w8a8_i32(
    a: &[i8],
    m: usize,
    k: usize,
    a_zero: i8,
    w: &[i8],
    n: usize,
    out: &mut [i32],
) -> Result<()> {
    if a.len() != m * k || w.len() != n * k || out.len() != m * n {
        return Err(Error::Shape {
            op: "reference::gemm_w8a8_i32",
            what: format!(
                "a {} (m {m}, k {k}), w {} (n {n}), out {}",
                a.len(),
                w.len(),
                out.len()
            ),
        });
    }
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0i64;
            for p in 0..k {
                acc += (a[i * k + p] as i64 - a_zero as i64) * w[j * k + p] as i64;
            }
            out[i * n + j] = acc as i32;
        }
    }
    Ok(())
}

/// W4A8: `out[m][n] = Σₖ (a[m][k] − a_zero)·w[n][k]` with `w` given as int4 nibbles
/// (`[n, k]`, layout in [`crate::nibble`]), each unpacked on the fly.
pub fn gemm_w4a8_i32(
    a: &[i8],
    m: usize,
    k: usize,
    a_zero: i8,
    w_nibbles: &[u8],
    n: usize,
    out: &mut [i32],
) -> Result<()> {
    if a.len() != m * k || w_nibbles.len() != n * k.div_ceil(2) || out.len() != m * n {
        return Err(Error::Shape {
            op: "reference::gemm_w4a8_i32",
            what: format!(
                "a {} (m {m}, k {k}), w {} bytes (n {n}), out {}",
                a.len(),
                w_nibbles.len(),
                out.len()
            ),
        });
    }
    let rb = k.div_ceil(2);
    for i in 0..m {
        for j in 0..n {
            let row = &w_nibbles[j * rb..(j + 1) * rb];
            let mut acc = 0i64;
            for p in 0..k {
                let w = crate::nibble::unpack_nibbles(&row[p / 2..p / 2 + 1], 1, 2)?[p % 2];
                acc += (a[i * k + p] as i64 - a_zero as i64) * w as i64;
            }
            out[i * n + j] = acc as i32;
        }
    }
    Ok(())
}

/// W4A4: `out[m][n] = Σₖ (a[m][k] − a_zero)·w[n][k]` with uint4 activations (one per byte) and
/// int4 nibble weights; errors on lengths or on activations / zero point outside [0, 15].
pub fn gemm_w4a4_i32(
    a: &[u8],
    m: usize,
    k: usize,
    a_zero: u8,
    w_nibbles: &[u8],
    n: usize,
    out: &mut [i32],
) -> Result<()> {
    if a_zero > 15 || a.iter().any(|&v| v > 15) {
        let what = format!("activations or zero point {a_zero} outside [0, 15]");
        return Err(Error::Shape {
            op: "reference::gemm_w4a4_i32",
            what,
        });
    }
    // Activations in [0, 15] and a zero point in [0, 15] are valid int8 W4A8 inputs.
    let a8: Vec<i8> = a.iter().map(|&v| v as i8).collect();
    gemm_w4a8_i32(&a8, m, k, a_zero as i8, w_nibbles, n, out)
}

/// Scalar micro-kernel over the shared panel layout (see `pack`): the reference tier's GEMM.
pub(crate) fn gemm_w8a8_ukernel(
    mr: usize,
    nr: usize,
    kr: usize,
    a: &[i8],
    b: &[i8],
    kb: usize,
    tile: &mut [i32],
) -> Result<()> {
    crate::pack::check_ukernel("reference.gemm_w8a8", (mr, nr, kr), a, b, kb, tile)?;
    tile.fill(0);
    for blk in 0..kb {
        let ab = &a[blk * mr * kr..][..mr * kr];
        let bb = &b[blk * nr * kr..][..nr * kr];
        for i in 0..mr {
            for j in 0..nr {
                let dot: i32 = (0..kr)
                    .map(|p| ab[i * kr + p] as i32 * bb[j * kr + p] as i32)
                    .sum();
                tile[i * nr + j] += dot;
            }
        }
    }
    Ok(())
}
