//! The pass itself: which producers write their readers' integers, which Linears add a
//! residual, which nodes stop running, and the integer buffers in between.

use super::chain::{self, Grid, Hop, RowMap};
use super::core::{Core, core_plan, core_shapes_fit, find_core};
use super::sink::Sink;
use super::{Base, Epilogue, FusedQLinear, Fusion, Input, IntBuf, LayerNormSinks, Operand, Step};
use crate::graph::{BinaryOp, GeluKind, Graph, Op, Source, ValueId};
use crate::quant::ActQuant;
use std::sync::Arc;

/// A quantized operand a producer's values reach: the node reading it (the anchor that runs
/// it), the operand's value and quantizer, the level offset the kernel expects, and whether
/// the kernel reads it with its last two axes swapped.
#[derive(Clone, Copy, Debug)]
struct Target {
    anchor: usize,
    value: ValueId,
    act: ActQuant,
    offset: i32,
    swapped: bool,
}

/// Where a producer's readers are, if every one is a quantized operand.
struct Sinks {
    /// `(target, chain from the producer's value to the operand)`.
    ends: Vec<(Target, Vec<Hop>)>,
    /// Nodes on the chains (they stop running).
    hops: Vec<usize>,
}

/// Follows every reader of `v` through transparent nodes to quantized operands (`targets`);
/// `None` as soon as one reader is something else or a value on the way is a graph output.
fn find_sinks(
    graph: &Graph,
    uses: &[Vec<(usize, usize)>],
    targets: &dyn Fn(usize, usize) -> Option<Target>,
    v: ValueId,
) -> Option<Sinks> {
    let mut out = Sinks {
        ends: Vec::new(),
        hops: Vec::new(),
    };
    let mut stack: Vec<(ValueId, Vec<Hop>)> = vec![(v, Vec::new())];
    while let Some((value, chain)) = stack.pop() {
        if chain::is_output(graph, value) || uses[value as usize].is_empty() {
            return None;
        }
        for &(node, pos) in &uses[value as usize] {
            if let Some(t) = targets(node, pos) {
                out.ends.push((t, chain.clone()));
            } else if chain::is_transparent(graph, node, pos) {
                let mut next = chain.clone();
                next.push(Hop { node, pos });
                out.hops.push(node);
                stack.push((graph.nodes[node].output, next));
            } else {
                return None;
            }
        }
    }
    Some(out)
}

