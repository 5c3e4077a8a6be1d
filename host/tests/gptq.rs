//! GPTQ weight rounding against the textbook form it accelerates, against nearest rounding, and
//! the linear algebra under it against direct products.

use qvit_device::quant::symmetric_max;
use qvit_host::quant::clip::quantize_weights;
use qvit_host::quant::gptq::{self, Gram, Order};
use qvit_host::quant::linalg::{cholesky_lower, inverse_cholesky_upper, invert_lower};

/// xorshift64* with Box–Muller normals: deterministic test data without a crate.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn normals(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }
}

/// `rows` inputs of `k` features with correlated features of unequal scale, as real activations.
fn correlated_inputs(rng: &mut Rng, rows: usize, k: usize) -> Vec<f32> {
    let z = rng.normals(rows * k);
    let mix = rng.normals(k * k);
    let gain: Vec<f64> = (0..k)
        .map(|j| 0.2 + 3.0 * rng.uniform() + (j % 7) as f64 * 0.1)
        .collect();
    let mut x = vec![0f32; rows * k];
    for r in 0..rows {
        for j in 0..k {
            let mut s = 2.0 * z[r * k + j];
            for t in 0..k.min(12) {
                s += z[r * k + (j + t) % k] * mix[j * k + t];
            }
            x[r * k + j] = (s * gain[j]) as f32;
        }
    }
    x
}

/// ‖X·Wᵀ − X·Ŵᵀ‖² with `Ŵ = codes · scale` per row.
fn output_error(x: &[f32], k: usize, w: &[f32], codes: &[i8], scales: &[f32]) -> f64 {
    let n = scales.len();
    let mut total = 0.0;
    for xr in x.chunks_exact(k) {
        for o in 0..n {
            let d: f64 = (0..k)
                .map(|j| {
                    xr[j] as f64
                        * (w[o * k + j] as f64 - codes[o * k + j] as f64 * scales[o] as f64)
                })
                .sum();
            total += d * d;
        }
    }
    total
}

/// Inverse by Gauss–Jordan elimination with partial pivoting.
fn inverse(a: &[f64], n: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    let mut inv: Vec<f64> = (0..n * n).map(|p| f64::from(p / n == p % n)).collect();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[i * n + c].abs().total_cmp(&m[j * n + c].abs()))
            .unwrap();
        for j in 0..n {
            m.swap(c * n + j, p * n + j);
            inv.swap(c * n + j, p * n + j);
        }
        let d = m[c * n + c];
        for j in 0..n {
            m[c * n + j] /= d;
            inv[c * n + j] /= d;
        }
        for i in (0..n).filter(|&i| i != c) {
            let f = m[i * n + c];
            for j in 0..n {
                m[i * n + j] -= f * m[c * n + j];
                inv[i * n + j] -= f * inv[c * n + j];
            }
        }
    }
    inv
}

/// The textbook (OBQ-form) GPTQ: the full inverse Hessian of the columns not yet rounded, each
/// column's error spread by its row, then the column eliminated from the inverse. O(k³), no
/// Cholesky, no blocks: what the blocked implementation must reproduce code for code.
fn textbook_gptq(w: &[f32], n: usize, k: usize, bits: u8, scales: &[f32], h: &[f64]) -> Vec<i8> {
    let max = symmetric_max(bits);
    let mut hinv = inverse(h, k);
    let mut w: Vec<f64> = w.iter().map(|&x| x as f64).collect();
    let mut codes = vec![0i8; n * k];
    for i in 0..k {
        let d = hinv[i * k + i];
        for r in 0..n {
            let s = scales[r] as f64;
            let q = ((w[r * k + i] / s).round() as i32).clamp(-max, max);
            codes[r * k + i] = q as i8;
            let e = (w[r * k + i] - q as f64 * s) / d;
            for j in i + 1..k {
                w[r * k + j] -= e * hinv[i * k + j];
            }
        }
        let row: Vec<f64> = hinv[i * k..(i + 1) * k].to_vec();
        for a in 0..k {
            let f = hinv[a * k + i] / d;
            for b in 0..k {
                hinv[a * k + b] -= f * row[b];
            }
        }
    }
    codes
}

