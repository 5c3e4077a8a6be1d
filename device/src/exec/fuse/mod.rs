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
mod core;
mod pass;
mod qlinear;
mod sink;

pub(crate) use attention::{AttentionPlan, AttnArgs, AttnState, Operand};
pub(crate) use pass::fuse;
pub(crate) use qlinear::{Epilogue, FusedQLinear, Input, LayerNormSinks, LinearArgs};
pub(crate) use sink::Shared;

use super::Ctx;
use super::quantized::QLinearPlan;
use crate::graph::ValueId;
use qvit_kernels::gemm::Scratch;
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
    /// Row quantizers of a dynamic layer's input block.
    pub rowq: Vec<crate::quant::RowQuant>,
}

/// One [`TaskScratch`] per executor thread, so steady-state runs do not allocate.
#[derive(Debug, Default)]
pub(crate) struct Scratches(Vec<Mutex<TaskScratch>>);

/// Grows `v` to hold at least `n` elements (its length stays; `sized` uses the capacity).
pub(crate) fn reserve<T>(v: &mut Vec<T>, n: usize) {
    v.reserve(n.saturating_sub(v.len()));
}

impl Scratches {
    pub fn new(threads: usize) -> Scratches {
        Scratches((0..threads.max(1)).map(|_| Mutex::default()).collect())
    }

    /// Grows every thread's scratch with `grow` (each fused step's largest block), so runs on
    /// any thread, whichever blocks it takes, allocate nothing.
    pub fn reserve(&self, grow: impl Fn(&mut TaskScratch)) {
        for m in &self.0 {
            grow(&mut m.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// Runs `f` with the calling thread's scratch (a fresh one if it is somehow taken).
    pub fn with<R>(&self, f: impl FnOnce(&mut TaskScratch) -> R) -> R {
        let i = super::pool::thread_index() % self.0.len().max(1);
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

/// Below this much work (multiply-adds or element operations) a step stays on one thread:
/// waking the others costs more than they would save.
const PAR_MIN_WORK: usize = 1 << 20;

/// Blocks per thread when a step is split: enough that threads finishing early find more work.
const BLOCKS_PER_THREAD: usize = 4;

impl RowBlocks {
    /// `rows` rows costing about `work_per_row` each, in blocks that are multiples of `tile`:
    /// one block without threads or for little work, else about [`BLOCKS_PER_THREAD`] per thread.
    pub fn new(ctx: &Ctx, rows: usize, tile: usize, work_per_row: usize) -> RowBlocks {
        RowBlocks::per_batch(ctx, 1, rows, tile, work_per_row)
    }

    /// As [`RowBlocks::new`] for `batches` independent batches of `rows` rows.
    pub fn per_batch(
        ctx: &Ctx,
        batches: usize,
        rows: usize,
        tile: usize,
        work_per_row: usize,
    ) -> RowBlocks {
        let tile = tile.max(1);
        let work = batches.saturating_mul(rows).saturating_mul(work_per_row);
        let block = if ctx.spin.is_some() && ctx.threads > 1 && work >= PAR_MIN_WORK {
            let want = (BLOCKS_PER_THREAD * ctx.threads)
                .div_ceil(batches.max(1))
                .max(1);
            rows.div_ceil(want).next_multiple_of(tile).max(tile)
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
        parallel(ctx, self.batches * per, task)
    }
}

/// Runs `task(0..tasks)` on the executor's spinning workers (all of them when there are more
/// than one task), and returns the first error.
pub(crate) fn parallel<F>(ctx: &Ctx, tasks: usize, task: F) -> qvit_kernels::Result<()>
where
    F: Fn(usize) -> qvit_kernels::Result<()> + Sync,
{
    match ctx.spin {
        Some(pool) if tasks > 1 => {
            let first_err = Mutex::new(None);
            pool.run(tasks, &|t| {
                if let Err(e) = task(t) {
                    let mut slot = first_err.lock().unwrap_or_else(|e| e.into_inner());
                    slot.get_or_insert(e);
                }
            });
            match first_err.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
        _ => (0..tasks).try_for_each(task),
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

/// What a node does in the fused plan when it no longer runs its own op.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// Another node does its work.
    Skip,
    Linear(Box<FusedQLinear>),
    LayerNorm(Box<LayerNormSinks>),
    Attention(Box<AttentionPlan>),
}

/// The node-by-node plan's facts the pass needs: every quantized Linear's plan and every
/// LayerNorm's epsilon, by node.
pub(crate) struct Base {
    pub linears: Vec<Option<Arc<QLinearPlan>>>,
    pub layer_norms: Vec<Option<f32>>,
}

/// The fused plan's changes to the node-by-node plan.
pub(crate) struct Fusion {
    /// The new step of every node that changes (`None`: it runs its own op).
    pub steps: Vec<Option<Step>>,
    /// The f32 values each node reads.
    pub reads: Vec<Vec<ValueId>>,
    /// The f32 value each node writes.
    pub writes: Vec<Option<ValueId>>,
    /// The integer buffers, indexed by the sinks' and consumers' buffer numbers.
    pub int_bufs: Vec<IntBuf>,
}
