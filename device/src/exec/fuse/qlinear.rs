//! Quantized Linear layers and LayerNorms inside the integer dataflow.
//!
//! A Linear takes its activations as integers when its producer wrote them ([`Input::Int`]),
//! and its epilogue either dequantizes to f32 (plus the residual when it feeds an `Add`), or
//! dequantizes, applies the GELU that follows it, and hands the rows to the sinks of its
//! quantized consumers. A LayerNorm whose readers are all quantized writes their integers.
//! Rows are split into blocks run by the executor's threads; every block does the whole chain.

use super::sink::{Shared, Sink};
use super::{RowBlocks, Scratches, TaskScratch, reserve};
use crate::exec::Ctx;
use crate::exec::quantized::sized;
use crate::exec::quantized::{Levels, QLinearPlan};
use crate::graph::{GeluKind, ValueId};
use std::sync::Arc;

/// Where a fused layer's activations come from.
#[derive(Clone, Debug)]
pub(crate) enum Input {
    /// The f32 input value, quantized here.
    F32,
    /// Integer levels its producer wrote into this integer buffer.
    Int(usize),
}

/// What a fused layer does with its dequantized rows.
#[derive(Clone, Debug)]
pub(crate) enum Epilogue {
    /// Writes them as the node's f32 output.
    F32,
    /// Adds `residual` (the other input of the `Add` it feeds) and writes the `Add`'s output.
    Add { residual: ValueId },
    /// Applies `gelu`, then writes the integers of every quantized reader.
    Sinks {
        gelu: Option<GeluKind>,
        sinks: Vec<Sink>,
    },
}

/// A Linear of the integer dataflow.
#[derive(Clone, Debug)]
pub(crate) struct FusedQLinear {
    pub plan: Arc<QLinearPlan>,
    pub input: Input,
    pub epilogue: Epilogue,
}

/// The operands of one run of a fused Linear.
pub(crate) struct LinearArgs<'a> {
    pub x: &'a [f32],
    pub x_int: &'a [i8],
    pub bias: Option<&'a [f32]>,
    pub residual: &'a [f32],
    pub out: &'a mut [f32],
    pub sinks: &'a [Shared<i8>],
}

fn gelu(ctx: &Ctx, kind: GeluKind, y: &mut [f32]) {
    match kind {
        GeluKind::Erf => ctx.ks.gelu_erf_f32(y),
        GeluKind::Tanh => ctx.ks.gelu_tanh_f32(y),
    }
}

/// Rows a Linear multiplies at a time inside its block. Its scratch (integer inputs, i32
/// accumulators, f32 rows) is sized for this many rows, not for the layer: a ViT-S/14 fc1 over
/// all 257 tokens would hold 1.5 MiB of accumulators and 1.5 MiB of rows per thread, and a
/// chunk's accumulators stay in cache between the GEMM and its epilogue. Rows are independent,
/// so the bits do not depend on it.
const CHUNK_ROWS: usize = 64;

impl FusedQLinear {
    /// Rows per chunk: [`CHUNK_ROWS`] rounded up to the kernel's row tile, at most the layer.
    fn chunk_rows(&self) -> usize {
        let p = &*self.plan;
        CHUNK_ROWS
            .next_multiple_of(p.row_tile().max(1))
            .min(p.m().max(1))
    }

    /// Grows `t` to one chunk of this layer.
    pub fn reserve(&self, t: &mut TaskScratch) {
        let p = &*self.plan;
        let (m, k, n) = (self.chunk_rows(), p.k(), p.n());
        p.reserve(&mut t.gemm, m);
        reserve(&mut t.a8, m * k);
        reserve(&mut t.a4, m * k);
        reserve(&mut t.acc, m * n);
        reserve(&mut t.y, m * n);
        reserve(&mut t.tmp, m.max(n));
        reserve(&mut t.tq, 1);
        reserve(&mut t.rowq, m);
    }

    /// Runs the layer; errors only on an internal length mismatch.
    pub fn run(
        &self,
        ctx: &Ctx,
        scratches: &Scratches,
        args: LinearArgs,
    ) -> qvit_kernels::Result<()> {
        let p = &*self.plan;
        let (k, n) = (p.k(), p.n());
        let out = Shared::new(args.out);
        let chunk = self.chunk_rows();
        let blocks = RowBlocks::new(ctx, p.m(), p.row_tile(), n * k);
        let tile = p.row_tile().max(1);
        blocks.run(ctx, |r0, rows| {
            // Equal chunks (in whole row tiles), not full ones and a short tail: every chunk
            // streams all weight panels, so a tail of a few rows would cost almost a chunk.
            let parts = rows.div_ceil(chunk).max(1);
            let chunk = rows.div_ceil(parts).next_multiple_of(tile).min(chunk);
            scratches.with(|t: &mut TaskScratch| {
                (r0..r0 + rows).step_by(chunk).try_for_each(|c0| {
                    let rows = chunk.min(r0 + rows - c0);
                    self.run_rows(ctx, t, &args, &out, c0, rows)
                })
            })
        })
    }