/// The fused plan of `graph`, from its node-by-node `kernels`.
pub(crate) fn fuse(graph: &Graph, base: &Base) -> Fusion {
    let count = graph.nodes.len();
    let uses = chain::uses(graph);
    let cores: Vec<Core> = (0..count)
        .filter_map(|i| find_core(graph, &uses, i))
        .filter(|c| core_shapes_fit(graph, c))
        .collect();
    let qk_of = |node: usize| cores.iter().find(|c| c.qk == node);
    let anchor_of = |node: usize| cores.iter().find(|c| c.anchor == node);
    let targets = |node: usize, pos: usize| -> Option<Target> {
        let value = graph.nodes[node].inputs[pos];
        let op = &graph.nodes[node].op;
        if let (Some(p), 0) = (&base.linears[node], pos) {
            // A dynamic layer needs each whole row to pick its quantizer: it reads f32 rows.
            if p.act().is_dynamic() {
                return None;
            }
            return Some(Target {
                anchor: node,
                value,
                act: p.act(),
                offset: p.level_offset(),
                swapped: false,
            });
        }
        let (anchor, act, offset, swapped) = match (op, qk_of(node), anchor_of(node), pos) {
            (Op::QMatMul { a, .. }, Some(c), _, 0) => (c.anchor, *a, -128, false),
            (Op::QMatMul { b, transpose_b, .. }, Some(c), _, 1) => (c.anchor, *b, 0, !transpose_b),
            (Op::QMatMul { b, transpose_b, .. }, _, Some(c), 1) => (c.anchor, *b, 0, !transpose_b),
            _ => return None,
        };
        // A run-time step needs the operand's whole rows (columns): it reads f32.
        if act.is_dynamic() {
            return None;
        }
        Some(Target {
            anchor,
            value,
            act,
            offset,
            swapped,
        })
    };

    let mut f = Fusion {
        steps: vec![None; count],
        reads: graph.nodes.iter().map(|n| n.inputs.clone()).collect(),
        writes: graph.nodes.iter().map(|n| Some(n.output)).collect(),
        int_bufs: Vec::new(),
    };
    let mut skip = vec![false; count];
    // Integer buffer of every (anchor, operand value) a producer writes.
    let mut int_in: Vec<(usize, ValueId, usize)> = Vec::new();
    let mut sinks_of: Vec<Option<(Vec<Sink>, Option<GeluKind>)>> = vec![None; count];

    for (i, node) in graph.nodes.iter().enumerate() {
        let (value, gelu, grid) = match (&base.linears[i], &node.op) {
            (Some(p), _) => {
                let v = node.output;
                let grid = Grid {
                    batches: 1,
                    rows: p.m(),
                    cols: p.n(),
                };
                match uses[v as usize].as_slice() {
                    &[(g, 0)] if !chain::is_output(graph, v) => match graph.nodes[g].op {
                        Op::Gelu(kind) => (graph.nodes[g].output, Some((g, kind)), grid),
                        _ => (v, None, grid),
                    },
                    _ => (v, None, grid),
                }
            }
            (_, Op::LayerNorm { .. }) => {
                let shape = graph.shape(node.output);
                let cols = shape.last().copied().unwrap_or(1).max(1);
                let rows = shape.iter().product::<usize>() / cols;
                let grid = Grid {
                    batches: 1,
                    rows,
                    cols,
                };
                (node.output, None, grid)
            }
            _ if anchor_of(i).is_some() => {
                let shape = graph.shape(node.output);
                let r = shape.len();
                let grid = Grid {
                    batches: shape[..r - 2].iter().product(),
                    rows: shape[r - 2],
                    cols: shape[r - 1],
                };
                (node.output, None, grid)
            }
            _ => continue,
        };
        let Some(found) = find_sinks(graph, &uses, &targets, value) else {
            continue;
        };
        let built: Option<Vec<(Target, Sink)>> = found
            .ends
            .iter()
            .map(|(t, hops)| {
                let shape = graph.shape(t.value);
                let len = shape.iter().product();
                let src = chain::sources(graph, hops, len)?;
                let map = if t.swapped && shape.len() >= 2 {
                    RowMap::new(grid, &src, chain::swapped_last_two(shape))
                } else {
                    RowMap::new(grid, &src, |e| e)
                }?;
                let factors = chain::factors(graph, hops);
                Some((*t, Sink::new(len, t.act, t.offset, factors, map)))
            })
            .collect();
        let Some(built) = built else {
            continue;
        };
        let mut sinks = Vec::new();
        for (t, mut sink) in built {
            sink.buf = f.int_bufs.len();
            f.int_bufs.push(IntBuf {
                len: sink.len,
                writer: i,
                reader: t.anchor,
            });
            int_in.push((t.anchor, t.value, sink.buf));
            sinks.push(sink);
        }
        for &h in &found.hops {
            skip[h] = true;
        }
        if let Some((g, _)) = gelu {
            skip[g] = true;
        }
        sinks_of[i] = Some((sinks, gelu.map(|(_, k)| k)));
    }
    let int_of = |anchor: usize, value: ValueId| {
        int_in
            .iter()
            .find(|&&(a, v, _)| a == anchor && v == value)
            .map(|&(_, _, b)| b)
    };

    for core in &cores {
        let Some(plan) = core_plan(graph, core, &int_of, &mut sinks_of) else {
            continue;
        };
        skip[core.qk] = true;
        for &b in &core.between {
            skip[b] = true;
        }
        let anchor = &graph.nodes[core.anchor];
        let qk = &graph.nodes[core.qk];
        let mut reads = Vec::new();
        for (op, v) in [
            (plan.q.0, qk.inputs[0]),
            (plan.k.0, qk.inputs[1]),
            (plan.v.0, anchor.inputs[1]),
        ] {
            if op == Operand::F32 {
                reads.push(v);
            }
        }
        f.reads[core.anchor] = reads;
        if !plan.sinks.is_empty() {
            f.writes[core.anchor] = None;
        }
        f.steps[core.anchor] = Some(Step::Attention(Box::new(plan)));
    }

    // Whether `v` has f32 storage before node `before` runs: not produced by a node, or by an
    // earlier one that runs, or written by an anchor in its place (a fused residual Add);
    // Reshapes see their source's storage.
    let materialized =
        |mut v: ValueId, before: usize, skip: &[bool], writes: &[Option<ValueId>]| loop {
            match graph.values[v as usize].source {
                Source::Node(j) if j >= before => break false,
                Source::Node(j) if graph.nodes[j].op == Op::Reshape => {
                    v = graph.nodes[j].inputs[0];
                }
                Source::Node(j) => break !skip[j] || writes.contains(&Some(v)),
                _ => break true,
            }
        };
    for (i, node) in graph.nodes.iter().enumerate() {
        if let Some(p) = &base.linears[i] {
            let input = match int_of(i, node.inputs[0]) {
                Some(b) => Input::Int(b),
                None => Input::F32,
            };
            let mut reads: Vec<ValueId> = node.inputs[2..].to_vec();
            if matches!(input, Input::F32) {
                reads.insert(0, node.inputs[0]);
            }
            let epilogue = match sinks_of[i].take() {
                Some((sinks, gelu)) => {
                    f.writes[i] = None;
                    Epilogue::Sinks { gelu, sinks }
                }
                None => match residual_add(graph, &uses, node.output) {
                    Some((add, residual, hops)) if materialized(residual, i, &skip, &f.writes) => {
                        skip[add] = true;
                        for h in hops {
                            skip[h] = true;
                        }
                        f.writes[i] = Some(graph.nodes[add].output);
                        reads.push(residual);
                        Epilogue::Add { residual }
                    }
                    _ => Epilogue::F32,
                },
            };
            f.reads[i] = reads;
            f.steps[i] = Some(Step::Linear(Box::new(FusedQLinear {
                plan: Arc::clone(p),
                input,
                epilogue,
            })));
        } else if let (Some(eps), Some((sinks, _))) = (base.layer_norms[i], sinks_of[i].take()) {
            let c = graph.shape(node.inputs[1]).iter().product::<usize>().max(1);
            let rows = graph.shape(node.output).iter().product::<usize>() / c;
            f.writes[i] = None;
            f.steps[i] = Some(Step::LayerNorm(Box::new(LayerNormSinks {
                eps,
                rows,
                cols: c,
                sinks,
            })));
        }
    }
    for (i, &s) in skip.iter().enumerate() {
        if s {
            f.steps[i] = Some(Step::Skip);
            f.reads[i].clear();
            f.writes[i] = None;
        }
    }
    f
}

/// A Linear's output read only by an `Add` of an equally shaped f32 value (through
/// Reshapes): `(the Add, the residual, the Reshapes)`.
fn residual_add(
    graph: &Graph,
    uses: &[Vec<(usize, usize)>],
    v: ValueId,
) -> Option<(usize, ValueId, Vec<usize>)> {
    let mut w = v;
    let mut hops = Vec::new();
    loop {
        if chain::is_output(graph, w) {
            return None;
        }
        let &[(j, pos)] = uses[w as usize].as_slice() else {
            return None;
        };
        let node = &graph.nodes[j];
        match node.op {
            Op::Reshape => {
                hops.push(j);
                w = node.output;
            }
            Op::Binary(BinaryOp::Add) => {
                let other = node.inputs[1 - pos];
                let out = graph.shape(node.output);
                if graph.shape(other) != out || graph.shape(w) != out || other == w {
                    return None;
                }
                return Some((j, other, hops));
            }
            _ => return None,
        }
    }
}