fn random_weights(rng: &mut Rng, n: usize, k: usize) -> Vec<f32> {
    rng.normals(n * k)
        .iter()
        .map(|&x| (0.05 * x) as f32)
        .collect()
}

#[test]
fn gptq_equals_the_textbook_form_and_beats_nearest_rounding() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // k crosses GPTQ's 128-column blocks and the 64-wide Cholesky panels.
    let (n, k, rows) = (20, 150, 400);
    let x = correlated_inputs(&mut rng, rows, k);
    let mut gram = Gram::new(k);
    gram.add(&x[..150 * k]);
    gram.add(&x[150 * k..]);

    // The f32 accumulation matches the f64 product 2·XᵀX/rows (plus damping).
    let mut h64 = vec![0.0f64; k * k];
    for xr in x.chunks_exact(k) {
        for a in 0..k {
            for b in 0..k {
                h64[a * k + b] += 2.0 * xr[a] as f64 * xr[b] as f64 / rows as f64;
            }
        }
    }
    let diag_mean = (0..k).map(|i| h64[i * k + i]).sum::<f64>() / k as f64;
    for i in 0..k {
        h64[i * k + i] += gptq::DAMP as f64 * diag_mean;
    }
    let h: Vec<f64> = gram.hessian().iter().map(|&x| x as f64).collect();
    let worst = h
        .iter()
        .zip(&h64)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 1e-4 * diag_mean,
        "Gram drifts from 2XᵀX/rows by {worst}"
    );

    // Act-order: features by decreasing Hessian diagonal.
    let (perm, _) = gram.ordered_factor().expect("Hessian is positive definite");
    assert!(
        perm.windows(2)
            .all(|p| h[p[0] * k + p[0]] >= h[p[1] * k + p[1]])
    );
    let mut seen = perm.to_vec();
    seen.sort_unstable();
    assert_eq!(seen, (0..k).collect::<Vec<_>>(), "a permutation");
    let natural: Vec<usize> = (0..k).collect();

    for (order, perm) in [(Order::Natural, &natural[..]), (Order::Activation, perm)] {
        for bits in [3u8, 4] {
            let w = random_weights(&mut rng, n, k);
            let (near, scales) = quantize_weights(&w, n, k, bits);
            let codes = gptq::round(&w, n, k, bits, &scales, &gram, order)
                .expect("Hessian is positive definite");
            // The textbook form on the permuted problem, its codes put back in place.
            let hp = permute_square(&h, k, perm);
            let wp = gptq::permute_columns(&w, n, k, perm);
            let mut reference = vec![0i8; n * k];
            for (r, c) in textbook_gptq(&wp, n, k, bits, &scales, &hp)
                .iter()
                .enumerate()
            {
                reference[(r / k) * k + perm[r % k]] = *c;
            }
            // The blocked form runs in f32 (as GPTQ does), the textbook one in f64: a weight
            // that lands within f32 noise of a rounding tie may take the other code, no more.
            let differ = codes.iter().zip(&reference).filter(|(a, b)| a != b).count();
            assert!(
                differ * 200 <= n * k,
                "{order:?}, {bits} bits: {differ} of {} codes differ",
                n * k
            );
            assert!(
                codes
                    .iter()
                    .zip(&reference)
                    .all(|(a, b)| (a - b).abs() <= 1)
            );
            let (e_gptq, e_ref, e_near) = (
                output_error(&x, k, &w, &codes, &scales),
                output_error(&x, k, &w, &reference, &scales),
                output_error(&x, k, &w, &near.data, &scales),
            );
            assert!(
                (e_gptq - e_ref).abs() <= 0.01 * e_ref,
                "{order:?}, {bits} bits: output error {e_gptq} vs the textbook form's {e_ref}"
            );
            assert!(
                e_gptq <= e_near,
                "{order:?}, {bits} bits: GPTQ output error {e_gptq} above nearest's {e_near}"
            );
            eprintln!(
                "{order:?}, {bits} bits: output error GPTQ {e_gptq:.4e}, nearest {e_near:.4e}"
            );
            assert!(
                codes
                    .iter()
                    .all(|&c| (c as i32).abs() <= symmetric_max(bits))
            );
        }
    }
}

