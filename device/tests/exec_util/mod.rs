//! Helpers shared by the executor tests: graph building, naive multi-index loops, comparison.
#![allow(dead_code)]

pub mod vit_block;

use qvit_device::graph::{Graph, Node, Op, Source, Value};
use qvit_device::{Tensor, ValueId};

/// Builds graphs value by value.
#[derive(Default)]
pub struct Builder {
    pub g: Graph,
}

impl Builder {
    pub fn input(&mut self, shape: &[usize]) -> ValueId {
        let n = self.g.inputs.len();
        let id = self.push(format!("in{n}"), shape, Source::Input(n));
        self.g.inputs.push(id);
        id
    }

    pub fn konst(&mut self, shape: &[usize], data: Vec<f32>) -> ValueId {
        assert_eq!(data.len(), shape.iter().product::<usize>());
        self.push(
            format!("c{}", self.g.values.len()),
            shape,
            Source::Const(data),
        )
    }

    pub fn node(&mut self, op: Op, inputs: &[ValueId], out_shape: &[usize]) -> ValueId {
        let n = self.g.nodes.len();
        let id = self.push(
            format!("v{}", self.g.values.len()),
            out_shape,
            Source::Node(n),
        );
        self.g.nodes.push(Node {
            name: format!("n{n}"),
            op,
            inputs: inputs.to_vec(),
            output: id,
        });
        id
    }

    pub fn output(&mut self, id: ValueId) {
        self.g.outputs.push(id);
    }

    fn push(&mut self, name: String, shape: &[usize], source: Source) -> ValueId {
        self.g.values.push(Value {
            name,
            shape: shape.to_vec(),
            source,
        });
        (self.g.values.len() - 1) as ValueId
    }
}

/// Every multi-index of `shape`, row-major.
pub fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let total: usize = shape.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0; shape.len()];
    for _ in 0..total {
        out.push(idx.clone());
        for ax in (0..shape.len()).rev() {
            idx[ax] += 1;
            if idx[ax] < shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    out
}

/// Row-major flat offset of `idx` in `shape`.
pub fn offset(shape: &[usize], idx: &[usize]) -> usize {
    shape.iter().zip(idx).fold(0, |acc, (&d, &i)| acc * d + i)
}

/// The element of `data` (shape `shape`) that broadcasting maps to output index `out_idx`.
pub fn bcast_get(data: &[f64], shape: &[usize], out_idx: &[usize]) -> f64 {
    let lead = out_idx.len() - shape.len();
    let idx: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(j, &d)| if d == 1 { 0 } else { out_idx[lead + j] })
        .collect();
    data[offset(shape, &idx)]
}

/// Seeded uniform values in `[lo, hi)`.
pub fn rand_vec(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    use rand_distr::{Distribution, Uniform};
    use rand_xoshiro::Xoshiro256PlusPlus;
    use rand_xoshiro::rand_core::SeedableRng;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let range = Uniform::new(lo, hi).expect("lo < hi, both finite");
    (0..n).map(|_| range.sample(&mut rng)).collect()
}

pub fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Asserts `|got - want| ≤ atol + rtol·|want|` element-wise, reporting the first mismatch.
pub fn assert_close(got: &[f32], want: &[f64], atol: f64, rtol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g as f64 - w).abs() <= atol + rtol * w.abs()
            || (g.is_nan() && w.is_nan())
            || (g as f64 == w);
        assert!(ok, "{what}: element {i}: got {g}, want {w}");
    }
}

/// Runs a graph with one input list and returns its first output.
pub fn run1(g: Graph, inputs: &[Tensor]) -> Tensor {
    let mut ex =
        qvit_device::exec::Executor::new(g, qvit_kernels::KernelSet::detect()).expect("plan");
    let refs: Vec<&Tensor> = inputs.iter().collect();
    ex.run(&refs).expect("run").remove(0)
}

/// Naive erf in f64 (Maclaurin series, then continued fraction for the tail).
pub fn erf64(x: f64) -> f64 {
    let ax = x.abs();
    let r = if ax < 3.0 {
        let mut term = ax;
        let mut sum = ax;
        let mut n = 0.0;
        while term.abs() > 1e-18 {
            n += 1.0;
            term *= -ax * ax / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(x) ≈ e^{-x²}/(x√π) · (1 - 1/(2x²) + 3/(4x⁴)); good to 1e-6 for x ≥ 3.
        let x2 = ax * ax;
        1.0 - (-x2).exp() / (ax * std::f64::consts::PI.sqrt()) * (1.0 - 0.5 / x2 + 0.75 / (x2 * x2))
    };
    if x < 0.0 { -r } else { r }
}
