//! Load-time planning: checks every node against its op's shape rules, builds its kernel plan
//! and assigns every value a storage location.
//!
//! Storage: constants are read from the graph and inputs from the caller's tensors, in place.
//! Node outputs live in a small set of arena buffers: a buffer is reused once every reader of
//! its previous value has run (liveness over the node order). Reshape never copies: its output
//! aliases its input's storage, and the aliased storage lives as long as any alias is read.

use super::conv::ConvPlan;
use super::elementwise::BinaryPlan;
use super::fuse::{self, AttentionPlan, FusedQLinear, LayerNormSinks};
use super::layout::StridedCopy;
use super::matmul::{LinearPlan, MatMulPlan};
use super::movement::{self, GatherPlan, PadPlan};
use super::norm::SoftmaxPlan;
use super::quantized::{QLinearPlan, QMatMulPlan};
use super::reduce::ReducePlan;
use crate::graph::{GeluKind, Op, Source, UnaryOp};
use crate::tensor::checked_len;
use crate::{Error, Graph, Result, ValueId};
use qvit_kernels::KernelSet;
use std::sync::Arc;

/// Where a value's elements live during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loc {
    /// In the graph's constant data of this value.
    Const(ValueId),
    /// In the caller's n-th input tensor.
    Input(usize),
    /// In the n-th arena buffer.
    Arena(usize),
    /// Nowhere: the fused plan computes it inside another step and nothing reads it.
    Unset,
}

/// The planned computation of one node.
#[derive(Clone, Debug)]
pub(crate) enum Kernel {
    /// Reshape: the output aliases the input, nothing to compute.
    Alias,
    Linear(LinearPlan),
    MatMul(MatMulPlan),
    Conv(ConvPlan),
    LayerNorm(f32),
    Gelu(GeluKind),
    Relu,
    Softmax(SoftmaxPlan),
    Binary(BinaryPlan),
    Unary(UnaryOp),
    Reduce(ReducePlan),
    /// Transpose, Slice and Broadcast.
    Copy(StridedCopy),
    Concat(Vec<StridedCopy>),
    Gather(GatherPlan),
    Pad(PadPlan),
    /// Packed once, shared by the fused and the node-by-node plan.
    QLinear(Arc<QLinearPlan>),
    QMatMul(QMatMulPlan),
    /// Fused plan only: another node does this node's work.
    Skip,
    FusedQLinear(Box<FusedQLinear>),
    LayerNormSinks(Box<LayerNormSinks>),
    Attention(Box<AttentionPlan>),
}

/// The whole execution plan.
#[derive(Debug)]
pub(crate) struct Plan {
    /// One kernel per node.
    pub kernels: Vec<Kernel>,
    /// Storage of every value.
    pub locs: Vec<Loc>,
    /// Element count of every value.
    pub lens: Vec<usize>,
    /// Capacity of every arena buffer.
    pub buffers: Vec<usize>,
    /// Elements of scratch space the largest im2col or strided softmax needs.
    pub scratch: usize,
    /// The f32 value each node writes (none for skipped and sink-only steps).
    pub writes: Vec<Option<ValueId>>,
    /// Arena index of every integer buffer of the fused plan, and the arena's buffer sizes.
    pub int_locs: Vec<usize>,
    pub int_buffers: Vec<usize>,
}

fn invalid(graph: &Graph, node: usize, reason: impl Into<String>) -> Error {
    let name = graph
        .nodes
        .get(node)
        .map(|n| n.name.clone())
        .unwrap_or_default();
    Error::InvalidGraph {
        node,
        name,
        reason: reason.into(),
    }
}