    /// Rows `r0..r0 + rows` of the layer, with `t` as scratch.
    fn run_rows(
        &self,
        ctx: &Ctx,
        t: &mut TaskScratch,
        args: &LinearArgs,
        out: &Shared<f32>,
        r0: usize,
        rows: usize,
    ) -> qvit_kernels::Result<()> {
        let p = &*self.plan;
        let (k, n) = (p.k(), p.n());
        let ks = &ctx.ks;
        let TaskScratch {
            gemm,
            a8,
            a4,
            acc,
            y,
            tmp,
            tq,
            rowq,
            ..
        } = t;
        let ints: &[i8] = match self.input {
            Input::Int(_) => &args.x_int[r0 * k..(r0 + rows) * k],
            Input::F32 => {
                let a8 = sized(a8, rows * k);
                let x = &args.x[r0 * k..(r0 + rows) * k];
                p.quantize(ks, x, a8, rowq)?;
                a8
            }
        };
        let rq = &rowq[..];
        let levels = if p.w4a4() {
            a4.clear();
            a4.extend(ints.iter().map(|&v| v as u8));
            Levels::U4(a4)
        } else {
            Levels::I8(ints)
        };
        let acc = sized(acc, rows * n);
        p.gemm(ks, gemm, levels, rows, acc)?;
        match &self.epilogue {
            Epilogue::F32 => {
                // SAFETY: rows r0..r0+rows of the output belong to this chunk only.
                let o = unsafe { out.slice(r0 * n, rows * n) };
                p.dequantize(ks, acc, rq, (args.bias, None), o)
            }
            Epilogue::Add { .. } => {
                // SAFETY: as above.
                let o = unsafe { out.slice(r0 * n, rows * n) };
                let res = &args.residual[r0 * n..(r0 + rows) * n];
                p.dequantize(ks, acc, rq, (args.bias, Some(res)), o)
            }
            Epilogue::Sinks { gelu: g, sinks } => {
                let y = sized(y, rows * n);
                p.dequantize(ks, acc, rq, (args.bias, None), y)?;
                if let Some(kind) = g {
                    gelu(ctx, *kind, y);
                }
                for (sink, &dst) in sinks.iter().zip(args.sinks) {
                    sink.write(ks, y, n, 0, r0, dst, tmp, tq)?;
                }
                Ok(())
            }
        }
    }
}

/// A LayerNorm whose readers are all quantized: normalises rows and writes their integers.
#[derive(Clone, Debug)]
pub(crate) struct LayerNormSinks {
    pub eps: f32,
    pub rows: usize,
    pub cols: usize,
    pub sinks: Vec<Sink>,
}

impl LayerNormSinks {
    /// Grows `t` to this step's largest block (all rows).
    pub fn reserve(&self, t: &mut TaskScratch) {
        reserve(&mut t.y, self.rows * self.cols);
        reserve(&mut t.tmp, self.rows.max(self.cols));
        reserve(&mut t.tq, 1);
    }

    /// Runs it on `x` (`[rows, gamma.len()]`).
    pub fn run(
        &self,
        ctx: &Ctx,
        scratches: &Scratches,
        (x, gamma, beta): (&[f32], &[f32], &[f32]),
        dsts: &[Shared<i8>],
    ) -> qvit_kernels::Result<()> {
        let c = gamma.len();
        // About ten operations per element: statistics, normalisation, quantization.
        let blocks = RowBlocks::new(ctx, self.rows, 8, 10 * c);
        blocks.run(ctx, |r0, rows| {
            scratches.with(|t: &mut TaskScratch| {
                let TaskScratch { y, tmp, tq, .. } = t;
                let y = sized(y, rows * c);
                let xs = &x[r0 * c..(r0 + rows) * c];
                ctx.ks.layer_norm_f32(xs, gamma, beta, self.eps, y)?;
                for (sink, &dst) in self.sinks.iter().zip(dsts) {
                    sink.write(&ctx.ks, y, c, 0, r0, dst, tmp, tq)?;
                }
                Ok(())
            })
        })
    }
}
