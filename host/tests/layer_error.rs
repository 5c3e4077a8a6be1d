//! The error model of activation × activation products: the batched product error and the
//! attention-output error of QKᵀ agree with naive loops, and the product error sees what the old
//! per-element model missed (probabilities rounded to zero all in one direction); a Linear's
//! input error, measured at its output, agrees with a naive loop and sees what the per-element
//! error misses (a channel that holds the power but that the weights ignore).

use qvit_device::graph::{BinaryOp, Node, Source, Value};
use qvit_device::quant::ActQuant;
use qvit_device::{Graph, Op};
use qvit_host::fixtures::SeededRng;
use qvit_host::quant::layer_error::{
    attention_error, linear_input_error, logits_path, product_error,
};

/// A graph with one `MatMul` of two inputs `a` and `b`.
fn matmul(a: &[usize], b: &[usize], transpose_b: bool) -> Graph {
    let (m, n) = (
        a[a.len() - 2],
        if transpose_b {
            b[b.len() - 2]
        } else {
            b[b.len() - 1]
        },
    );
    let mut out = a.to_vec();
    *out.last_mut().unwrap() = n;
    out[a.len() - 2] = m;
    one_node(
        &[("a", a, Source::Input(0)), ("b", b, Source::Input(1))],
        &out,
        Op::MatMul { transpose_b },
    )
}

/// A graph of one node `op` reading `operands` (name, shape, source) and writing `y`.
fn one_node(operands: &[(&str, &[usize], Source)], y: &[usize], op: Op) -> Graph {
    let value = |name: &str, shape: &[usize], source| Value {
        name: name.into(),
        shape: shape.to_vec(),
        source,
    };
    let mut values: Vec<Value> = (operands.iter())
        .map(|(name, shape, source)| value(name, shape, source.clone()))
        .collect();
    values.push(value("y", y, Source::Node(0)));
    let inputs = (operands.iter().enumerate())
        .filter(|(_, o)| matches!(o.2, Source::Input(_)))
        .map(|(i, _)| i as u32)
        .collect();
    Graph {
        nodes: vec![Node {
            name: "node".into(),
            op,
            inputs: (0..operands.len() as u32).collect(),
            output: operands.len() as u32,
        }],
        values,
        inputs,
        outputs: vec![operands.len() as u32],
    }
}

/// `Σ‖Q(A)Q(B) − AB‖² / Σ‖AB‖²` by triple loops in f64.
fn naive(
    a: &[f32],
    b: &[f32],
    dims: (usize, usize, usize, usize),
    tb: bool,
    q: [&ActQuant; 2],
) -> f64 {
    let (batch, m, k, n) = dims;
    let at = |x: &[f32], i: usize| x[i] as f64;
    let (mut err, mut pow) = (0.0, 0.0);
    for t in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let (mut y, mut yq) = (0.0, 0.0);
                for l in 0..k {
                    let ia = t * m * k + i * k + l;
                    let ib = t * k * n + if tb { j * k + l } else { l * n + j };
                    y += at(a, ia) * at(b, ib);
                    yq += q[0].fake(a[ia]) as f64 * q[1].fake(b[ib]) as f64;
                }
                err += (yq - y).powi(2);
                pow += y * y;
            }
        }
    }
    err / pow
}

#[test]
fn product_error_matches_a_naive_product() {
    let (batch, m, k, n) = (3, 5, 7, 4);
    let mut rng = SeededRng::new(7);
    let a = rng.normals(batch * m * k, 1.0);
    let b = rng.normals(batch * k * n, 1.0);
    let qa = ActQuant::Uniform {
        bits: 4,
        scale: 0.4,
        zero: 8,
    };
    let qb = ActQuant::Symmetric {
        bits: 3,
        scale: 0.5,
    };
    for tb in [false, true] {
        let bshape = if tb { [batch, n, k] } else { [batch, k, n] };
        let g = matmul(&[batch, m, k], &bshape, tb);
        let got = product_error(&g, 0, &[(a.clone(), b.clone())], &[(qa, qb)])[0];
        let want = naive(&a, &b, (batch, m, k, n), tb, [&qa, &qb]);
        assert!(want > 1e-4, "the quantizers must actually err ({want})");
        assert!(
            (got - want).abs() <= 1e-4 * want,
            "transpose_b {tb}: {got} against {want}"
        );
    }
}