/// Plans `graph`: checks it as far as execution needs and lays out storage. With `fused`, the
/// integer dataflow of [`fuse`] replaces node-by-node execution where it applies; `linears`
/// holds the quantized Linear layers packed before planning (by node), used instead of
/// packing their weights here.
pub(crate) fn plan(
    graph: &Graph,
    ks: &KernelSet,
    fused: bool,
    linears: &[Option<Arc<QLinearPlan>>],
) -> Result<Plan> {
    let nv = graph.values.len();
    let lens = graph
        .values
        .iter()
        .map(|v| checked_len(&v.shape))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| invalid(graph, usize::MAX, e.to_string()))?;
    let check_id = |id: ValueId, node: usize| {
        if (id as usize) < nv {
            Ok(())
        } else {
            Err(invalid(graph, node, format!("value {id} does not exist")))
        }
    };

    // Storage root of every value before arena assignment.
    let mut locs: Vec<Option<Loc>> = vec![None; nv];
    for (i, v) in graph.values.iter().enumerate() {
        match &v.source {
            Source::Const(d) if d.len() == lens[i] => locs[i] = Some(Loc::Const(i as ValueId)),
            Source::Const(d) => {
                return Err(invalid(
                    graph,
                    usize::MAX,
                    format!(
                        "constant {} has {} elements, shape says {}",
                        v.name,
                        d.len(),
                        lens[i]
                    ),
                ));
            }
            Source::Input(n) if graph.inputs.get(*n) == Some(&(i as ValueId)) => {
                locs[i] = Some(Loc::Input(*n))
            }
            Source::Input(n) => {
                return Err(invalid(
                    graph,
                    usize::MAX,
                    format!(
                        "value {} claims to be input {n} but is not listed there",
                        v.name
                    ),
                ));
            }
            Source::Int(d) if d.data.len() == lens[i] => locs[i] = Some(Loc::Const(i as ValueId)),
            Source::PackedInt { .. } => locs[i] = Some(Loc::Const(i as ValueId)),
            Source::Int(_) => {
                return Err(invalid(
                    graph,
                    usize::MAX,
                    format!("integer constant {} does not match its shape", v.name),
                ));
            }
            Source::Node(_) => {}
        }
    }
    for &id in graph.inputs.iter().chain(&graph.outputs) {
        check_id(id, usize::MAX)?;
    }
    // Executors are also built from graphs that were never validated (the host's).
    if let Some(id) = graph.integer_constant_output() {
        return Err(invalid(
            graph,
            usize::MAX,
            format!("graph output {id} is an integer constant"),
        ));
    }
    for (pos, &id) in graph.inputs.iter().enumerate() {
        if graph.values[id as usize].source != Source::Input(pos) {
            return Err(invalid(
                graph,
                usize::MAX,
                format!("graph input {pos} is value {id}, whose source is not Input({pos})"),
            ));
        }
    }

    let mut kernels = Vec::with_capacity(graph.nodes.len());
    let mut root: Vec<usize> = (0..nv).collect();
    let mut scratch = 0;
    for (i, node) in graph.nodes.iter().enumerate() {
        check_id(node.output, i)?;
        for &id in &node.inputs {
            check_id(id, i)?;
            let ready = match graph.values[id as usize].source {
                Source::Node(j) => j < i,
                _ => true,
            };
            if !ready {
                return Err(invalid(
                    graph,
                    i,
                    format!("input value {id} is not computed before this node"),
                ));
            }
        }
        if graph.values[node.output as usize].source != Source::Node(i) {
            return Err(invalid(graph, i, "output value's source is not this node"));
        }
        // Integer constants have no f32 view: only the plan of a QLinear reads them.
        for (pos, &id) in node.inputs.iter().enumerate() {
            let is_weight = matches!(node.op, Op::QLinear { .. }) && pos == 1;
            if graph.is_int_const(id) != is_weight {
                return Err(invalid(
                    graph,
                    i,
                    format!(
                        "input {pos} must {}be an integer constant",
                        if is_weight { "" } else { "not " }
                    ),
                ));
            }
        }
        let kernel = match linears.get(i) {
            Some(Some(p)) => Kernel::QLinear(Arc::clone(p)),
            _ => kernel_for(graph, ks, i).map_err(|reason| invalid(graph, i, reason))?,
        };
        match &kernel {
            Kernel::Alias => {
                let src = node.inputs[0] as usize;
                root[node.output as usize] = root[src];
                locs[node.output as usize] = locs[src];
            }
            Kernel::Conv(c) => scratch = scratch.max(c.scratch_len()),
            Kernel::Softmax(s) => scratch = scratch.max(s.scratch_len()),
            _ => {}
        }
        kernels.push(kernel);
    }

    let (kernels, reads, writes, int_bufs) = if fused {
        let base = fuse::Base {
            linears: kernels
                .iter()
                .map(|k| match k {
                    Kernel::QLinear(p) => Some(Arc::clone(p)),
                    _ => None,
                })
                .collect(),
            layer_norms: kernels
                .iter()
                .map(|k| match k {
                    Kernel::LayerNorm(eps) => Some(*eps),
                    _ => None,
                })
                .collect(),
        };
        let f = fuse::fuse(graph, &base);
        let kernels = kernels
            .into_iter()
            .zip(f.steps)
            .map(|(k, step)| match step {
                None => k,
                Some(fuse::Step::Skip) => Kernel::Skip,
                Some(fuse::Step::Linear(l)) => Kernel::FusedQLinear(l),
                Some(fuse::Step::LayerNorm(l)) => Kernel::LayerNormSinks(l),
                Some(fuse::Step::Attention(a)) => Kernel::Attention(a),
            })
            .collect();
        (kernels, f.reads, f.writes, f.int_bufs)
    } else {
        let reads = graph.nodes.iter().map(|n| n.inputs.clone()).collect();
        let writes = graph.nodes.iter().map(|n| Some(n.output)).collect();
        (kernels, reads, writes, Vec::new())
    };

    // Last node reading each storage root; graph outputs stay live to the end.
    let mut last_use = vec![None::<usize>; nv];
    for (i, r) in reads.iter().enumerate() {
        for &id in r {
            last_use[root[id as usize]] = Some(i);
        }
    }
    for &id in &graph.outputs {
        last_use[root[id as usize]] = Some(usize::MAX);
    }

    let mut buffers: Vec<usize> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let out = node.output as usize;
        if matches!(kernels[i], Kernel::Alias) {
            // The source's location is only known once its producer has been placed.
            locs[out] = locs[node.inputs[0] as usize];
        } else if let Some(w) = writes[i] {
            let w = w as usize;
            locs[w] = Some(Loc::Arena(take_buffer(&mut buffers, &mut free, lens[w])));
        }
        // Release every root whose last reader is this node (and outputs nobody reads).
        let mut release = |r: usize| {
            let dead = match last_use[r] {
                Some(l) => l == i,
                None => writes[i].is_some_and(|w| root[w as usize] == r),
            };
            if let (true, Some(Loc::Arena(b))) = (dead, locs[r])
                && !free.contains(&b)
            {
                free.push(b);
            }
        };
        for &id in &reads[i] {
            release(root[id as usize]);
        }
        if let Some(w) = writes[i] {
            release(root[w as usize]);
        }
    }

    // Integer buffers: taken when their writer runs, free after their reader.
    let mut int_buffers: Vec<usize> = Vec::new();
    let mut int_free: Vec<usize> = Vec::new();
    let mut int_locs = vec![0; int_bufs.len()];
    for i in 0..graph.nodes.len() {
        for (b, ib) in int_bufs.iter().enumerate().filter(|(_, ib)| ib.writer == i) {
            int_locs[b] = take_buffer(&mut int_buffers, &mut int_free, ib.len);
        }
        for (b, _) in int_bufs.iter().enumerate().filter(|(_, ib)| ib.reader == i) {
            int_free.push(int_locs[b]);
        }
    }

    // Every value something reads must have storage; values of fused steps need none.
    let needed: Vec<ValueId> = reads
        .iter()
        .flatten()
        .chain(&graph.outputs)
        .copied()
        .collect();
    for id in needed {
        if locs[id as usize].is_none() {
            return Err(invalid(
                graph,
                usize::MAX,
                format!(
                    "value {} is read but never produced",
                    graph.values[id as usize].name
                ),
            ));
        }
    }
    let locs = locs.into_iter().map(|l| l.unwrap_or(Loc::Unset)).collect();
    Ok(Plan {
        kernels,
        locs,
        lens,
        buffers,
        scratch,
        writes,
        int_locs,
        int_buffers,
    })
}

