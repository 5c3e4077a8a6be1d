//! The hand-built pre-norm ViT block of the executor tests: x [1, T, D] → y [1, T, D], with
//! its attention written as the exporters write it (Reshape, Transpose, Slice, MatMul, a
//! constant scale, Softmax).

use super::{Builder, rand_vec};
use qvit_device::graph::{BinaryOp, GeluKind, Op};
use qvit_device::{Graph, ValueId};

/// Tokens: more than the 64 rows a fused Linear multiplies at a time, and not a multiple of it,
/// so row chunks (and their last, short one) are exercised on every tier.
pub const T: usize = 67;
pub const D: usize = 12; // width
pub const H: usize = 3; // heads
pub const HD: usize = D / H;
pub const F: usize = 20; // MLP hidden
pub const EPS: f32 = 1e-6;

pub struct Weights {
    pub ln1: (Vec<f32>, Vec<f32>),
    pub qkv: (Vec<f32>, Vec<f32>),
    pub proj: (Vec<f32>, Vec<f32>),
    pub ln2: (Vec<f32>, Vec<f32>),
    pub fc1: (Vec<f32>, Vec<f32>),
    pub fc2: (Vec<f32>, Vec<f32>),
}

pub fn weights() -> Weights {
    let r = |n: usize, s: u64, a: f32| rand_vec(n, s, -a, a);
    Weights {
        ln1: (rand_vec(D, 1, 0.5, 1.5), r(D, 2, 0.2)),
        qkv: (r(3 * D * D, 3, 0.5), r(3 * D, 4, 0.1)),
        proj: (r(D * D, 5, 0.5), r(D, 6, 0.1)),
        ln2: (rand_vec(D, 7, 0.5, 1.5), r(D, 8, 0.2)),
        fc1: (r(F * D, 9, 0.5), r(F, 10, 0.1)),
        fc2: (r(D * F, 11, 0.3), r(D, 12, 0.1)),
    }
}

/// The block as a graph: x [1, T, D] → y [1, T, D].
pub fn block_graph(w: &Weights) -> Graph {
    let mut g = Builder::default();
    let x = g.input(&[1, T, D]);
    let ln = |g: &mut Builder, x: ValueId, p: &(Vec<f32>, Vec<f32>)| {
        let gm = g.konst(&[D], p.0.clone());
        let bt = g.konst(&[D], p.1.clone());
        g.node(Op::LayerNorm { eps: EPS }, &[x, gm, bt], &[1, T, D])
    };
    let lin = |g: &mut Builder, x: ValueId, p: &(Vec<f32>, Vec<f32>), n: usize, k: usize| {
        let wi = g.konst(&[n, k], p.0.clone());
        let bi = g.konst(&[n], p.1.clone());
        g.node(Op::Linear, &[x, wi, bi], &[1, T, n])
    };
    let h1 = ln(&mut g, x, &w.ln1);
    let qkv = lin(&mut g, h1, &w.qkv, 3 * D, D);
    let qkv5 = g.node(Op::Reshape, &[qkv], &[1, T, 3, H, HD]);
    let heads = g.node(
        Op::Transpose {
            perm: vec![2, 0, 3, 1, 4],
        },
        &[qkv5],
        &[3, 1, H, T, HD],
    );
    let part = |g: &mut Builder, i: usize| {
        let s = g.node(
            Op::Slice {
                axis: 0,
                start: i,
                end: i + 1,
                step: 1,
            },
            &[heads],
            &[1, 1, H, T, HD],
        );
        g.node(Op::Reshape, &[s], &[1, H, T, HD])
    };
    let (q, k, v) = (part(&mut g, 0), part(&mut g, 1), part(&mut g, 2));
    let att = g.node(Op::MatMul { transpose_b: true }, &[q, k], &[1, H, T, T]);
    let scale = g.konst(&[], vec![1.0 / (HD as f32).sqrt()]);
    let att = g.node(Op::Binary(BinaryOp::Mul), &[att, scale], &[1, H, T, T]);
    let att = g.node(Op::Softmax { axis: 3 }, &[att], &[1, H, T, T]);
    let ctx = g.node(Op::MatMul { transpose_b: false }, &[att, v], &[1, H, T, HD]);
    let ctx = g.node(
        Op::Transpose {
            perm: vec![0, 2, 1, 3],
        },
        &[ctx],
        &[1, T, H, HD],
    );
    let ctx = g.node(Op::Reshape, &[ctx], &[1, T, D]);
    let proj = lin(&mut g, ctx, &w.proj, D, D);
    let r1 = g.node(Op::Binary(BinaryOp::Add), &[x, proj], &[1, T, D]);
    let h2 = ln(&mut g, r1, &w.ln2);
    let f1 = lin(&mut g, h2, &w.fc1, F, D);
    let f1 = g.node(Op::Gelu(GeluKind::Erf), &[f1], &[1, T, F]);
    let f2 = lin(&mut g, f1, &w.fc2, D, F);
    let y = g.node(Op::Binary(BinaryOp::Add), &[r1, f2], &[1, T, D]);
    g.output(y);
    g.g
}
