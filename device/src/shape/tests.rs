use super::*;
use crate::graph::{BinaryOp, GeluKind, Node, ReduceOp, UnaryOp, Value};

fn ok(op: Op, inputs: &[&[usize]], declared: &[usize]) -> Vec<usize> {
    infer(&op, inputs, declared).unwrap_or_else(|e| panic!("{op:?} {inputs:?}: {e}"))
}

fn bad(op: Op, inputs: &[&[usize]], declared: &[usize]) -> String {
    match infer(&op, inputs, declared) {
        Ok(s) => panic!("{op:?} {inputs:?} should fail, inferred {s:?}"),
        Err(e) => e.0,
    }
}

#[test]
fn linear() {
    assert_eq!(ok(Op::Linear, &[&[2, 5, 8], &[3, 8], &[3]], &[]), [2, 5, 3]);
    assert_eq!(ok(Op::Linear, &[&[8], &[3, 8]], &[]), [3]);
    bad(Op::Linear, &[&[2, 7], &[3, 8]], &[]);
    bad(Op::Linear, &[&[2, 8], &[3, 8], &[4]], &[]);
    bad(Op::Linear, &[&[2, 8]], &[]);
    bad(Op::Linear, &[&[2, 8], &[8]], &[]);
    bad(Op::Linear, &[&[], &[3, 8]], &[]);
}

#[test]
fn matmul() {
    let mm = |t| Op::MatMul { transpose_b: t };
    assert_eq!(
        ok(mm(false), &[&[2, 3, 4, 5], &[3, 5, 6]], &[]),
        [2, 3, 4, 6]
    );
    assert_eq!(
        ok(mm(true), &[&[1, 12, 197, 64], &[1, 12, 197, 64]], &[]),
        [1, 12, 197, 197]
    );
    assert_eq!(ok(mm(false), &[&[4, 5], &[2, 5, 6]], &[]), [2, 4, 6]);
    bad(mm(false), &[&[4, 5], &[4, 6]], &[]);
    bad(mm(false), &[&[2, 4, 5], &[3, 5, 6]], &[]);
    bad(mm(false), &[&[5], &[5, 6]], &[]);
    bad(mm(true), &[&[4, 5], &[5, 6]], &[]);
}

#[test]
fn conv2d() {
    let conv = |s, p, d, g| Op::Conv2d {
        strides: [s; 2],
        pads: [p; 4],
        dilations: [d; 2],
        group: g,
    };
    // ViT patch embedding: 16x16 patches of a 224 image.
    assert_eq!(
        ok(
            conv(16, 0, 1, 1),
            &[&[1, 3, 224, 224], &[768, 3, 16, 16], &[768]],
            &[]
        ),
        [1, 768, 14, 14]
    );
    // 3x3 "same" conv, depthwise, dilation 2 with pad 2.
    assert_eq!(
        ok(conv(1, 1, 1, 1), &[&[1, 4, 5, 7], &[8, 4, 3, 3]], &[]),
        [1, 8, 5, 7]
    );
    assert_eq!(
        ok(conv(1, 2, 2, 4), &[&[1, 4, 5, 7], &[4, 1, 3, 3]], &[]),
        [1, 4, 5, 7]
    );
    assert_eq!(
        ok(conv(2, 0, 1, 1), &[&[1, 1, 5, 6], &[1, 1, 2, 2]], &[]),
        [1, 1, 2, 3]
    );
    bad(conv(1, 0, 1, 1), &[&[1, 3, 2, 2], &[1, 3, 3, 3]], &[]);
    bad(conv(0, 0, 1, 1), &[&[1, 3, 4, 4], &[1, 3, 3, 3]], &[]);
    bad(conv(1, 0, 0, 1), &[&[1, 3, 4, 4], &[1, 3, 3, 3]], &[]);
    bad(conv(1, 0, 1, 0), &[&[1, 3, 4, 4], &[1, 3, 3, 3]], &[]);
    bad(conv(1, 0, 1, 2), &[&[1, 3, 4, 4], &[2, 1, 3, 3]], &[]);
    bad(conv(1, 0, 1, 1), &[&[1, 3, 4, 4], &[2, 3, 3, 3], &[3]], &[]);
    bad(conv(1, 0, 1, 1), &[&[3, 4, 4], &[2, 3, 3, 3]], &[]);
    bad(
        conv(1, usize::MAX, 1, 1),
        &[&[1, 3, 4, 4], &[2, 3, 3, 3]],
        &[],
    );
}

#[test]
fn layer_norm() {
    let ln = |eps| Op::LayerNorm { eps };
    assert_eq!(
        ok(ln(1e-6), &[&[1, 197, 768], &[768], &[768]], &[]),
        [1, 197, 768]
    );
    bad(ln(1e-6), &[&[1, 197, 768], &[768]], &[]);
    bad(ln(1e-6), &[&[1, 197, 768], &[197], &[768]], &[]);
    bad(ln(f32::NAN), &[&[4], &[4], &[4]], &[]);
    bad(ln(-1.0), &[&[4], &[4], &[4]], &[]);
}