/// Picks the smallest free buffer that fits, else grows the largest free one, else adds one.
fn take_buffer(buffers: &mut Vec<usize>, free: &mut Vec<usize>, len: usize) -> usize {
    let fit = free
        .iter()
        .enumerate()
        .filter(|&(_, &b)| buffers[b] >= len)
        .min_by_key(|&(_, &b)| buffers[b])
        .map(|(k, _)| k);
    let pick = fit.or_else(|| {
        free.iter()
            .enumerate()
            .max_by_key(|&(_, &b)| buffers[b])
            .map(|(k, _)| k)
    });
    match pick {
        Some(k) => {
            let b = free.swap_remove(k);
            buffers[b] = buffers[b].max(len);
            b
        }
        None => {
            buffers.push(len);
            buffers.len() - 1
        }
    }
}

/// Builds the kernel of node `i`, checking its arity and shapes.
pub(super) fn kernel_for(
    graph: &Graph,
    ks: &KernelSet,
    i: usize,
) -> std::result::Result<Kernel, String> {
    let node = &graph.nodes[i];
    let shape = |k: usize| graph.shape(node.inputs[k]);
    let out = graph.shape(node.output);
    let arity = |lo: usize, hi: usize| {
        let n = node.inputs.len();
        if n < lo || n > hi {
            Err(format!("expects {lo}..={hi} inputs, has {n}"))
        } else {
            Ok(())
        }
    };
    let mismatch = || {
        format!(
            "input shapes {:?} do not give output shape {out:?}",
            node.inputs
                .iter()
                .map(|&v| graph.shape(v))
                .collect::<Vec<_>>()
        )
    };
    let same_shape = |k: Kernel| {
        if shape(0) == out {
            Ok(k)
        } else {
            Err(mismatch())
        }
    };
    match &node.op {
        Op::Linear => {
            arity(2, 3)?;
            let (x, w) = (shape(0), shape(1));
            let (&[n, k], Some((&kx, lead))) = (w, x.split_last()) else {
                return Err(mismatch());
            };
            let bias_ok = node.inputs.len() == 2 || shape(2) == [n];
            if kx != k || !bias_ok || out.split_last() != Some((&n, lead)) {
                return Err(mismatch());
            }
            let m = lead.iter().product();
            let weight = graph.const_data(node.inputs[1]);
            Ok(Kernel::Linear(LinearPlan::new(m, n, k, weight)))
        }
        Op::MatMul { transpose_b } => {
            arity(2, 2)?;
            MatMulPlan::new(shape(0), shape(1), out, *transpose_b)
                .map(Kernel::MatMul)
                .ok_or_else(mismatch)
        }
        Op::Conv2d {
            strides,
            pads,
            dilations,
            group,
        } => {
            arity(2, 3)?;
            let o = shape(1).first().copied().unwrap_or(0);
            if node.inputs.len() == 3 && shape(2) != [o] {
                return Err(mismatch());
            }
            ConvPlan::new(shape(0), shape(1), out, *strides, *pads, *dilations, *group)
                .map(Kernel::Conv)
                .ok_or_else(mismatch)
        }
        Op::LayerNorm { eps } => {
            arity(3, 3)?;
            let c = shape(0).last().copied().ok_or_else(mismatch)?;
            if c == 0 || shape(1) != [c] || shape(2) != [c] {
                return Err(mismatch());
            }
            same_shape(Kernel::LayerNorm(*eps))
        }
        Op::Gelu(kind) => {
            arity(1, 1)?;
            same_shape(Kernel::Gelu(*kind))
        }
        Op::Relu => {
            arity(1, 1)?;
            same_shape(Kernel::Relu)
        }
        Op::Softmax { axis } => {
            arity(1, 1)?;
            let plan = SoftmaxPlan::new(shape(0), *axis)
                .ok_or_else(|| format!("axis {axis} out of range"))?;
            same_shape(Kernel::Softmax(plan))
        }
        Op::Binary(op) => {
            arity(2, 2)?;
            BinaryPlan::new(*op, shape(0), shape(1), out)
                .map(Kernel::Binary)
                .ok_or_else(mismatch)
        }
        Op::Unary(op) => {
            arity(1, 1)?;
            same_shape(Kernel::Unary(*op))
        }
        Op::Reduce { op, axes } => {
            arity(1, 1)?;
            ReducePlan::new(*op, shape(0), axes, out)
                .map(Kernel::Reduce)
                .ok_or_else(mismatch)
        }
        Op::Reshape => {
            arity(1, 1)?;
            let n = |s: &[usize]| s.iter().product::<usize>();
            if n(shape(0)) != n(out) {
                return Err(mismatch());
            }
            Ok(Kernel::Alias)
        }
        Op::Transpose { perm } => {
            arity(1, 1)?;
            movement::transpose(shape(0), perm, out)
                .map(Kernel::Copy)
                .ok_or_else(mismatch)
        }
        Op::Concat { axis } => {
            arity(1, usize::MAX)?;
            let shapes: Vec<&[usize]> = node.inputs.iter().map(|&v| graph.shape(v)).collect();
            movement::concat(&shapes, *axis, out)
                .map(Kernel::Concat)
                .ok_or_else(mismatch)
        }
        Op::Slice {
            axis,
            start,
            end,
            step,
        } => {
            arity(1, 1)?;
            movement::slice(shape(0), *axis, *start, *end, *step, out)
                .map(Kernel::Copy)
                .ok_or_else(mismatch)
        }
        Op::Gather {
            axis,
            indices,
            indices_shape,
        } => {
            arity(1, 1)?;
            GatherPlan::new(shape(0), *axis, indices, indices_shape, out)
                .map(Kernel::Gather)
                .ok_or_else(mismatch)
        }
        Op::Broadcast => {
            arity(1, 1)?;
            movement::broadcast(shape(0), out)
                .map(Kernel::Copy)
                .ok_or_else(mismatch)
        }
        Op::Pad { pads, value } => {
            arity(1, 1)?;
            PadPlan::new(shape(0), pads, *value, out)
                .map(Kernel::Pad)
                .ok_or_else(mismatch)
        }
        Op::QLinear { act } => {
            arity(3, 4)?;
            crate::shape::infer(
                &node.op,
                &(0..node.inputs.len()).map(shape).collect::<Vec<_>>(),
                out,
            )
            .map_err(|e| e.0)
            .and_then(|s| if s == out { Ok(()) } else { Err(mismatch()) })?;
            if let Source::PackedInt { .. } = graph.values[node.inputs[1] as usize].source {
                return Err(
                    "its weights are held only in packed form, by the executor that \
                     planned this graph before; plan a graph that still holds them"
                        .into(),
                );
            }
            let (&[n, k], Some(w), Some(scales)) = (
                shape(1),
                graph.int_data(node.inputs[1]),
                graph.const_data(node.inputs[2]),
            ) else {
                return Err(mismatch());
            };
            // Value ranges are Graph::validate's (run on every decoded bundle); packing rejects
            // anything the kernels cannot take, so a second scan here would only cost load time.
            let m = shape(0).iter().product::<usize>() / k.max(1);
            QLinearPlan::new(ks, m, (n, k), *act, w, scales).map(|p| Kernel::QLinear(Arc::new(p)))
        }
        Op::QMatMul { transpose_b, a, b } => {
            arity(2, 2)?;
            crate::shape::infer(&node.op, &[shape(0), shape(1)], out).map_err(|e| e.0)?;
            QMatMulPlan::new(shape(0), shape(1), out, *transpose_b, *a, *b)
                .map(Kernel::QMatMul)
                .ok_or_else(mismatch)
        }
    }
}
