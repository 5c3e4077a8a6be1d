//! f32 executor on a synthetic DeiT-Tiny-shaped graph (patch-embed conv 16×16 on 224×224,
//! cls token + position embedding, 12 pre-norm blocks of width 192 with 3 heads and MLP 768,
//! final LayerNorm, 1000-class head) with seeded random weights, at 1 and 2 threads.
//!
//! `cargo bench -p qvit-device --bench exec`

use criterion::{Criterion, criterion_group, criterion_main};
use qvit_device::exec::Executor;
use qvit_device::graph::{BinaryOp, GeluKind, Graph, Node, Op, Source, Value};
use qvit_device::{Tensor, ValueId};
use qvit_kernels::KernelSet;
use std::hint::black_box;

const D: usize = 192;
const HEADS: usize = 3;
const HD: usize = D / HEADS;
const MLP: usize = 768;
const TOK: usize = 197;
const BLOCKS: usize = 12;
const CLASSES: usize = 1000;

struct B {
    g: Graph,
    seed: u64,
}

impl B {
    fn push(&mut self, shape: &[usize], source: Source) -> ValueId {
        let name = format!("v{}", self.g.values.len());
        self.g.values.push(Value {
            name,
            shape: shape.to_vec(),
            source,
        });
        (self.g.values.len() - 1) as ValueId
    }
    /// Seeded uniform values in `[-a, a)`.
    fn rand(&mut self, shape: &[usize], a: f32) -> ValueId {
        use rand_distr::{Distribution, Uniform};
        use rand_xoshiro::Xoshiro256PlusPlus;
        use rand_xoshiro::rand_core::SeedableRng;
        let n: usize = shape.iter().product();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed);
        self.seed += 1;
        let range = Uniform::new(-a, a).expect("a > 0");
        let data = (0..n).map(|_| range.sample(&mut rng)).collect();
        self.push(shape, Source::Const(data))
    }
    fn fill(&mut self, shape: &[usize], v: f32) -> ValueId {
        self.push(shape, Source::Const(vec![v; shape.iter().product()]))
    }
    fn node(&mut self, op: Op, inputs: &[ValueId], shape: &[usize]) -> ValueId {
        let n = self.g.nodes.len();
        let out = self.push(shape, Source::Node(n));
        self.g.nodes.push(Node {
            name: format!("n{n}"),
            op,
            inputs: inputs.to_vec(),
            output: out,
        });
        out
    }
    fn linear(&mut self, x: ValueId, lead: &[usize], k: usize, n: usize) -> ValueId {
        let w = self.rand(&[n, k], 1.0 / (k as f32).sqrt());
        let b = self.rand(&[n], 0.02);
        let shape: Vec<usize> = lead.iter().copied().chain([n]).collect();
        self.node(Op::Linear, &[x, w, b], &shape)
    }
    fn ln(&mut self, x: ValueId, shape: &[usize]) -> ValueId {
        let c = *shape.last().unwrap();
        let g = self.fill(&[c], 1.0);
        let b = self.fill(&[c], 0.0);
        self.node(Op::LayerNorm { eps: 1e-6 }, &[x, g, b], shape)
    }
}

fn deit_tiny() -> Graph {
    let mut b = B {
        g: Graph::default(),
        seed: 7,
    };
    let x = b.push(&[1, 3, 224, 224], Source::Input(0));
    b.g.inputs.push(x);
    let pw = b.rand(&[D, 3, 16, 16], 0.05);
    let pb = b.rand(&[D], 0.02);
    let conv = Op::Conv2d {
        strides: [16, 16],
        pads: [0; 4],
        dilations: [1, 1],
        group: 1,
    };
    let p = b.node(conv, &[x, pw, pb], &[1, D, 14, 14]);
    let p = b.node(Op::Reshape, &[p], &[1, D, 196]);
    let p = b.node(
        Op::Transpose {
            perm: vec![0, 2, 1],
        },
        &[p],
        &[1, 196, D],
    );
    let cls = b.rand(&[1, 1, D], 0.02);
    let t = b.node(Op::Concat { axis: 1 }, &[cls, p], &[1, TOK, D]);
    let pos = b.rand(&[1, TOK, D], 0.02);
    let mut h = b.node(Op::Binary(BinaryOp::Add), &[t, pos], &[1, TOK, D]);
    let td = [1, TOK, D];
    for _ in 0..BLOCKS {
        let n1 = b.ln(h, &td);
        let qkv = b.linear(n1, &[1, TOK], D, 3 * D);
        let qkv = b.node(Op::Reshape, &[qkv], &[1, TOK, 3, HEADS, HD]);
        let qkv = b.node(
            Op::Transpose {
                perm: vec![2, 0, 3, 1, 4],
            },
            &[qkv],
            &[3, 1, HEADS, TOK, HD],
        );
        let part = |b: &mut B, i: usize| {
            let op = Op::Gather {
                axis: 0,
                indices: vec![i],
                indices_shape: vec![],
            };
            b.node(op, &[qkv], &[1, HEADS, TOK, HD])
        };
        let (q, k, v) = (part(&mut b, 0), part(&mut b, 1), part(&mut b, 2));
        let a = b.node(
            Op::MatMul { transpose_b: true },
            &[q, k],
            &[1, HEADS, TOK, TOK],
        );
        let s = b.fill(&[], 1.0 / (HD as f32).sqrt());
        let a = b.node(Op::Binary(BinaryOp::Mul), &[a, s], &[1, HEADS, TOK, TOK]);
        let a = b.node(Op::Softmax { axis: 3 }, &[a], &[1, HEADS, TOK, TOK]);
        let c = b.node(
            Op::MatMul { transpose_b: false },
            &[a, v],
            &[1, HEADS, TOK, HD],
        );
        let c = b.node(
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[c],
            &[1, TOK, HEADS, HD],
        );
        let c = b.node(Op::Reshape, &[c], &td);
        let o = b.linear(c, &[1, TOK], D, D);
        h = b.node(Op::Binary(BinaryOp::Add), &[h, o], &td);
        let n2 = b.ln(h, &td);
        let f = b.linear(n2, &[1, TOK], D, MLP);
        let f = b.node(Op::Gelu(GeluKind::Erf), &[f], &[1, TOK, MLP]);
        let f = b.linear(f, &[1, TOK], MLP, D);
        h = b.node(Op::Binary(BinaryOp::Add), &[h, f], &td);
    }
    let n = b.ln(h, &td);
    let cls = b.node(
        Op::Gather {
            axis: 1,
            indices: vec![0],
            indices_shape: vec![],
        },
        &[n],
        &[1, D],
    );
    let logits = b.linear(cls, &[1], D, CLASSES);
    b.g.outputs.push(logits);
    b.g
}

