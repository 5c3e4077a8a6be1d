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

/// How the rows of a step are split over the executor's threads: `per` blocks per batch, each
/// a run of whole row tiles, as equal as tiles allow.
pub(crate) struct RowBlocks {
    batches: usize,
    rows: usize,
    tile: usize,
    per: usize,
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
    ///
    /// The block count is a multiple of the thread count where tiles allow, and blocks differ by
    /// at most one tile: DeiT-Tiny's 197 rows in 30-row blocks (the block size rounded up to
    /// tiles) left 17 rows for the last of seven, so one of two threads ran 107 rows and the
    /// other 90; three heads in three blocks each made nine tasks for two threads.
    pub fn per_batch(
        ctx: &Ctx,
        batches: usize,
        rows: usize,
        tile: usize,
        work_per_row: usize,
    ) -> RowBlocks {
        let tile = tile.max(1);
        let tiles = rows.div_ceil(tile);
        let work = batches.saturating_mul(rows).saturating_mul(work_per_row);
        let per = if ctx.spin.is_some() && ctx.threads > 1 && work >= PAR_MIN_WORK {
            blocks_per_batch(ctx.threads, batches, tiles)
        } else {
            1
        };
        RowBlocks {
            batches,
            rows,
            tile,
            per,
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
        let per = self.per.max(1);
        let task = |t: usize| {
            let (r0, rows) = block_rows(self.rows, self.tile, per, t % per);
            if rows == 0 {
                return Ok(());
            }
            f(t / per, r0, rows)
        };
        parallel(ctx, self.batches * per, task)
    }
}

/// Blocks per batch for `threads` threads: about [`BLOCKS_PER_THREAD`] per thread, the first
/// count from there that gives every thread as many blocks, at most one per tile.
fn blocks_per_batch(threads: usize, batches: usize, tiles: usize) -> usize {
    let (threads, batches) = (threads.max(1), batches.max(1));
    let want = (BLOCKS_PER_THREAD * threads).div_ceil(batches).max(1);
    let even = (want..want + threads).find(|p| (batches * p) % threads == 0);
    even.unwrap_or(want).min(tiles.max(1))
}

/// `(first row, rows)` of block `blk` of `per` over `rows` rows in whole tiles of `tile`
/// (the last tile may be short): block sizes differ by at most one tile.
fn block_rows(rows: usize, tile: usize, per: usize, blk: usize) -> (usize, usize) {
    let tiles = rows.div_ceil(tile.max(1)).max(1);
    let (t0, t1) = (blk * tiles / per, (blk + 1) * tiles / per);
    let r0 = (t0 * tile).min(rows);
    (r0, (t1 * tile).min(rows) - r0)
}

#[cfg(test)]
mod tests {
    use super::{block_rows, blocks_per_batch};

    /// Blocks cover every row once, in order, start on tile boundaries, differ by at most one
    /// tile, and come in a multiple of the thread count where the batches allow.
    #[test]
    fn row_blocks_are_even_tile_runs() {
        for (rows, tile) in [
            (197usize, 6usize),
            (197, 8),
            (257, 4),
            (1, 8),
            (64, 64),
            (5, 6),
            (1370, 12),
        ] {
            for threads in 1..=5 {
                for batches in [1, 3, 6] {
                    let tiles = rows.div_ceil(tile);
                    let per = blocks_per_batch(threads, batches, tiles);
                    assert!((1..=tiles).contains(&per));
                    if per < tiles && per >= threads {
                        assert_eq!(
                            (batches * per) % threads,
                            0,
                            "{rows} {tile} {threads} {batches}"
                        );
                    }
                    let blocks: Vec<_> = (0..per).map(|b| block_rows(rows, tile, per, b)).collect();
                    let mut next = 0;
                    for &(r0, n) in &blocks {
                        assert_eq!((r0, r0 % tile), (next, 0));
                        next += n;
                    }
                    assert_eq!(next, rows);
                    let sizes: Vec<_> = blocks.iter().map(|b| b.1.div_ceil(tile)).collect();
                    let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                    assert!(hi - lo <= 1, "{rows} {tile} {threads} {batches}: {sizes:?}");
                }
            }
        }
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
