//! The error model of activation × activation products: the batched product error agrees with
//! a naive triple loop, and it sees what the old per-element model missed (probabilities
//! rounded to zero all in one direction).

use qvit_device::graph::{Node, Source, Value};
use qvit_device::quant::ActQuant;
use qvit_device::{Graph, Op};
use qvit_host::fixtures::SplitMix;
use qvit_host::quant::layer_error::product_error;

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
    let value = |name: &str, shape: &[usize], source| Value {
        name: name.into(),
        shape: shape.to_vec(),
        source,
    };
    Graph {
        values: vec![
            value("a", a, Source::Input(0)),
            value("b", b, Source::Input(1)),
            value("y", &out, Source::Node(0)),
        ],
        nodes: vec![Node {
            name: "mm".into(),
            op: Op::MatMul { transpose_b },
            inputs: vec![0, 1],
            output: 2,
        }],
        inputs: vec![0, 1],
        outputs: vec![2],
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
    let mut rng = SplitMix(7);
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
        let got = product_error(&g, 0, &[(a.clone(), b.clone())], &qa, &qb);
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
    let product = product_error(&g, 0, &[(a, v)], &qa, &qv);
    // Half of every row's mass is lost: the output falls from 1 to 1/2.
    assert!((product - 0.25).abs() < 0.01, "product error {product}");
    assert!(element < 0.01, "element error {element}");
}