fn bench(c: &mut Criterion) {
    let mut ex = Executor::new(deit_tiny(), KernelSet::detect()).expect("plan DeiT-Tiny");
    let img = {
        use rand_distr::{Distribution, Uniform};
        use rand_xoshiro::rand_core::SeedableRng;
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let range = Uniform::new(-0.5f32, 0.5).expect("a valid range");
        (0..3 * 224 * 224).map(|_| range.sample(&mut rng)).collect()
    };
    let x = Tensor::new(vec![1, 3, 224, 224], img).unwrap();
    profile(&mut ex, &x);
    let mut group = c.benchmark_group("exec_f32_deit_tiny");
    group.sample_size(20);
    for threads in [1, 2] {
        ex.set_threads(threads);
        group.bench_function(format!("threads_{threads}"), |bch| {
            bch.iter(|| black_box(ex.run(&[&x]).unwrap()))
        });
    }
    group.finish();
}

/// Prints where one single-threaded run spends its time, per op kind, timed between observer
/// calls (each call comes right after its node finishes).
fn profile(ex: &mut Executor, x: &Tensor) {
    ex.set_threads(1);
    let kinds: Vec<String> = ex
        .graph()
        .nodes
        .iter()
        .map(|n| {
            format!("{:?}", n.op)
                .split([' ', '(', '{'])
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let mut totals: Vec<(String, f64)> = Vec::new();
    for _ in 0..3 {
        let mut at = 0;
        let mut t = std::time::Instant::now();
        let mut per = vec![0.0f64; kinds.len()];
        ex.run_observed(&[x], &mut |_, _| {
            per[at] = t.elapsed().as_secs_f64() * 1e3;
            at += 1;
            t = std::time::Instant::now();
        })
        .unwrap();
        totals.clear();
        for (k, ms) in kinds.iter().zip(per) {
            match totals.iter_mut().find(|(n, _)| n == k) {
                Some(e) => e.1 += ms,
                None => totals.push((k.clone(), ms)),
            }
        }
    }
    // The machine may be shared: on-CPU time of this thread (Linux schedstat) is a steadier
    // estimate of the single-thread cost than wall time.
    let runs = 10;
    let (wall, cpu0) = (std::time::Instant::now(), thread_cpu_ns());
    for _ in 0..runs {
        black_box(ex.run(&[x]).unwrap());
    }
    let wall_ms = wall.elapsed().as_secs_f64() * 1e3 / runs as f64;
    match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => {
            let cpu_ms = (b - a) as f64 / 1e6 / runs as f64;
            eprintln!("1 thread: {wall_ms:.1} ms wall, {cpu_ms:.1} ms on-CPU per inference");
        }
        _ => eprintln!("1 thread: {wall_ms:.1} ms wall per inference"),
    }
    totals.sort_by(|a, b| b.1.total_cmp(&a.1));
    let sum: f64 = totals.iter().map(|t| t.1).sum();
    eprintln!("single-thread profile, {sum:.1} ms total:");
    for (k, ms) in totals {
        eprintln!("  {k:<10} {ms:7.2} ms");
    }
}

/// Nanoseconds this thread has spent on a CPU, where Linux reports it.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

criterion_group!(benches, bench);
criterion_main!(benches);