#[test]
fn element_wise() {
    for op in [Op::Relu, Op::Gelu(GeluKind::Erf), Op::Unary(UnaryOp::Exp)] {
        assert_eq!(ok(op.clone(), &[&[2, 3]], &[]), [2, 3]);
        bad(op.clone(), &[&[2, 3], &[2, 3]], &[]);
        bad(op, &[], &[]);
    }
    let add = Op::Binary(BinaryOp::Add);
    assert_eq!(
        ok(add.clone(), &[&[1, 197, 768], &[768]], &[]),
        [1, 197, 768]
    );
    assert_eq!(ok(add.clone(), &[&[4, 1], &[1, 5]], &[]), [4, 5]);
    assert_eq!(ok(add.clone(), &[&[], &[3]], &[]), [3]);
    bad(add.clone(), &[&[4, 2], &[3]], &[]);
    bad(add, &[&[4]], &[]);
}

#[test]
fn softmax_and_reduce() {
    assert_eq!(ok(Op::Softmax { axis: 1 }, &[&[2, 3]], &[]), [2, 3]);
    bad(Op::Softmax { axis: 2 }, &[&[2, 3]], &[]);
    let red = |axes: Vec<usize>| Op::Reduce {
        op: ReduceOp::Mean,
        axes,
    };
    assert_eq!(ok(red(vec![0, 2]), &[&[2, 3, 4]], &[]), [1, 3, 1]);
    bad(red(vec![3]), &[&[2, 3, 4]], &[]);
    bad(red(vec![1, 0]), &[&[2, 3, 4]], &[]);
    bad(red(vec![1, 1]), &[&[2, 3, 4]], &[]);
    bad(red(vec![]), &[&[2, 3, 4]], &[]);
}

#[test]
fn reshape_and_broadcast() {
    assert_eq!(
        ok(Op::Reshape, &[&[1, 197, 768]], &[1, 197, 12, 64]),
        [1, 197, 12, 64]
    );
    bad(Op::Reshape, &[&[1, 197, 768]], &[1, 197, 12, 65]);
    assert_eq!(
        ok(Op::Broadcast, &[&[1, 1, 768]], &[2, 197, 768]),
        [2, 197, 768]
    );
    assert_eq!(ok(Op::Broadcast, &[&[768]], &[2, 768]), [2, 768]);
    bad(Op::Broadcast, &[&[2, 768]], &[768]);
    bad(Op::Broadcast, &[&[3, 768]], &[2, 768]);
}

#[test]
fn transpose_concat_slice() {
    let tr = |perm: Vec<usize>| Op::Transpose { perm };
    assert_eq!(
        ok(tr(vec![0, 2, 1, 3]), &[&[1, 197, 12, 64]], &[]),
        [1, 12, 197, 64]
    );
    bad(tr(vec![0, 0, 1, 2]), &[&[1, 2, 3, 4]], &[]);
    bad(tr(vec![0, 1, 4, 2]), &[&[1, 2, 3, 4]], &[]);
    bad(tr(vec![0, 1]), &[&[1, 2, 3]], &[]);

    let cat = |axis| Op::Concat { axis };
    assert_eq!(
        ok(cat(1), &[&[1, 1, 768], &[1, 196, 768]], &[]),
        [1, 197, 768]
    );
    assert_eq!(ok(cat(0), &[&[3]], &[]), [3]);
    bad(cat(1), &[&[1, 1, 768], &[1, 196, 767]], &[]);
    bad(cat(3), &[&[1, 1, 768], &[1, 196, 768]], &[]);
    bad(cat(0), &[&[1, 2], &[1, 2, 3]], &[]);
    bad(cat(0), &[], &[]);

    let sl = |axis, start, end, step| Op::Slice {
        axis,
        start,
        end,
        step,
    };
    assert_eq!(ok(sl(1, 0, 1, 1), &[&[1, 197, 768]], &[]), [1, 1, 768]);
    assert_eq!(ok(sl(0, 1, 10, 3), &[&[10]], &[]), [3]);
    assert_eq!(ok(sl(0, 1, 9, 4), &[&[10]], &[]), [2]);
    bad(sl(0, 0, 11, 1), &[&[10]], &[]);
    bad(sl(0, 5, 5, 1), &[&[10]], &[]);
    bad(sl(0, 0, 5, 0), &[&[10]], &[]);
    bad(sl(1, 0, 1, 1), &[&[10]], &[]);
}