#[test]
fn probabilities_rounded_to_zero_show_in_the_product_not_in_the_elements() {
    // Each row: one probability of 1/2 and 254 of 1/508 = 2⁻⁸·(1/2)·(256/254), below the
    // smallest level of a 3-bit log2 quantizer topped at 1/2 (seven octaves).
    let (rows, cols) = (4, 255);
    let mut a = Vec::new();
    for _ in 0..rows {
        a.push(0.5);
        a.extend(std::iter::repeat_n(0.5 / (cols - 1) as f32, cols - 1));
    }
    let v = vec![1.0f32; cols]; // attn·V with V = 1 sums each row's probabilities
    let qa = ActQuant::Log2 {
        bits: 3,
        scale: 0.5,
    };
    let qv = ActQuant::Symmetric {
        bits: 8,
        scale: 1.0 / 127.0,
    };
    let element: f64 = a
        .iter()
        .map(|&x| (qa.fake(x) as f64 - x as f64).powi(2))
        .sum::<f64>()
        / a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>();
    let g = matmul(&[1, rows, cols], &[1, cols, 1], false);
    let product = product_error(&g, 0, &[(a, v)], &[(qa, qv)])[0];
    // Half of every row's mass is lost: the output falls from 1 to 1/2.
    assert!((product - 0.25).abs() < 0.01, "product error {product}");
    assert!(element < 0.01, "element error {element}");
}

/// `softmax(c·Q Kᵀ)·V` in f64 for one head: q `[m, d]`, k `[n, d]`, v `[n, e]`.
fn attention(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    (m, n, d, e): (usize, usize, usize, usize),
    c: f64,
) -> Vec<f64> {
    let mut out = vec![0.0; m * e];
    for i in 0..m {
        let logits: Vec<f64> = (0..n)
            .map(|j| c * (0..d).map(|l| q[i * d + l] * k[j * d + l]).sum::<f64>())
            .collect();
        let top = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = logits.iter().map(|x| (x - top).exp()).collect();
        let sum: f64 = w.iter().sum();
        for j in 0..n {
            for t in 0..e {
                out[i * e + t] += w[j] / sum * v[j * e + t];
            }
        }
    }
    out
}

#[test]
fn attention_error_matches_a_naive_softmax_attention() {
    let (m, n, d, e) = (4, 5, 8, 3);
    let value = |name: &str, shape: &[usize], source| Value {
        name: name.into(),
        shape: shape.to_vec(),
        source,
    };
    let node = |op, inputs: Vec<u32>, output| Node {
        name: format!("n{output}"),
        op,
        inputs,
        output,
    };
    let g = Graph {
        values: vec![
            value("q", &[1, m, d], Source::Input(0)),
            value("k", &[1, n, d], Source::Input(1)),
            value("v", &[1, n, e], Source::Input(2)),
            value("logits", &[1, m, n], Source::Node(0)),
            value("two", &[1], Source::Const(vec![2.0])),
            value("scaled", &[1, m, n], Source::Node(1)),
            value("p", &[1, m, n], Source::Node(2)),
            value("y", &[1, m, e], Source::Node(3)),
        ],
        nodes: vec![
            node(Op::MatMul { transpose_b: true }, vec![0, 1], 3),
            node(Op::Binary(BinaryOp::Div), vec![3, 4], 5),
            node(Op::Softmax { axis: 2 }, vec![5], 6),
            node(Op::MatMul { transpose_b: false }, vec![6, 2], 7),
        ],
        inputs: vec![0, 1, 2],
        outputs: vec![7],
    };
    let path = logits_path(&g, 0).expect("QKᵀ → Div → Softmax → attn·V");
    assert_eq!(path, (0.5, 3));
    assert_eq!(logits_path(&g, 3), None, "attn·V makes no logits");

    let mut rng = SeededRng::new(11);
    let (q, k, v) = (
        rng.normals(m * d, 1.0),
        rng.normals(n * d, 1.0),
        rng.normals(n * e, 1.0),
    );
    let qa = ActQuant::Symmetric {
        bits: 3,
        scale: 0.6,
    };
    let qb = ActQuant::Symmetric {
        bits: 4,
        scale: 0.3,
    };
    let f64s = |x: &[f32], q: Option<&ActQuant>| -> Vec<f64> {
        x.iter()
            .map(|&t| q.map_or(t, |q| q.fake(t)) as f64)
            .collect()
    };
    let vv = f64s(&v, None);
    let exact = attention(&f64s(&q, None), &f64s(&k, None), &vv, (m, n, d, e), 0.5);
    let approx = attention(
        &f64s(&q, Some(&qa)),
        &f64s(&k, Some(&qb)),
        &vv,
        (m, n, d, e),
        0.5,
    );
    let want = exact
        .iter()
        .zip(&approx)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        / exact.iter().map(|a| a * a).sum::<f64>();
    let got = attention_error(&g, 0, &[(q, k)], path, &[(Vec::new(), v)], &[(qa, qb)])[0];
    assert!(want > 1e-4, "the quantizers must actually err ({want})");
    assert!((got - want).abs() <= 1e-3 * want, "{got} against {want}");
}