/// `a` (`k×k`) with rows and columns in the order `perm`.
fn permute_square(a: &[f64], k: usize, perm: &[usize]) -> Vec<f64> {
    (0..k * k)
        .map(|p| a[perm[p / k] * k + perm[p % k]])
        .collect()
}

#[test]
fn with_a_diagonal_hessian_gptq_is_nearest_rounding() {
    let mut rng = Rng(7);
    let (n, k) = (12, 140);
    // One feature per row: XᵀX is diagonal. Feature 5 never fires (a dead input).
    let mut x = vec![0f32; 3 * k * k];
    for (r, row) in x.chunks_exact_mut(k).enumerate() {
        let j = r % k;
        if j != 5 {
            row[j] = (rng.normal() * (1.0 + j as f64 / 10.0)) as f32;
        }
    }
    let mut gram = Gram::new(k);
    gram.add(&x);
    for bits in [2u8, 4, 8] {
        let w = random_weights(&mut rng, n, k);
        let (near, scales) = quantize_weights(&w, n, k, bits);
        for order in [Order::Natural, Order::Activation] {
            let codes = gptq::round(&w, n, k, bits, &scales, &gram, order).unwrap();
            assert_eq!(codes, near.data, "{order:?}, {bits} bits");
        }
    }
}

fn random_spd(rng: &mut Rng, n: usize) -> Vec<f32> {
    let b = rng.normals(n * n);
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (0..n).map(|t| b[i * n + t] * b[j * n + t]).sum::<f64>() / n as f64;
        }
        a[i * n + i] += 0.1;
    }
    a.iter().map(|&x| x as f32).collect()
}

fn wide(a: &[f32]) -> Vec<f64> {
    a.iter().map(|&x| x as f64).collect()
}

fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for t in 0..n {
            for j in 0..n {
                c[i * n + j] += a[i * n + t] * b[t * n + j];
            }
        }
    }
    c
}

fn transpose(a: &[f64], n: usize) -> Vec<f64> {
    (0..n * n).map(|p| a[(p % n) * n + p / n]).collect()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(worst < tol, "{what}: off by {worst}");
}

#[test]
fn blocked_factorisations_agree_with_direct_products() {
    let mut rng = Rng(42);
    for n in [1usize, 63, 64, 65, 200] {
        let a = random_spd(&mut rng, n);
        let eye: Vec<f64> = (0..n * n).map(|p| f64::from(p / n == p % n)).collect();

        let mut l = a.clone();
        assert!(cholesky_lower(&mut l, n));
        assert!(
            (0..n).all(|i| (i + 1..n).all(|j| l[i * n + j] == 0.0)),
            "L is lower"
        );
        let (l64, a64) = (wide(&l), wide(&a));
        assert_close(
            &matmul(&l64, &transpose(&l64, n), n),
            &a64,
            1e-4,
            "L·Lᵀ = A",
        );
        let li = wide(&invert_lower(&l, n));
        assert_close(&matmul(&li, &l64, n), &eye, 1e-3, "L⁻¹·L = I");

        let u = inverse_cholesky_upper(&a, n).unwrap();
        assert!(
            (0..n).all(|i| (0..i).all(|j| u[i * n + j] == 0.0)),
            "U is upper"
        );
        let u = wide(&u);
        let hinv = matmul(&transpose(&u, n), &u, n);
        assert_close(&matmul(&hinv, &a64, n), &eye, 1e-3, "UᵀU·A = I");
    }
    let mut indefinite = random_spd(&mut rng, 80);
    indefinite[70 * 80 + 70] = -5.0;
    assert!(inverse_cholesky_upper(&indefinite, 80).is_none());
}
