//! The integer dataflow: a load-time pass that lets quantized layers hand each other integers.
//!
//! Node by node, a quantized ViT block round-trips every activation through f32 memory: a
//! LayerNorm writes f32 that the next Linear quantizes, the QKV projection writes f32 that
//! Reshape, Slice, Mul and Transpose nodes move around before the attention products quantize
//! it, the scores and probabilities are whole f32 tensors. This pass finds, for every producer
//! (a quantized Linear, possibly with the GELU after it; a LayerNorm; an attention core), the
//! quantized operands its values reach through nodes that only move or scale elements
//! ([`chain`]). When every reader is such an operand, the producer writes their integers
//! directly, in the layout each consumer's kernel reads ([`Sink`]), and the nodes in between
//! do not run. The attention core (QKᵀ, constant factors, softmax, ·V) runs as one step
//! ([`AttentionPlan`]), and a Linear whose output only feeds a residual `Add` adds it in its
//! epilogue.
//!
//! Everything here computes the same operations in the same order as the nodes it replaces, so
//! the fused executor gives the same bits as the node-by-node one (which observed runs use).

mod attention;
mod chain;
mod qlinear;
mod sink;

pub(crate) use attention::{AttentionPlan, AttnArgs, AttnState, Operand};
pub(crate) use qlinear::{Epilogue, FusedQLinear, Input, LayerNormSinks, LinearArgs};
pub(crate) use sink::Shared;

use super::Ctx;
use super::plan::Kernel;
use crate::graph::{Graph, Op, ValueId};
use crate::quant::ActQuant;
use chain::{Grid, Hop, RowMap};
use qvit_kernels::gemm::Scratch;
use rayon::prelude::*;
use sink::Sink;
use std::sync::{Arc, Mutex};

/// Buffers of one block of work (a row block of a layer, or of an attention head).
#[derive(Debug, Default)]
pub(crate) struct TaskScratch {
    pub gemm: Scratch,
    pub a8: Vec<i8>,
    pub a4: Vec<u8>,
    pub acc: Vec<i32>,
    pub acc_lo: Vec<i32>,
    pub y: Vec<f32>,
    pub tmp: Vec<f32>,
    pub tq: Vec<i8>,
    pub hi: Vec<i8>,
    pub lo: Vec<i8>,
}

/// The first `n` elements of `v`, grown (never shrunk) to fit: no allocation or zeroing once
/// the buffer has reached its largest size, for outputs a kernel overwrites anyway.
pub(crate) fn sized<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

/// One [`TaskScratch`] per executor thread, so steady-state runs do not allocate.
#[derive(Debug, Default)]
pub(crate) struct Scratches(Vec<Mutex<TaskScratch>>);

impl Scratches {
    pub fn new(threads: usize) -> Scratches {
        Scratches((0..threads.max(1)).map(|_| Mutex::default()).collect())
    }

    /// Runs `f` with the calling thread's scratch (a fresh one if it is somehow taken).
    pub fn with<R>(&self, f: impl FnOnce(&mut TaskScratch) -> R) -> R {
        let i = rayon::current_thread_index().unwrap_or(0) % self.0.len().max(1);
        match self.0.get(i).and_then(|m| m.try_lock().ok()) {
            Some(mut t) => f(&mut t),
            None => f(&mut TaskScratch::default()),
        }
    }
}

/// How the rows of a step are split over the executor's threads.
pub(crate) struct RowBlocks {
    batches: usize,
    rows: usize,
    block: usize,
}

impl RowBlocks {
    /// `rows` rows in blocks that are multiples of `tile`: one block without threads, else
    /// about two per thread (so a slow thread does not hold the step up).
    pub fn new(ctx: &Ctx, rows: usize, tile: usize) -> RowBlocks {
        RowBlocks::per_batch(ctx, 1, rows, tile)
    }

