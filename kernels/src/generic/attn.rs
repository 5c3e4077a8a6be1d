//! The table-driven attention product, written once and compiled per tier (the contract is in
//! the `attn` module). Lengths are checked by the callers.

/// Rows of `out = lut[levels] · b`; `levels` is `[rows, k]`, `b` `[k, n]`, `out` `[rows, n]`,
/// `k, n > 0`, every level indexes `lut`.
#[inline(always)]
pub(crate) fn matmul_lut_rows(
    levels: &[u8],
    k: usize,
    lut: &[i32],
    b: &[i8],
    n: usize,
    out: &mut [i32],
) {
    let mut wide = Vec::new();
    for (row, orow) in levels.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
        let total: u64 = row
            .iter()
            .map(|&q| lut[q as usize].unsigned_abs() as u64)
            .sum();
        orow.fill(0);
        // |Σ P·b| ≤ 128·Σ |P|: the 32-bit loop is exact while that stays below 2³¹.
        if total <= (i32::MAX as u64) / 128 {
            for (&q, brow) in row.iter().zip(b.chunks_exact(n)) {
                let p = lut[q as usize];
                if p != 0 {
                    for (o, &v) in orow.iter_mut().zip(brow) {
                        *o += p * v as i32;
                    }
                }
            }
        } else {
            wide.clear();
            wide.resize(n, 0i64);
            for (&q, brow) in row.iter().zip(b.chunks_exact(n)) {
                let p = lut[q as usize] as i64;
                for (o, &v) in wide.iter_mut().zip(brow) {
                    *o += p * v as i64;
                }
            }
            for (o, &w) in orow.iter_mut().zip(&wide) {
                *o = w.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            }
        }
    }
}
