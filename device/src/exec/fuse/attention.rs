//! The attention core as one step: `softmax(c·Q̂K̂ᵀ)·V̂` on the integer GEMM, per head and
//! block of query rows, with the scores, probabilities and their levels kept in the block's
//! scratch instead of whole f32 tensors between nodes.
//!
//! It computes exactly what the three nodes it replaces compute (the QKᵀ product dequantized,
//! the constant factors between it and the softmax, the set's softmax, the log levels of the
//! probabilities, their product with V̂ dequantized), in the same order of operations, so the
//! fused and node-by-node executors give the same bits.

use super::sink::{Shared, Sink};
use super::{RowBlocks, Scratches, TaskScratch, reserve};
use crate::exec::Ctx;
use crate::exec::dynamic::{self, Steps};
use crate::exec::quantized::{combine_split, levels_into, sized, transpose};
use crate::quant::{ActQuant, LOG2_FRAC_BITS, RowQuant, log_steps, unsigned_max};
use qvit_kernels::KernelSet;
use qvit_kernels::gemm::PackedW8;

/// Zero points that undo the offsets of the probabilities' byte split (see
/// `QMatMulPlan::split`).
const HI_ZERO: i8 = -64;
const LO_ZERO: i8 = -128;

/// Up to this many keys `256·Σ hi·v + Σ lo·v` cannot leave `i32` (|hi + 64| ≤ 128, |lo + 128|
/// ≤ 255, |v| ≤ 127: 512·(256·128·127 + 255·127) < 2³¹), so the combination needs no 64-bit
/// arithmetic or saturation.
const EXACT_I32_KEYS: usize = 512;

/// Where an operand of the attention core comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Operand {
    /// The f32 input of the replaced node at this position (quantized here).
    F32,
    /// Integer levels a producer wrote, already in the layout the GEMM reads, in this buffer.
    Int(usize),
}

/// Shapes and quantizers of one attention core.
#[derive(Clone, Debug)]
pub(crate) struct AttentionPlan {
    pub heads: usize,
    /// Query rows, key/value rows, key width, value width.
    pub m: usize,
    pub n: usize,
    pub dk: usize,
    pub dv: usize,
    pub q: (Operand, ActQuant),
    pub k: (Operand, ActQuant),
    pub v: (Operand, ActQuant),
    /// Whether the graph stores K as `[n, dk]` (else `[dk, n]`) and V as `[dv, n]` (else
    /// `[n, dv]`).
    pub k_nk: bool,
    pub v_vn: bool,
    /// Constant factors applied to the dequantized scores before the softmax, in order.
    pub factors: Vec<f32>,
    /// The probabilities' log quantizer.
    pub p: ActQuant,
    /// Sinks of the output (`[heads, m, dv]` as `heads` batches of `m × dv`), if quantized
    /// readers take it; else the f32 output is written.
    pub sinks: Vec<Sink>,
    /// The graph values of Q, K and V (read when an operand is f32).
    pub values: [crate::ValueId; 3],
}

/// One head's K or V as the GEMM's weight side, with the run-time steps of a dynamic side (one
/// per key of K, per channel of V) and the level sums of its rows.
#[derive(Debug, Default)]
pub(crate) struct PackedSide {
    packed: Option<PackedW8>,
    steps: Vec<RowQuant>,
    sums: Vec<i32>,
}

/// Per-head packed K and V, refilled by every core on every run (memory reused, and shared by
/// the cores of a plan).
#[derive(Debug, Default)]
pub(crate) struct AttnState {
    heads: Vec<[PackedSide; 2]>,
}

/// The inputs of one run.
pub(crate) struct AttnArgs<'a> {
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub q_int: &'a [i8],
    pub k_int: &'a [i8],
    pub v_int: &'a [i8],
    pub out: &'a mut [f32],
    pub sinks: &'a [Shared<i8>],
}

impl AttentionPlan {
    /// Grows `t` to this core's largest block (all query rows of a head) and packing.
    pub fn reserve(&self, ks: &KernelSet, t: &mut TaskScratch) {
        let (m, n, dk, dv) = (self.m, self.n, self.dk, self.dv);
        let desc = ks.w8a8_kernel();
        t.gemm.reserve(desc, m, dk, n);
        t.gemm.reserve(desc, m, n, dv);
        let side = (n * dk).max(dv * n);
        reserve(&mut t.a8, (m * dk).max(side));
        reserve(&mut t.hi, (m * n).max(side));
        reserve(&mut t.lo, m * n);
        reserve(&mut t.acc, (m * n).max(m * dv));
        reserve(&mut t.acc_lo, m * dv);
        reserve(&mut t.y, (m * n).max(m * dv).max(side));
        reserve(&mut t.tmp, m.max(2 * n).max(2 * dv));
        reserve(&mut t.tq, 1);
        reserve(&mut t.rowq, m);
    }