    /// As [`RowBlocks::new`] for `batches` independent batches of `rows` rows.
    pub fn per_batch(ctx: &Ctx, batches: usize, rows: usize, tile: usize) -> RowBlocks {
        let tile = tile.max(1);
        let block = if ctx.pool.is_some() && ctx.threads > 1 {
            let want_blocks = (2 * ctx.threads).div_ceil(batches.max(1)).max(1);
            rows.div_ceil(want_blocks).next_multiple_of(tile).max(tile)
        } else {
            rows.max(1)
        };
        RowBlocks {
            batches,
            rows,
            block,
        }
    }

    /// Calls `f(first_row, rows)` for every block, in parallel when the executor has threads.
    pub fn run<F>(&self, ctx: &Ctx, f: F) -> qvit_kernels::Result<()>
    where
        F: Fn(usize, usize) -> qvit_kernels::Result<()> + Sync,
    {
        self.run_batched(ctx, |_, r0, rows| f(r0, rows))
    }

    /// Calls `f(batch, first_row, rows)` for every block of every batch.
    pub fn run_batched<F>(&self, ctx: &Ctx, f: F) -> qvit_kernels::Result<()>
    where
        F: Fn(usize, usize, usize) -> qvit_kernels::Result<()> + Sync,
    {
        let per = self.rows.div_ceil(self.block).max(1);
        let task = |t: usize| {
            let (b, blk) = (t / per, t % per);
            let r0 = blk * self.block;
            let rows = self.block.min(self.rows.saturating_sub(r0));
            if rows == 0 {
                return Ok(());
            }
            f(b, r0, rows)
        };
        let tasks = self.batches * per;
        match ctx.pool {
            Some(pool) if tasks > 1 => {
                pool.install(|| (0..tasks).into_par_iter().try_for_each(task))
            }
            _ => (0..tasks).try_for_each(task),
        }
    }
}

/// An integer buffer of the fused plan: its length, the node that writes it and the last node
/// that reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IntBuf {
    pub len: usize,
    pub writer: usize,
    pub reader: usize,
}

/// The fused plan's changes to the node-by-node plan.
pub(crate) struct Fusion {
    /// One kernel per node ([`Kernel::Skip`] where another node does the work).
    pub kernels: Vec<Kernel>,
    /// The f32 values each node reads.
    pub reads: Vec<Vec<ValueId>>,
    /// The f32 value each node writes.
    pub writes: Vec<Option<ValueId>>,
    /// The integer buffers, indexed by the sinks' and consumers' buffer numbers.
    pub int_bufs: Vec<IntBuf>,
    /// Number of attention cores (each has an [`AttnState`]).
    pub attention_cores: usize,
}

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

/// One attention core found in the graph.
struct Core {
    /// The ·V product (the anchor), the QKᵀ product, the softmax and the Muls between.
    anchor: usize,
    qk: usize,
    between: Vec<usize>,
    factors: Vec<f32>,
}

/// `QMatMul(uniform a, symmetric b) → [Mul by constant]* → Softmax(last axis) → QMatMul(log2
/// a, symmetric b)`, every intermediate value read once and not a graph output.
fn find_core(graph: &Graph, uses: &[Vec<(usize, usize)>], anchor: usize) -> Option<Core> {
    let single = |v: ValueId| uses[v as usize].len() == 1 && !chain::is_output(graph, v);
    let node = &graph.nodes[anchor];
    let Op::QMatMul {
        a: ActQuant::Log2 { .. },
        b: ActQuant::Symmetric { .. },
        ..
    } = node.op
    else {
        return None;
    };
    let producer = |v: ValueId| match graph.values[v as usize].source {
        crate::graph::Source::Node(j) => Some(j),
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
                a: ActQuant::Uniform { .. },
                b: ActQuant::Symmetric { .. },
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
            Op::Binary(crate::graph::BinaryOp::Mul) => {
                let p = (0..n.inputs.len()).find(|&p| chain::is_transparent(graph, j, p))?;
                factors.extend(chain::factors(graph, &[Hop { node: j, pos: p }]));
                between.push(j);
                v = n.inputs[p];
            }
            _ => return None,
        }
    }
}

