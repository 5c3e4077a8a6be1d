//! QMatMul (the attention products) against oracles that apply the documented integer formulas
//! in i64, on every kernel tier this CPU supports (under qemu too) and with 1 and 2 threads:
//! static uniform and log2 left operands, and the run-time steps of `--attn-scale dynamic` (per
//! row of the left operand, per column of the product on the right one).

mod common;

use common::{qmatmul_graph, run_on, tiers, uniform, weights};
use qvit_device::Tensor;
use qvit_device::quant::{ActQuant, LOG2_FRAC_BITS, log_steps, symmetric_max};

/// The integer a static quantizer stands for: the level minus the zero point, or for log2 the
/// fixed-point `P(q) = 2^15·2^(−q/m)` rounded (half up; f64 `round` is half away from zero).
fn static_level(q: ActQuant, x: f32, inv: f32) -> i64 {
    let l = q.level(x, inv) as i64;
    match q {
        ActQuant::Log2 { bits, .. } => {
            let m = log_steps(bits) as f64;
            2f64.powf(LOG2_FRAC_BITS as f64 - l as f64 / m).round() as i64
        }
        ActQuant::Uniform { zero, .. } => l - zero as i64,
        _ => l,
    }
}

/// What a product's integer sum is divided by besides the steps: 2¹⁵ for log2 probabilities
/// (their levels stand for `P(q)/2^15`), else 1.
fn fixed_point_div(qa: ActQuant) -> f32 {
    match qa {
        ActQuant::Log2 { .. } => (1u32 << LOG2_FRAC_BITS) as f32,
        _ => 1.0,
    }
}

#[allow(clippy::too_many_arguments)] // The shapes and both quantizers, spelled out.
fn qmatmul_oracle(
    h: usize,
    m: usize,
    k: usize,
    n: usize,
    tb: bool,
    qa: ActQuant,
    qb: ActQuant,
    a: &[f32],
    b: &[f32],
) -> Vec<f32> {
    let (ia, ib) = (1.0 / qa.scale(), 1.0 / qb.scale());
    let av = |x: f32| static_level(qa, x, ia);
    let deq = qa.scale() * qb.scale() / fixed_point_div(qa);
    let mut out = Vec::new();
    for t in 0..h {
        for i in 0..m {
            for j in 0..n {
                let acc: i64 = (0..k)
                    .map(|s| {
                        let bi = if tb {
                            t * n * k + j * k + s
                        } else {
                            t * k * n + s * n + j
                        };
                        av(a[t * m * k + i * k + s]) * qb.level(b[bi], ib) as i64
                    })
                    .sum();
                out.push(acc as i32 as f32 * deq);
            }
        }
    }
    out
}

#[test]
fn qmatmul_uniform_and_log2_equal_the_oracle_on_every_tier() {
    for (h, m, k, n) in [(1, 1, 1, 1), (3, 7, 16, 5), (2, 33, 40, 33)] {
        for tb in [false, true] {
            for (qa, bits) in [
                (uniform(8, -2.0, 2.0), 8),
                (uniform(4, -1.0, 3.0), 4),
                (
                    ActQuant::Log2 {
                        bits: 4,
                        scale: 0.9,
                    },
                    8,
                ),
                (
                    ActQuant::Log2 {
                        bits: 8,
                        scale: 1.0,
                    },
                    6,
                ),
                (
                    ActQuant::Log2 {
                        bits: 5,
                        scale: 0.5,
                    },
                    5,
                ),
                (
                    ActQuant::Log2 {
                        bits: 3,
                        scale: 1.0,
                    },
                    3,
                ),
            ] {
                let qb = ActQuant::Symmetric {
                    bits,
                    scale: 1.7 / symmetric_max(bits) as f32,
                };
                let g = qmatmul_graph(h, m, k, n, tb, qa, qb);
                g.validate().unwrap();
                let log2 = matches!(qa, ActQuant::Log2 { .. });
                let a: Vec<f32> = weights(h * m * k, 31)
                    .iter()
                    .map(|v| if log2 { v.abs() } else { v * 2.2 })
                    .collect();
                let b: Vec<f32> = weights(h * k * n, 32).iter().map(|v| v * 2.0).collect();
                let want = qmatmul_oracle(h, m, k, n, tb, qa, qb, &a, &b);
                let ta = Tensor::new(vec![h, m, k], a).unwrap();
                let tbv = Tensor::new(g.shape(1).to_vec(), b).unwrap();
                for ks in tiers() {
                    for threads in [1, 2] {
                        let got = run_on(&g, ks, threads, &[&ta, &tbv]);
                        assert_eq!(
                            got,
                            want,
                            "{h}x{m}x{k}x{n} tb {tb} {qa:?} {}",
                            ks.tier().name()
                        );
                    }
                }
            }
        }
    }
}