    fn zero_q(&self) -> i32 {
        match self.q.1 {
            ActQuant::Uniform { zero, .. } => zero,
            _ => 0,
        }
    }

    /// Packs one head's K (`[n, dk]`, `side` 0) or V (`[dv, n]`, `side` 1) as the GEMM's
    /// weight side.
    fn pack_head(
        &self,
        ks: &KernelSet,
        args: &AttnArgs,
        (h, side): (usize, usize),
        packed: &mut PackedSide,
        t: &mut TaskScratch,
    ) -> qvit_kernels::Result<()> {
        let (n, dk, dv) = (self.n, self.dk, self.dv);
        match side {
            // K's level sums meet Q's zero points when Q has a step per token.
            0 => {
                let k = (self.k, args.k, args.k_int);
                let layout = (self.k_nk, self.q.1.is_dynamic());
                pack_side(ks, k, h, (n, dk), layout, packed, t)
            }
            // V's level sums are never read.
            _ => {
                let v = (self.v, args.v, args.v_int);
                pack_side(ks, v, h, (dv, n), (self.v_vn, false), packed, t)
            }
        }
    }

    /// Runs every head.
    pub fn run(
        &self,
        ctx: &Ctx,
        scratches: &Scratches,
        state: &mut AttnState,
        args: AttnArgs,
    ) -> qvit_kernels::Result<()> {
        let ks = ctx.ks;
        // Only grows: a core with fewer heads than the last one must not free (and the next
        // one reallocate) packed panels in a steady-state run.
        if state.heads.len() < self.heads {
            state.heads.resize_with(self.heads, Default::default);
        }
        // K and V of every head are separate tasks: a model's few heads (3 in DeiT-Tiny) would
        // otherwise split unevenly over the threads.
        let sides = state.heads[..self.heads].as_flattened_mut();
        let slots = Shared::new(sides);
        super::parallel(ctx, 2 * self.heads, |t| {
            // SAFETY: task t is the only one that touches slot t (head t / 2, side t % 2).
            let slot = unsafe { &mut slots.slice(t, 1)[0] };
            scratches.with(|s| self.pack_head(&ks, &args, (t / 2, t % 2), slot, s))
        })?;
        let heads = &state.heads;
        let out = Shared::new(args.out);
        // Per query row: the two products (dk + 2·dv multiply-adds per key) and the softmax.
        let work = self.n * (self.dk + 2 * self.dv + 16);
        let blocks = RowBlocks::per_batch(ctx, self.heads, self.m, 8, work);
        blocks.run_batched(ctx, |h, r0, rows| {
            let [k_side, v_side] = &heads[h];
            scratches.with(|t| self.rows(ctx, &args, (k_side, v_side), (h, r0, rows), out, t))
        })
    }