/// The fused plan of `graph`, from its node-by-node `kernels`.
pub(crate) fn fuse(graph: &Graph, kernels: &[Kernel]) -> Fusion {
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
        if let (Kernel::QLinear(p), 0) = (&kernels[node], pos) {
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
        Some(Target {
            anchor,
            value,
            act,
            offset,
            swapped,
        })
    };

    let mut f = Fusion {
        kernels: kernels.to_vec(),
        reads: graph.nodes.iter().map(|n| n.inputs.clone()).collect(),
        writes: graph.nodes.iter().map(|n| Some(n.output)).collect(),
        int_bufs: Vec::new(),
        attention_cores: 0,
    };
    let mut skip = vec![false; count];
    // Integer buffer of every (anchor, operand value) a producer writes.
    let mut int_in: Vec<(usize, ValueId, usize)> = Vec::new();
    let mut sinks_of: Vec<Option<(Vec<Sink>, Option<crate::graph::GeluKind>)>> = vec![None; count];

    for i in 0..count {
        let node = &graph.nodes[i];
        let (value, gelu, grid) = match (&kernels[i], &node.op) {
            (Kernel::QLinear(p), _) => {
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
        let Some(plan) = core_plan(graph, core, &int_of, &mut sinks_of, f.attention_cores) else {
            continue;
        };
        f.attention_cores += 1;
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
        f.kernels[core.anchor] = Kernel::Attention(Box::new(plan));
    }

    // Whether `v` has f32 storage: not produced by a node, or by one that runs, or written by
    // an anchor in its place (a fused residual Add); Reshapes see their source's storage.
    let materialized = |mut v: ValueId, skip: &[bool], writes: &[Option<ValueId>]| loop {
        match graph.values[v as usize].source {
            crate::graph::Source::Node(j) if graph.nodes[j].op == Op::Reshape => {
                v = graph.nodes[j].inputs[0];
            }
            crate::graph::Source::Node(j) => break !skip[j] || writes.contains(&Some(v)),
            _ => break true,
        }
    };
    for i in 0..count {
        let node = &graph.nodes[i];
        match &kernels[i] {
            Kernel::QLinear(p) => {
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
                        Some((add, residual, hops)) if materialized(residual, &skip, &f.writes) => {
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
                f.kernels[i] = Kernel::FusedQLinear(Box::new(FusedQLinear {
                    plan: Arc::clone(p),
                    input,
                    epilogue,
                }));
            }
            Kernel::LayerNorm(eps) => {
                if let Some((sinks, _)) = sinks_of[i].take() {
                    let c = graph.shape(node.inputs[1]).iter().product::<usize>().max(1);
                    let rows = graph.shape(node.output).iter().product::<usize>() / c;
                    f.writes[i] = None;
                    f.kernels[i] = Kernel::LayerNormSinks(Box::new(LayerNormSinks {
                        eps: *eps,
                        rows,
                        sinks,
                    }));
                }
            }
            _ => {}
        }
    }
    for (i, &s) in skip.iter().enumerate() {
        if s {
            f.kernels[i] = Kernel::Skip;
            f.reads[i].clear();
            f.writes[i] = None;
        }
    }
    f
}

/// Whether the two products of `core` have the shapes one attention step assumes: equal batch
/// axes, `[…, m, dk]·[…, dk, n] → […, m, n]` then `[…, m, n]·[…, n, dv] → […, m, dv]`.
fn core_shapes_fit(graph: &Graph, core: &Core) -> bool {
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
fn core_plan(
    graph: &Graph,
    core: &Core,
    int_of: &dyn Fn(usize, ValueId) -> Option<usize>,
    sinks_of: &mut [Option<(Vec<Sink>, Option<crate::graph::GeluKind>)>],
    state: usize,
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
    let (levels, split) = attention::split_levels(pa);
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
        levels,
        split,
        sinks,
        state,
        values: [qk.inputs[0], qk.inputs[1], anchor.inputs[1]],
    })
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
            Op::Binary(crate::graph::BinaryOp::Add) => {
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
