//! Dense symmetric positive definite algebra in f32 (as GPTQ's reference runs it) for
//! second-order weight rounding: a blocked Cholesky factorisation and a triangular inverse whose
//! O(k³) parts run through the device's gemm, so a 1536-wide Hessian (a ViT-S MLP) factors in a
//! fraction of a second even in a debug build.

use qvit_device::exec::{Strides, gemm_f32};

/// Columns per panel of the blocked Cholesky and the base size of the recursive inverse.
const BLOCK: usize = 64;

/// A read-only strided matrix: element `(i, j)` is `data[i * s.rs + j * s.cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub s: Strides,
}

/// `dst[m×n] += lhs[m×k] · rhs[k×n]`, `dst` row-major with row stride `dst_rs` (the device's
/// bounds-checked gemm, one thread).
pub(crate) fn gemm_acc(
    mnk: (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    lhs: View,
    rhs: View,
) {
    gemm_f32(
        mnk, dst, dst_rs, lhs.data, lhs.s, rhs.data, rhs.s, true, false,
    );
}

/// A dense row-major matrix with `cols` columns.
fn dense(data: &[f32], cols: usize) -> View<'_> {
    View {
        data,
        s: Strides { rs: cols, cs: 1 },
    }
}

/// Factors the symmetric `n×n` row-major `a` in place into its lower Cholesky factor `L`
/// (`a = L·Lᵀ`; the strict upper triangle is zeroed). `false` when `a` is not positive definite
/// (or not finite), leaving `a` partly overwritten.
pub fn cholesky_lower(a: &mut [f32], n: usize) -> bool {
    assert_eq!(a.len(), n * n, "cholesky: matrix is not n×n");
    let (mut panel, mut neg) = (Vec::new(), Vec::new());
    for kb in (0..n).step_by(BLOCK) {
        let e = (kb + BLOCK).min(n);
        // The diagonal block and the panel below it, left-looking within the block: earlier
        // blocks have already been subtracted by the trailing updates.
        for j in kb..e {
            let (head, tail) = a.split_at_mut(j * n + n);
            let rj = &mut head[j * n..];
            let d = rj[j] - rj[kb..j].iter().map(|x| x * x).sum::<f32>();
            if d <= 0.0 || !d.is_finite() {
                return false;
            }
            let d = d.sqrt();
            rj[j] = d;
            let rj = &head[j * n + kb..j * n + j];
            for ri in tail.chunks_exact_mut(n) {
                let dot: f32 = ri[kb..j].iter().zip(rj).map(|(x, y)| x * y).sum();
                ri[j] = (ri[j] - dot) / d;
            }
        }
        if e == n {
            break;
        }
        // Trailing update A[e.., e..] -= P·Pᵀ with P = L[e.., kb..e]: P and −P are copied out,
        // since gemm's output must not alias its inputs and it only adds.
        let (w, rows) = (e - kb, n - e);
        panel.clear();
        neg.clear();
        for i in e..n {
            panel.extend_from_slice(&a[i * n + kb..i * n + e]);
            neg.extend(a[i * n + kb..i * n + e].iter().map(|x| -x));
        }
        let pt = View {
            data: &panel,
            s: Strides { rs: 1, cs: w },
        };
        gemm_acc((rows, rows, w), &mut a[e * n + e..], n, dense(&neg, w), pt);
    }
    for i in 0..n {
        a[i * n + i + 1..(i + 1) * n].fill(0.0);
    }
    true
}

/// The inverse of the lower triangular `n×n` row-major `l` (only its lower triangle is read).
pub fn invert_lower(l: &[f32], n: usize) -> Vec<f32> {
    assert_eq!(l.len(), n * n, "invert_lower: matrix is not n×n");
    let mut x = vec![0.0; n * n];
    if n <= BLOCK {
        for j in 0..n {
            x[j * n + j] = 1.0 / l[j * n + j];
            for i in j + 1..n {
                let s: f32 = (j..i).map(|t| l[i * n + t] * x[t * n + j]).sum();
                x[i * n + j] = -s / l[i * n + i];
            }
        }
        return x;
    }
    // [[A, 0], [B, C]]⁻¹ = [[A⁻¹, 0], [−C⁻¹·B·A⁻¹, C⁻¹]].
    let h = n / 2;
    let m = n - h;
    let block = |r0: usize, c0: usize, rows: usize, cols: usize| -> Vec<f32> {
        (r0..r0 + rows)
            .flat_map(|i| l[i * n + c0..i * n + c0 + cols].iter().copied())
            .collect()
    };
    let ai = invert_lower(&block(0, 0, h, h), h);
    let ci = invert_lower(&block(h, h, m, m), m);
    let b = block(h, 0, m, h);
    let mut t = vec![0.0; m * h];
    gemm_acc((m, h, h), &mut t, h, dense(&b, h), dense(&ai, h));
    for x in &mut t {
        *x = -*x;
    }
    let mut x21 = vec![0.0; m * h];
    gemm_acc((m, h, m), &mut x21, h, dense(&ci, m), dense(&t, h));
    for i in 0..h {
        x[i * n..i * n + h].copy_from_slice(&ai[i * h..(i + 1) * h]);
    }
    for i in 0..m {
        let row = (h + i) * n;
        x[row..row + h].copy_from_slice(&x21[i * h..(i + 1) * h]);
        x[row + h..row + n].copy_from_slice(&ci[i * m..(i + 1) * m]);
    }
    x
}

/// The upper triangular `U` with `UᵀU = h⁻¹` (what GPTQ's column updates read), for a symmetric
/// positive definite `n×n` `h`; `None` if `h` is not positive definite.
///
/// Reversing rows and columns (`J`) turns a lower factor into an upper one: `J·h·J = M·Mᵀ` gives
/// `h = R·Rᵀ` with upper `R = J·M·J`, so `h⁻¹ = (R⁻¹)ᵀ·R⁻¹` and `U = R⁻¹ = J·M⁻¹·J`: one
/// factorisation and one triangular inverse, no explicit `h⁻¹`.
pub fn inverse_cholesky_upper(h: &[f32], n: usize) -> Option<Vec<f32>> {
    assert_eq!(h.len(), n * n, "inverse_cholesky_upper: matrix is not n×n");
    let mut rev: Vec<f32> = (0..n * n)
        .map(|p| h[(n - 1 - p / n) * n + (n - 1 - p % n)])
        .collect();
    if !cholesky_lower(&mut rev, n) {
        return None;
    }
    let mi = invert_lower(&rev, n);
    Some(
        (0..n * n)
            .map(|p| mi[(n - 1 - p / n) * n + (n - 1 - p % n)])
            .collect(),
    )
}