    /// Query rows `r0..r0+rows` of head `h`.
    fn rows(
        &self,
        ctx: &Ctx,
        args: &AttnArgs,
        (k_side, v_side): (&PackedSide, &PackedSide),
        (h, r0, rows): (usize, usize, usize),
        out: Shared<f32>,
        t: &mut TaskScratch,
    ) -> qvit_kernels::Result<()> {
        let ks = &ctx.ks;
        let (m, n, dk, dv) = (self.m, self.n, self.dk, self.dv);
        let TaskScratch {
            gemm,
            a8,
            acc,
            acc_lo,
            y,
            tmp,
            tq,
            hi,
            lo,
            rowq,
            ..
        } = t;
        let (Some(kp), Some(vp)) = (&k_side.packed, &v_side.packed) else {
            return Ok(());
        };
        let span = (h * m + r0) * dk..(h * m + r0 + rows) * dk;
        let q: &[i8] = match self.q.0 {
            Operand::Int(_) => &args.q_int[span],
            Operand::F32 => {
                let a8 = sized(a8, rows * dk);
                let x = &args.q[span];
                match self.q.1.is_dynamic() {
                    true => dynamic::quantize_rows(ks, &self.q.1, x, dk, -128, a8, rowq)?,
                    false => levels_into(ks, &self.q.1, x, -128, a8)?,
                }
                a8
            }
        };
        let scores = sized(acc, rows * n);
        ks.gemm_w8a8_i32_with(gemm, q, rows, (self.zero_q() - 128) as i8, kp, scores)?;
        let probs = sized(y, rows * n);
        if self.q.1.is_dynamic() || self.k.1.is_dynamic() {
            let steps = (
                Steps::of(&self.q.1, rowq),
                Steps::of(&self.k.1, &k_side.steps),
            );
            dynamic::dequantize_product(scores, n, steps, (&k_side.sums, 1.0), tmp, probs)?;
        } else {
            let deq = self.q.1.scale() * self.k.1.scale();
            for (p, &s) in probs.iter_mut().zip(scores.iter()) {
                *p = s as f32 * deq;
            }
        }
        for &f in &self.factors {
            for v in probs.iter_mut() {
                *v *= f;
            }
        }
        ks.softmax_f32(probs, n)?;
        let (hi, lo) = (sized(hi, rows * n), sized(lo, rows * n));
        let bits = self.p.bits();
        let (m_steps, max) = (log_steps(bits), unsigned_max(bits));
        ks.log2_split_i8(probs, 1.0 / self.p.scale(), m_steps, max, hi, lo)?;
        let (acc, acc_lo) = (sized(acc, rows * dv), sized(acc_lo, rows * dv));
        ks.gemm_w8a8_i32_with(gemm, hi, rows, HI_ZERO, vp, acc)?;
        ks.gemm_w8a8_i32_with(gemm, lo, rows, LO_ZERO, vp, acc_lo)?;
        let div = (1u32 << LOG2_FRAC_BITS) as f32;
        let deq = self.p.scale() * self.v.1.scale() / div;
        let y = if self.sinks.is_empty() {
            // SAFETY: rows r0..r0+rows of head h belong to this block only.
            unsafe { out.slice((h * m + r0) * dv, rows * dv) }
        } else {
            sized(y, rows * dv)
        };
        let exact_i32 = n <= EXACT_I32_KEYS;
        if self.v.1.is_dynamic() {
            for (a, &b) in acc.iter_mut().zip(acc_lo.iter()) {
                *a = combine_split(*a, b, exact_i32);
            }
            let steps = (
                Steps::Static(self.p.scale()),
                Steps::of(&self.v.1, &v_side.steps),
            );
            dynamic::dequantize_product(acc, dv, steps, (&[], div), tmp, y)?;
        } else {
            for ((o, &a), &b) in y.iter_mut().zip(acc.iter()).zip(acc_lo.iter()) {
                *o = combine_split(a, b, exact_i32) as f32 * deq;
            }
        }
        for (sink, &dst) in self.sinks.iter().zip(args.sinks) {
            sink.write(ks, y, dv, h, r0, dst, tmp, tq)?;
        }
        Ok(())
    }
}

/// Packs head `h` of one side (`(operand, quantizer)`, its f32 and integer inputs) as the GEMM's
/// `[rows, cols]` weight side; `stored_as_rows`: the graph stores it so (else transposed). A
/// dynamic side quantizes each row with its own step; `with_sums` also keeps its rows' level
/// sums (for a left operand with zero points).
fn pack_side(
    ks: &KernelSet,
    ((op, act), f32s, ints): ((Operand, ActQuant), &[f32], &[i8]),
    h: usize,
    (rows, cols): (usize, usize),
    (stored_as_rows, with_sums): (bool, bool),
    side: &mut PackedSide,
    t: &mut TaskScratch,
) -> qvit_kernels::Result<()> {
    let len = rows * cols;
    let ready: &[i8] = match op {
        Operand::Int(_) => &ints[h * len..(h + 1) * len],
        Operand::F32 => {
            let x = &f32s[h * len..(h + 1) * len];
            t.a8.resize(len, 0);
            if act.is_dynamic() {
                let x = if stored_as_rows {
                    x
                } else {
                    transpose(x, cols, rows, &mut t.y);
                    &t.y[..len]
                };
                dynamic::quantize_rows(ks, &act, x, cols, 0, &mut t.a8, &mut side.steps)?;
                &t.a8
            } else {
                levels_into(ks, &act, x, 0, &mut t.a8)?;
                if stored_as_rows {
                    &t.a8
                } else {
                    transpose(&t.a8, cols, rows, &mut t.hi);
                    &t.hi
                }
            }
        }
    };
    if with_sums {
        dynamic::row_sums(ready, cols, &mut side.sums);
    }
    side.packed
        .get_or_insert_with(|| ks.empty_w8a8())
        .repack(ready, rows, cols)
}