/// A dynamic operand's step and its levels, written out from the documented contract: the
/// affine side spans `[min(0, min x), max(0, max x)]` in `2^bits − 1` steps with zero point
/// `round_half_even(−lo/step)`; the symmetric side spans `±max |x|` in `2^(bits−1) − 1` steps
/// each way; NaN is ignored for the range and quantizes as 0; a degenerate range gets step 1.
/// Returns `(step, levels minus the zero point)`.
fn dynamic_levels(act: ActQuant, x: &[f32]) -> (f32, Vec<i64>) {
    let finite = || x.iter().filter(|v| !v.is_nan());
    let (bits, symmetric) = match act {
        ActQuant::Dynamic { bits } => (bits, false),
        ActQuant::DynamicSymmetric { bits } => (bits, true),
        _ => unreachable!(),
    };
    let (min, max) = (
        finite().fold(0f32, |a, &v| a.min(v)),
        finite().fold(0f32, |a, &v| a.max(v)),
    );
    let (lo, hi, span) = if symmetric {
        let q = symmetric_max(bits) as i64;
        (-q, q, (-min).max(max) / q as f32)
    } else {
        let q = (1i64 << bits) - 1;
        (0, q, (max - min) / q as f32)
    };
    let (step, inv) = if span.is_normal() && (1.0 / span).is_normal() {
        (span, 1.0 / span)
    } else {
        (1.0, 1.0)
    };
    let zero = match symmetric {
        true => 0,
        false => ((-min * inv).round_ties_even() as i64).clamp(0, hi),
    };
    let q = x
        .iter()
        .map(|&v| {
            let v = if v.is_nan() { 0.0 } else { v * inv };
            (v.round_ties_even() as i64 + zero).clamp(lo, hi) - zero
        })
        .collect();
    (step, q)
}

/// `a [h, m, k] · b` with dynamic steps on either side, from [`dynamic_levels`] per row of `a`
/// and per column of the product, the exact sum in i64, then `acc · (s_a·s_b / d)` in f32
/// (`d` = 2¹⁵ for log2 probabilities, else 1).
#[allow(clippy::too_many_arguments)] // The shapes and both quantizers, spelled out.
fn dynamic_qmatmul_oracle(
    (h, m, k, n): (usize, usize, usize, usize),
    tb: bool,
    qa: ActQuant,
    qb: ActQuant,
    a: &[f32],
    b: &[f32],
) -> Vec<f32> {
    let div = fixed_point_div(qa);
    let static_levels = |q: ActQuant, x: &[f32]| -> (f32, Vec<i64>) {
        let inv = 1.0 / q.scale();
        (
            q.scale(),
            x.iter().map(|&v| static_level(q, v, inv)).collect(),
        )
    };
    let side = |q: ActQuant, x: &[f32]| match q.is_dynamic() {
        true => dynamic_levels(q, x),
        false => static_levels(q, x),
    };
    let mut out = Vec::new();
    for t in 0..h {
        let rows: Vec<(f32, Vec<i64>)> = (0..m)
            .map(|i| side(qa, &a[(t * m + i) * k..][..k]))
            .collect();
        let cols: Vec<(f32, Vec<i64>)> = (0..n)
            .map(|j| {
                let col: Vec<f32> = (0..k)
                    .map(|s| match tb {
                        true => b[t * n * k + j * k + s],
                        false => b[t * k * n + s * n + j],
                    })
                    .collect();
                side(qb, &col)
            })
            .collect();
        for (sa, ra) in &rows {
            for (sb, cb) in &cols {
                let acc: i64 = ra.iter().zip(cb).map(|(x, y)| x * y).sum();
                out.push(acc as i32 as f32 * (sa * sb / div));
            }
        }
    }
    out
}

#[test]
fn dynamic_qmatmul_equals_the_per_row_and_column_oracle_on_every_tier() {
    let dy = |bits| ActQuant::Dynamic { bits };
    let dys = |bits| ActQuant::DynamicSymmetric { bits };
    let log2 = ActQuant::Log2 {
        bits: 4,
        scale: 0.9,
    };
    let sym = |bits: u8| ActQuant::Symmetric {
        bits,
        scale: 1.7 / symmetric_max(bits) as f32,
    };
    let cases = [
        (dy(4), dys(4)),
        (dy(8), dys(8)),
        (dy(3), dys(6)),
        (uniform(4, -1.0, 3.0), dys(4)),
        (log2, dys(4)),
        (dy(4), sym(4)),
    ];
    for (h, m, k, n) in [(1, 1, 1, 1), (3, 7, 16, 5), (2, 33, 40, 33)] {
        for tb in [false, true] {
            for (qa, qb) in cases {
                let g = qmatmul_graph(h, m, k, n, tb, qa, qb);
                g.validate().unwrap();
                let probs = matches!(qa, ActQuant::Log2 { .. });
                let mut a: Vec<f32> = weights(h * m * k, 41)
                    .iter()
                    .map(|v| if probs { v.abs() } else { v * 2.2 })
                    .collect();
                // A high-norm query row every 5th row, an all-zero one every 6th, a NaN.
                for (r, row) in a.chunks_mut(k).enumerate() {
                    match r % 6 {
                        2 if !probs => row.iter_mut().for_each(|v| *v *= 50.0),
                        5 => row.fill(0.0),
                        _ => {}
                    }
                }
                a[0] = f32::NAN;
                let mut b: Vec<f32> = weights(h * k * n, 42).iter().map(|v| v * 2.0).collect();
                // An outlier key / channel: one column of the product 40 times the others.
                for s in 0..k {
                    let i = if tb { s } else { s * n };
                    b[i] *= 40.0;
                }
                let want = dynamic_qmatmul_oracle((h, m, k, n), tb, qa, qb, &a, &b);
                let ta = Tensor::new(vec![h, m, k], a).unwrap();
                let tbv = Tensor::new(g.shape(1).to_vec(), b).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                for ks in tiers() {
                    for threads in [1, 2] {
                        let got = run_on(&g, ks, threads, &[&ta, &tbv]);
                        assert_eq!(
                            bits(&got),
                            bits(&want),
                            "{h}x{m}x{k}x{n} tb {tb} {qa:?} {qb:?} {} threads {threads}",
                            ks.tier().name()
                        );
                    }
                }
            }
        }
    }
}