#[test]
fn gather_and_pad() {
    let ga = |axis, indices: Vec<usize>, indices_shape: Vec<usize>| Op::Gather {
        axis,
        indices,
        indices_shape,
    };
    // Class token: a scalar index removes the axis.
    assert_eq!(ok(ga(1, vec![0], vec![]), &[&[1, 197, 768]], &[]), [1, 768]);
    assert_eq!(
        ok(ga(0, vec![2, 0, 1, 1], vec![2, 2]), &[&[3, 5]], &[]),
        [2, 2, 5]
    );
    bad(ga(0, vec![3], vec![1]), &[&[3, 5]], &[]);
    bad(ga(0, vec![0, 1], vec![1]), &[&[3, 5]], &[]);
    bad(ga(2, vec![0], vec![]), &[&[3, 5]], &[]);

    let pad = |pads: Vec<(usize, usize)>, value| Op::Pad { pads, value };
    assert_eq!(ok(pad(vec![(0, 0), (1, 2)], 0.0), &[&[2, 3]], &[]), [2, 6]);
    bad(pad(vec![(0, 0)], 0.0), &[&[2, 3]], &[]);
    bad(pad(vec![(0, 0), (1, 1)], f32::NAN), &[&[2, 3]], &[]);
    bad(pad(vec![(0, 0), (usize::MAX, 1)], 0.0), &[&[2, 3]], &[]);
}

/// x [1, 4] → Linear(w [3, 4], b [3]) → Relu → output.
fn mlp() -> Graph {
    let v = |name: &str, shape: Vec<usize>, source| Value {
        name: name.into(),
        shape,
        source,
    };
    Graph {
        values: vec![
            v("x", vec![1, 4], Source::Input(0)),
            v("w", vec![3, 4], Source::Const(vec![0.5; 12])),
            v("b", vec![3], Source::Const(vec![0.0; 3])),
            v("h", vec![1, 3], Source::Node(0)),
            v("y", vec![1, 3], Source::Node(1)),
        ],
        nodes: vec![
            Node {
                name: "fc".into(),
                op: Op::Linear,
                inputs: vec![0, 1, 2],
                output: 3,
            },
            Node {
                name: "relu".into(),
                op: Op::Relu,
                inputs: vec![3],
                output: 4,
            },
        ],
        inputs: vec![0],
        outputs: vec![4],
    }
}

fn invalid(g: &Graph) -> String {
    match g.validate() {
        Ok(()) => panic!("graph should be invalid: {g:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn valid_graph_passes() {
    mlp().validate().unwrap();
}

#[test]
fn graph_rejects_inconsistent_sources() {
    let mut g = mlp();
    g.values[4].source = Source::Node(0);
    invalid(&g);

    let mut g = mlp();
    g.nodes[1].output = 3;
    invalid(&g);

    let mut g = mlp();
    g.inputs = vec![];
    invalid(&g);

    let mut g = mlp();
    g.inputs = vec![0, 0];
    invalid(&g);

    let mut g = mlp();
    g.values[0].source = Source::Input(1);
    invalid(&g);

    let mut g = mlp();
    g.outputs = vec![9];
    invalid(&g);

    let mut g = mlp();
    g.outputs = vec![];
    invalid(&g);

    let mut g = mlp();
    g.nodes[1].inputs = vec![7];
    invalid(&g);
}

#[test]
fn graph_rejects_wrong_order() {
    let mut g = mlp();
    g.nodes.swap(0, 1);
    g.values[3].source = Source::Node(1);
    g.values[4].source = Source::Node(0);
    assert!(invalid(&g).contains("produced later"));
}

#[test]
fn graph_rejects_bad_consts_and_params() {
    let mut g = mlp();
    g.values[1].source = Source::Const(vec![0.5; 11]);
    invalid(&g);

    let mut g = mlp();
    g.values[2].source = Source::Const(vec![0.0, f32::NAN, 0.0]);
    invalid(&g);

    // The weight of a Linear must be a constant, not an activation.
    let mut g = mlp();
    g.values.push(Value {
        name: "w2".into(),
        shape: vec![3, 4],
        source: Source::Input(1),
    });
    g.inputs.push(5);
    g.nodes[0].inputs[1] = 5;
    assert!(invalid(&g).contains("must be a constant"));
}

#[test]
fn graph_rejects_wrong_shapes_and_sizes() {
    let mut g = mlp();
    g.values[4].shape = vec![3];
    assert!(invalid(&g).contains("inferred"));

    let mut g = mlp();
    g.nodes[0].inputs.truncate(1);
    assert!(invalid(&g).contains("inputs"));

    let mut g = mlp();
    g.values[0].shape = vec![1; MAX_RANK + 1];
    invalid(&g);

    let mut g = mlp();
    g.values[0].shape = vec![0, 4];
    invalid(&g);

    let mut g = mlp();
    g.values[0].shape = vec![1 << 20, 1 << 20];
    invalid(&g);
}
