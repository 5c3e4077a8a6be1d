//! Finding attention cores: `QMatMul(uniform a, symmetric b) → [Mul by constant]* →
//! Softmax(last axis) → QMatMul(log2 a, symmetric b)` (or their run-time counterparts, dynamic
//! and dynamic-symmetric) with every value in between read once, and the [`AttentionPlan`]
//! that runs one as a single step.

use super::attention::{AttentionPlan, Operand};
use super::chain::{self, Hop};
use super::sink::Sink;
use crate::graph::{BinaryOp, GeluKind, Graph, Op, Source, ValueId};
use crate::quant::ActQuant;

/// One attention core found in the graph.
pub(super) struct Core {
    /// The ·V product (the anchor), the QKᵀ product, the softmax and the Muls between.
    pub anchor: usize,
    pub qk: usize,
    pub between: Vec<usize>,
    pub factors: Vec<f32>,
}

/// `QMatMul(uniform a, symmetric b) → [Mul by constant]* → Softmax(last axis) → QMatMul(log2
/// a, symmetric b)` (run-time steps allowed on Q, K and V), every intermediate value read once
/// and not a graph output.
pub(super) fn find_core(
    graph: &Graph,
    uses: &[Vec<(usize, usize)>],
    anchor: usize,
) -> Option<Core> {
    let single = |v: ValueId| uses[v as usize].len() == 1 && !chain::is_output(graph, v);
    let node = &graph.nodes[anchor];
    let Op::QMatMul {
        a: ActQuant::Log2 { .. },
        b: ActQuant::Symmetric { .. } | ActQuant::DynamicSymmetric { .. },
        ..
    } = node.op
    else {
        return None;
    };
    let producer = |v: ValueId| match graph.values[v as usize].source {
        Source::Node(j) => Some(j),
        _ => None,
    };
    let probs = node.inputs[0];
    let sm = producer(probs).filter(|_| single(probs))?;
    let rank = graph.shape(probs).len();
    if graph.nodes[sm].op != (Op::Softmax { axis: rank - 1 }) {
        return None;
    }
    let mut between = vec![sm];
    let mut factors = Vec::new();
    let mut v = graph.nodes[sm].inputs[0];
    loop {
        let j = producer(v).filter(|_| single(v))?;
        let n = &graph.nodes[j];
        match n.op {
            Op::QMatMul {
                a: ActQuant::Uniform { .. } | ActQuant::Dynamic { .. },
                b: ActQuant::Symmetric { .. } | ActQuant::DynamicSymmetric { .. },
                ..
            } => {
                factors.reverse();
                between.reverse();
                return Some(Core {
                    anchor,
                    qk: j,
                    between,
                    factors,
                });
            }
            Op::Binary(BinaryOp::Mul) => {
                let p = (0..n.inputs.len()).find(|&p| chain::is_transparent(graph, j, p))?;
                factors.extend(chain::factors(graph, &[Hop { node: j, pos: p }]));
                between.push(j);
                v = n.inputs[p];
            }
            _ => return None,
        }
    }
}

/// Whether the two products of `core` have the shapes one attention step assumes: equal batch
/// axes, `[…, m, dk]·[…, dk, n] → […, m, n]` then `[…, m, n]·[…, n, dv] → […, m, dv]`.
pub(super) fn core_shapes_fit(graph: &Graph, core: &Core) -> bool {
    let (a, q) = (&graph.nodes[core.anchor], &graph.nodes[core.qk]);
    let (
        Op::QMatMul {
            transpose_b: tk, ..
        },
        Op::QMatMul {
            transpose_b: tv, ..
        },
    ) = (&q.op, &a.op)
    else {
        return false;
    };
    let (qs, ks, ss) = (
        graph.shape(q.inputs[0]),
        graph.shape(q.inputs[1]),
        graph.shape(q.output),
    );
    let (ps, vs, os) = (
        graph.shape(a.inputs[0]),
        graph.shape(a.inputs[1]),
        graph.shape(a.output),
    );
    let r = os.len();
    if r < 2 || [qs, ks, ss, ps, vs].iter().any(|s| s.len() != r) {
        return false;
    }
    let batch = &os[..r - 2];
    let (m, dk, n, dv) = (os[r - 2], qs[r - 1], ss[r - 1], os[r - 1]);
    let k_want = if *tk { [n, dk] } else { [dk, n] };
    let v_want = if *tv { [dv, n] } else { [n, dv] };
    [qs, ks, ss, ps, vs].iter().all(|s| &s[..r - 2] == batch)
        && qs[r - 2] == m
        && ks[r - 2..] == k_want
        && ss[r - 2..] == [m, n]
        && ps == ss
        && vs[r - 2..] == v_want
}

/// The attention plan of `core`, taking the sinks its anchor produces.
pub(super) fn core_plan(
    graph: &Graph,
    core: &Core,
    int_of: &dyn Fn(usize, ValueId) -> Option<usize>,
    sinks_of: &mut [Option<(Vec<Sink>, Option<GeluKind>)>],
) -> Option<AttentionPlan> {
    let anchor = &graph.nodes[core.anchor];
    let qk = &graph.nodes[core.qk];
    let (
        Op::QMatMul {
            a: qa,
            b: kb,
            transpose_b: tk,
        },
        Op::QMatMul {
            a: pa,
            b: vb,
            transpose_b: tv,
        },
    ) = (&qk.op, &anchor.op)
    else {
        return None;
    };
    let qs = graph.shape(qk.inputs[0]);
    let os = graph.shape(anchor.output);
    let ss = graph.shape(qk.output);
    let r = os.len();
    if r < 2 || qs.len() != r || ss.len() != r {
        return None;
    }
    let operand = |v: ValueId| match int_of(core.anchor, v) {
        Some(b) => Operand::Int(b),
        None => Operand::F32,
    };
    let sinks = sinks_of[core.anchor]
        .take()
        .map(|(s, _)| s)
        .unwrap_or_default();
    Some(AttentionPlan {
        heads: os[..r - 2].iter().product(),
        m: os[r - 2],
        n: ss[r - 1],
        dk: qs[r - 1],
        dv: os[r - 1],
        q: (operand(qk.inputs[0]), *qa),
        k: (operand(qk.inputs[1]), *kb),
        v: (operand(anchor.inputs[1]), *vb),
        k_nk: *tk,
        v_vn: *tv,
        factors: core.factors.clone(),
        p: *pa,
        sinks,
        values: [qk.inputs[0], qk.inputs[1], anchor.inputs[1]],
    })
}