/// A graph with one `Linear` of input `x [1, m, k]` and constant weight `w [n, k]`.
fn linear(m: usize, k: usize, w: Vec<f32>) -> Graph {
    let n = w.len() / k;
    one_node(
        &[
            ("x", &[1, m, k], Source::Input(0)),
            ("w", &[n, k], Source::Const(w)),
        ],
        &[1, m, n],
        Op::Linear,
    )
}

/// `Σ‖Q(X)Wᵀ − XWᵀ‖² / Σ‖XWᵀ‖²` by loops in f64.
fn naive_linear(xs: &[Vec<f32>], w: &[f32], k: usize, q: &ActQuant) -> f64 {
    let n = w.len() / k;
    let (mut err, mut pow) = (0.0, 0.0);
    for x in xs {
        for row in x.chunks_exact(k) {
            for o in 0..n {
                let wr = &w[o * k..(o + 1) * k];
                let y: f64 = row.iter().zip(wr).map(|(&a, &b)| a as f64 * b as f64).sum();
                let yq: f64 = (row.iter().zip(wr))
                    .map(|(&a, &b)| q.fake(a) as f64 * b as f64)
                    .sum();
                err += (yq - y).powi(2);
                pow += y * y;
            }
        }
    }
    err / pow
}

#[test]
fn linear_input_error_matches_a_naive_product() {
    let (m, k, n) = (7, 12, 5);
    let mut rng = SeededRng::new(11);
    let mut draw = |len: usize| {
        (0..len)
            .map(|_| rng.uniform() * 2.0 - 1.0)
            .collect::<Vec<_>>()
    };
    let w = draw(n * k);
    let xs: Vec<(Vec<f32>, Vec<f32>)> = (0..3).map(|_| (draw(m * k), Vec::new())).collect();
    let g = linear(m, k, w.clone());
    let qs = [
        ActQuant::Uniform {
            bits: 3,
            scale: 0.3,
            zero: 3,
        },
        ActQuant::Uniform {
            bits: 5,
            scale: 0.07,
            zero: 15,
        },
    ];
    let got = linear_input_error(&g, 0, &xs, &qs);
    let inputs: Vec<Vec<f32>> = xs.iter().map(|(x, _)| x.clone()).collect();
    for (q, e) in qs.iter().zip(&got) {
        let want = naive_linear(&inputs, &w, k, q);
        assert!((e - want).abs() <= 1e-6 * want.max(1e-12), "{e} vs {want}");
    }
    assert!(got[0] > got[1], "fewer bits, larger error: {got:?}");
}

#[test]
fn a_channel_the_weights_ignore_does_not_hide_the_error_of_the_others() {
    // Channel 0 holds nearly all the input power and sets the quantizer's range, so the
    // per-element relative error is small; the weights read only channels 1.., whose small
    // values the coarse step wipes out, so the output error is large.
    let (m, k, n) = (16, 8, 4);
    let mut rng = SeededRng::new(5);
    let x: Vec<f32> = (0..m * k)
        .map(|i| {
            if i % k == 0 {
                40.0
            } else {
                rng.uniform() - 0.5
            }
        })
        .collect();
    let w: Vec<f32> = (0..n * k)
        .map(|i| if i % k == 0 { 0.0 } else { rng.uniform() - 0.5 })
        .collect();
    let q = ActQuant::Uniform {
        bits: 4,
        scale: 41.0 / 15.0,
        zero: 0,
    };
    let elementwise = {
        let e: f64 = x
            .iter()
            .map(|&v| (q.fake(v) as f64 - v as f64).powi(2))
            .sum();
        e / x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>()
    };
    let g = linear(m, k, w);
    let output = linear_input_error(&g, 0, &[(x, Vec::new())], &[q])[0];
    assert!(elementwise < 0.01, "per-element error {elementwise}");
    assert!(output > 0.5, "output error {output}");
}
