//! Quantized Linear and activation × activation products on the integer kernels.
//!
//! The f32 input is mapped to integer levels by the op's [`ActQuant`] (exact, no libm), the
//! integer product runs on the [`KernelSet`]'s GEMM (bit-exact across tiers), and the shared
//! epilogue dequantizes. So for equal f32 inputs every CPU produces equal f32 outputs.

use super::Ctx;
use super::dynamic;
use crate::quant::{
    ActQuant, IntData, LOG2_FRAC_BITS, LogLevels, RowQuant, log_level_value, log_steps,
    symmetric_max, unsigned_max,
};
use qvit_kernels::KernelSet;
use qvit_kernels::gemm::{PackedW8, Scratch};
use rayon::prelude::*;

/// The first `n` elements of `v`, grown (never shrunk) to fit: no allocation or zeroing once
/// the buffer has reached its largest size, for outputs a kernel overwrites anyway.
pub(crate) fn sized<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

/// Reusable integer buffers of the quantized kernels.
#[derive(Debug, Default)]
pub(crate) struct QScratch {
    a8: Vec<i8>,
    a4: Vec<u8>,
    b: Vec<i8>,
    acc: Vec<i32>,
    gemm: Scratch,
    /// The right operand of an activation product, packed for the GEMM (refilled every call).
    packed: Option<PackedW8>,
    /// Low bytes of log-quantized probabilities and their partial products.
    lo: Vec<i8>,
    acc_lo: Vec<i32>,
    /// Row quantizers of a dynamic layer's input, and one row's epilogue factors.
    rowq: Vec<RowQuant>,
    row_scales: Vec<f32>,
    /// A dynamic right operand of an activation product: its f32 columns as rows, their
    /// quantizers and their level sums.
    b_rows: Vec<f32>,
    colq: Vec<RowQuant>,
    col_sums: Vec<i32>,
}

/// Integer levels of `x` under `act` plus `offset` (−128 turns uniform levels into the i8
/// activations of the W8A8 GEMM), on the set's vectorised quantizer: the same integers as
/// [`ActQuant::level`]. `act` is uniform or symmetric.
pub(crate) fn levels_into(
    ks: &KernelSet,
    act: &ActQuant,
    x: &[f32],
    offset: i32,
    out: &mut [i8],
) -> qvit_kernels::Result<()> {
    let inv = 1.0 / act.scale();
    match *act {
        ActQuant::Symmetric { bits, .. } => {
            let m = symmetric_max(bits);
            ks.levels_i8(
                x,
                inv,
                offset,
                ((offset - m) as i8, (offset + m) as i8),
                out,
            )
        }
        ActQuant::Uniform { bits, zero, .. } => {
            let range = (offset as i8, (unsigned_max(bits) + offset) as i8);
            ks.levels_i8(x, inv, zero + offset, range, out)
        }
        ActQuant::Log2 { .. } => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = (act.level(v, inv) + offset) as i8;
            }
            Ok(())
        }
        // Never a sink's quantizer: the pass leaves dynamic layers their f32 input.
        ActQuant::Dynamic { .. } | ActQuant::DynamicSymmetric { .. } => {
            Err(dynamic::dynamic_without_rows())
        }
    }
}

/// Levels of `x` under `act` plus `offset` into `out`, grown to fit: [`levels_into`] on a
/// reusable buffer.
fn int_levels(
    ks: &KernelSet,
    act: &ActQuant,
    x: &[f32],
    offset: i32,
    out: &mut Vec<i8>,
) -> qvit_kernels::Result<()> {
    out.resize(x.len(), 0);
    levels_into(ks, act, x, offset, out)
}

/// Levels of a log quantizer (table indices of [`QMatMulPlan`]'s fixed-point values).
fn log_levels(act: &ActQuant, x: &[f32], out: &mut Vec<u8>) {
    let t = LogLevels::new(log_steps(act.bits()), unsigned_max(act.bits()));
    let inv = 1.0 / act.scale();
    out.clear();
    out.extend(x.iter().map(|&v| t.level(v * inv) as u8));
}

/// `256·hi + lo`, the product of log-quantized probabilities from its high- and low-byte
/// parts, saturated to `i32` (which `exact_i32` promises it never needs: then it is plain
/// wrapping i32 arithmetic, which vectorises).
#[inline(always)]
pub(crate) fn combine_split(hi: i32, lo: i32, exact_i32: bool) -> i32 {
    if exact_i32 {
        hi.wrapping_mul(256).wrapping_add(lo)
    } else {
        (256 * hi as i64 + lo as i64).clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }
}

/// Rows and columns of [`transpose`]'s tiles: a tile's destination rows stay in cache while
/// it is written, instead of every source row touching every destination row.
const TRANSPOSE_TILE: usize = 16;

/// `dst[c][r] = src[r][c]` for a `[rows, cols]` matrix.
pub(crate) fn transpose<T: Copy + Default>(src: &[T], rows: usize, cols: usize, dst: &mut Vec<T>) {
    dst.resize(rows * cols, T::default());
    if cols == 0 {
        return;
    }
    for (tile_r, band) in src.chunks(TRANSPOSE_TILE * cols).enumerate() {
        let r0 = tile_r * TRANSPOSE_TILE;
        for c0 in (0..cols).step_by(TRANSPOSE_TILE) {
            let c1 = (c0 + TRANSPOSE_TILE).min(cols);
            for (dr, row) in band.chunks_exact(cols).enumerate() {
                for (c, &v) in row[c0..c1].iter().enumerate() {
                    dst[(c0 + c) * rows + r0 + dr] = v;
                }
            }
        }
    }
}

fn zero_of(act: &ActQuant) -> i32 {
    match *act {
        ActQuant::Uniform { zero, .. } => zero,
        _ => 0,
    }
}

/// A planned [`crate::Op::QLinear`]: weights packed once for the set's kernel.
#[derive(Clone, Debug)]
pub(crate) struct QLinearPlan {
    m: usize,
    n: usize,
    act: ActQuant,
    /// W4A4 kernel (both sides ≤ 4 bits) instead of W8A8.
    w4a4: bool,
    packed: PackedW8,
    /// `act.scale·w_scale[n]`: the dequantizing epilogue's factor per output channel (for a
    /// dynamic `act`, `w_scale[n]`: the row's step multiplies it per row).
    scales: Vec<f32>,
    /// `Σₖ w[n][k]` of a dynamic layer (the row zero point's fold); empty for a static one.
    col_sums: Vec<i32>,
    /// The bias of a layer without one (an absent bias adds +0.0, like a zero bias).
    zeros: Vec<f32>,
}

/// Integer activations of a quantized Linear, as its kernel takes them.
#[derive(Clone, Copy)]
pub(crate) enum Levels<'a> {
    /// W8A8: levels − 128.
    I8(&'a [i8]),
    /// W4A4: levels 0..=15.
    U4(&'a [u8]),
}

impl QLinearPlan {
    /// Packs `weight` (`[n, k]`) for `ks`.
    pub fn new(
        ks: &KernelSet,
        m: usize,
        (n, k): (usize, usize),
        act: ActQuant,
        weight: &IntData,
        w_scales: &[f32],
    ) -> Result<Self, String> {
        let w4a4 = weight.bits <= 4 && act.bits() <= 4;
        // Weights of 4 bits or fewer stay nibbles in memory, whichever kernel runs them.
        let nibbles = || qvit_kernels::nibble::pack_nibbles(&weight.data, k);
        let packed = if w4a4 {
            nibbles().and_then(|nib| ks.pack_w4a4(&nib, n, k))
        } else if weight.bits <= 4 {
            nibbles().and_then(|nib| ks.pack_w4a8(&nib, n, k))
        } else {
            ks.pack_w8a8(&weight.data, n, k)
        }
        .map_err(|e| e.to_string())?;
        let mut col_sums = Vec::new();
        if act.is_dynamic() {
            dynamic::row_sums(&weight.data, k, &mut col_sums);
        }
        Ok(QLinearPlan {
            m,
            n,
            act,
            w4a4,
            packed,
            // A dynamic quantizer's scale() is 1: the factors are the weight scales exactly.
            scales: w_scales.iter().map(|&s| act.scale() * s).collect(),
            col_sums,
            zeros: vec![0.0; n],
        })
    }

    /// Bytes of the packed weights (panels and column sums).
    pub fn packed_bytes(&self) -> usize {
        self.packed.resident_bytes()
    }

    /// Bytes of the epilogue's per-channel factors, zero bias and column sums.
    pub fn epilogue_bytes(&self) -> usize {
        (self.scales.capacity() + self.zeros.capacity()) * std::mem::size_of::<f32>()
            + self.col_sums.capacity() * std::mem::size_of::<i32>()
    }

    /// Rows of the input (tokens).
    pub fn m(&self) -> usize {
        self.m
    }

    /// Output channels.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input channels.
    pub fn k(&self) -> usize {
        self.packed.k()
    }

    /// The input quantizer.
    pub fn act(&self) -> ActQuant {
        self.act
    }

    /// Whether the layer runs the W4A4 kernel (activations as levels 0..=15) rather than W8A8
    /// (levels − 128).
    pub fn w4a4(&self) -> bool {
        self.w4a4
    }

    /// The offset this layer's kernel expects on its activation levels.
    pub fn level_offset(&self) -> i32 {
        if self.w4a4 { 0 } else { -128 }
    }

    /// Rows of the kernel's row tile (row blocks for threads are multiples of it).
    pub fn row_tile(&self) -> usize {
        self.packed.kernel().mr
    }

    /// Grows `s` to what a product of up to `rows` rows needs.
    pub fn reserve(&self, s: &mut Scratch, rows: usize) {
        s.reserve(self.packed.kernel(), rows, self.k(), self.n);
    }

    /// The integer levels of `x` (whole rows of `k`) as this layer's kernel takes them (plus
    /// [`QLinearPlan::level_offset`]); a dynamic layer's row quantizers go to `rowq`.
    pub fn quantize(
        &self,
        ks: &KernelSet,
        x: &[f32],
        out: &mut [i8],
        rowq: &mut Vec<RowQuant>,
    ) -> qvit_kernels::Result<()> {
        match self.act {
            ActQuant::Dynamic { .. } => {
                dynamic::quantize_rows(ks, &self.act, x, self.k(), self.level_offset(), out, rowq)
            }
            act => levels_into(ks, &act, x, self.level_offset(), out),
        }
    }

    /// `acc = Σ (a − zero)·w` for `rows` rows of integer activations (`acc`: `rows × n`).
    pub fn gemm(
        &self,
        ks: &KernelSet,
        s: &mut Scratch,
        a: Levels,
        rows: usize,
        acc: &mut [i32],
    ) -> qvit_kernels::Result<()> {
        let zero = zero_of(&self.act);
        match a {
            Levels::U4(a4) => ks.gemm_w4a4_i32_with(s, a4, rows, zero as u8, &self.packed, acc),
            Levels::I8(a8) => {
                ks.gemm_w8a8_i32_with(s, a8, rows, (zero - 128) as i8, &self.packed, acc)
            }
        }
    }

    /// The dequantizing epilogue: `out = acc·scales + bias`, for a dynamic layer with the rows'
    /// quantizers `rowq` (see [`dynamic`]); plus `residual` when given (the layer feeds an `Add`).
    pub fn dequantize(
        &self,
        ks: &KernelSet,
        acc: &[i32],
        rowq: &[RowQuant],
        (bias, residual): (Option<&[f32]>, Option<&[f32]>),
        out: &mut [f32],
    ) -> qvit_kernels::Result<()> {
        let bias = bias.unwrap_or(&self.zeros);
        if self.act.is_dynamic() {
            let w = (&self.scales[..], &self.col_sums[..]);
            return dynamic::dequantize_rows(acc, self.n, w, rowq, bias, residual, out);
        }
        ks.dequantize_rows(acc, self.n, &self.scales, bias, out)?;
        if let Some(res) = residual {
            // IEEE addition commutes: the same bits whichever side the graph's Add reads it on.
            for (o, &r) in out.iter_mut().zip(res) {
                *o += r;
            }
        }
        Ok(())
    }

    /// Runs the layer on `x` (`[m, k]`); errors only on an internal length mismatch.
    pub fn run(
        &self,
        ctx: &Ctx,
        qs: &mut QScratch,
        x: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) -> qvit_kernels::Result<()> {
        let (k, n) = (self.k(), self.n);
        #[allow(clippy::too_many_arguments)]
        let one = |ks: &KernelSet,
                   s: &mut Scratch,
                   acc: &mut Vec<i32>,
                   rows: usize,
                   a8: &[i8],
                   a4: &[u8],
                   rowq: &[RowQuant],
                   o: &mut [f32]| {
            let a = if self.w4a4 {
                Levels::U4(a4)
            } else {
                Levels::I8(a8)
            };
            let acc = sized(acc, rows * n);
            self.gemm(ks, s, a, rows, acc)?;
            self.dequantize(ks, acc, rowq, (bias, None), o)
        };
        let a8 = sized(&mut qs.a8, x.len());
        self.quantize(&ctx.ks, x, a8, &mut qs.rowq)?;
        if self.w4a4 {
            // Levels 0..=15 are the uint4 activations of the W4A4 GEMM.
            qs.a4.clear();
            qs.a4.extend(a8.iter().map(|&v| v as u8));
        }
        let a8 = &qs.a8[..x.len()];
        let mr = self.row_tile();
        match ctx.pool {
            Some(pool) if self.m >= 2 * mr * ctx.threads => {
                // Row blocks per thread, each a multiple of the kernel's row tile.
                let rows = self.m.div_ceil(ctx.threads).next_multiple_of(mr);
                let (a4, rowq) = (&qs.a4, &qs.rowq);
                pool.install(|| {
                    out.par_chunks_mut(rows * n)
                        .enumerate()
                        .try_for_each(|(t, o)| {
                            let r = o.len() / n;
                            let (lo, hi) = (t * rows * k, (t * rows + r) * k);
                            let a8 = a8.get(lo..hi).unwrap_or(&[]);
                            let a4 = a4.get(lo..hi).unwrap_or(&[]);
                            let rq = rowq.get(t * rows..t * rows + r).unwrap_or(&[]);
                            one(
                                &ctx.ks,
                                &mut Scratch::default(),
                                &mut Vec::new(),
                                r,
                                a8,
                                a4,
                                rq,
                                o,
                            )
                        })
                })
            }
            _ => one(
                &ctx.ks,
                &mut qs.gemm,
                &mut qs.acc,
                self.m,
                a8,
                &qs.a4,
                &qs.rowq,
                out,
            ),
        }
    }
}

/// A planned [`crate::Op::QMatMul`] over equal batch axes.
#[derive(Clone, Debug)]
pub(crate) struct QMatMulPlan {
    batches: usize,
    m: usize,
    n: usize,
    k: usize,
    transpose_b: bool,
    a: ActQuant,
    b: ActQuant,
    /// Fixed-point value `P(q)` of every level `q` of a log-quantized `a` as two signed bytes:
    /// `P = 256·(hi + 64) + (lo + 128)` (empty for uniform `a`). `P ≤ 2¹⁵`, so both fit.
    split: Vec<(i8, i8)>,
}

/// Zero points that undo the offsets of [`QMatMulPlan::split`]'s bytes in the GEMM.
const HI_ZERO: i8 = -64;
const LO_ZERO: i8 = -128;

impl QMatMulPlan {
    /// Plans `out[..., M, N] = a[..., M, K] · b` (`b` `[..., K, N]`, or `[..., N, K]` when
    /// `transpose_b`); `None` when the shapes do not fit.
    pub fn new(
        a_shape: &[usize],
        b_shape: &[usize],
        out: &[usize],
        transpose_b: bool,
        a: ActQuant,
        b: ActQuant,
    ) -> Option<Self> {
        let r = out.len();
        if r < 2 || a_shape.len() != r || b_shape.len() != r {
            return None;
        }
        let (m, k) = (a_shape[r - 2], a_shape[r - 1]);
        let n = out[r - 1];
        let want_b = if transpose_b { [n, k] } else { [k, n] };
        let batch = &out[..r - 2];
        if b_shape[r - 2..] != want_b
            || out[r - 2] != m
            || a_shape[..r - 2] != *batch
            || b_shape[..r - 2] != *batch
        {
            return None;
        }
        let split = match a {
            ActQuant::Log2 { bits, .. } => (0..=unsigned_max(bits) as u32)
                .map(|q| {
                    let p = log_level_value(q, log_steps(bits));
                    (((p >> 8) - 64) as i8, ((p & 255) - 128) as i8)
                })
                .collect(),
            _ => Vec::new(),
        };
        Some(QMatMulPlan {
            split,
            batches: batch.iter().product(),
            m,
            n,
            k,
            transpose_b,
            a,
            b,
        })
    }

    /// Runs every batch; errors only on an internal length mismatch.
    ///
    /// Both operand kinds run on the W8A8 GEMM with `b` as the packed weight side (`[n, k]`).
    /// A log-quantized `a` stands for `P(q)` up to 2¹⁵, more than a byte: its high and low
    /// bytes are multiplied separately and combined, `Σ P·b = 256·Σ hi·b + Σ lo·b` exactly.
    /// Dynamic operands take their steps per row of `a` and per column of the product
    /// (`dynamic`), folded into the epilogue.
    pub fn run(
        &self,
        ctx: &Ctx,
        qs: &mut QScratch,
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
    ) -> qvit_kernels::Result<()> {
        let (m, n, k) = (self.m, self.n, self.k);
        let log2 = matches!(self.a, ActQuant::Log2 { .. });
        let div = if log2 {
            (1u32 << LOG2_FRAC_BITS) as f32
        } else {
            1.0
        };
        // Dividing by 1.0 is exact: one formula for both kinds of left operand.
        let deq = self.a.scale() * self.b.scale() / div;
        let dynamic = self.a.is_dynamic() || self.b.is_dynamic();
        let ks = &ctx.ks;
        let one = |qs: &mut QScratch, t: usize, o: &mut [f32]| -> qvit_kernels::Result<()> {
            let (ab, bb) = (&a[t * m * k..][..m * k], &b[t * k * n..][..k * n]);
            let QScratch {
                a8,
                a4: lv,
                b: bq,
                acc,
                gemm,
                packed,
                lo,
                acc_lo,
                rowq,
                row_scales,
                b_rows,
                colq,
                col_sums,
                ..
            } = qs;
            // The GEMM reads b as [n, k] (its weight layout): quantize in the stored layout,
            // then transpose the bytes when they differ. A dynamic b takes a step per column
            // of the product, so its f32 values are put in [n, k] rows first.
            if self.b.is_dynamic() {
                let rows: &[f32] = if self.transpose_b {
                    bb
                } else {
                    transpose(bb, k, n, b_rows);
                    b_rows
                };
                bq.resize(n * k, 0);
                dynamic::quantize_rows(ks, &self.b, rows, k, 0, bq, colq)?;
            } else if self.transpose_b {
                int_levels(ks, &self.b, bb, 0, bq)?;
            } else {
                int_levels(ks, &self.b, bb, 0, a8)?;
                transpose(a8, k, n, bq);
            }
            let packed = packed.get_or_insert_with(|| ks.empty_w8a8());
            packed.repack(bq, n, k)?;
            acc.clear();
            acc.resize(m * n, 0);
            if log2 {
                log_levels(&self.a, ab, lv);
                a8.clear();
                a8.extend(lv.iter().map(|&q| self.split[q as usize].0));
                lo.clear();
                lo.extend(lv.iter().map(|&q| self.split[q as usize].1));
                acc_lo.clear();
                acc_lo.resize(m * n, 0);
                ks.gemm_w8a8_i32_with(gemm, a8, m, HI_ZERO, packed, acc)?;
                ks.gemm_w8a8_i32_with(gemm, lo, m, LO_ZERO, packed, acc_lo)?;
                for (h, &l) in acc.iter_mut().zip(acc_lo.iter()) {
                    *h = combine_split(*h, l, false);
                }
            } else if self.a.is_dynamic() {
                a8.resize(m * k, 0);
                dynamic::quantize_rows(ks, &self.a, ab, k, -128, a8, rowq)?;
                ks.gemm_w8a8_i32_with(gemm, a8, m, -128, packed, acc)?;
            } else {
                int_levels(ks, &self.a, ab, -128, a8)?;
                ks.gemm_w8a8_i32_with(gemm, a8, m, (zero_of(&self.a) - 128) as i8, packed, acc)?;
            }
            if dynamic {
                if self.a.is_dynamic() {
                    dynamic::row_sums(bq, k, col_sums);
                }
                let sides = (
                    dynamic::Steps::of(&self.a, rowq),
                    dynamic::Steps::of(&self.b, colq),
                );
                let sums = (&col_sums[..], div);
                return dynamic::dequantize_product(acc, n, sides, sums, row_scales, o);
            }
            for (o, &v) in o.iter_mut().zip(acc.iter()) {
                *o = v as f32 * deq;
            }
            Ok(())
        };
        let mn = m * n;
        match ctx.pool {
            Some(pool) if self.batches >= ctx.threads => pool.install(|| {
                out.par_chunks_mut(mn)
                    .enumerate()
                    .try_for_each(|(t, o)| one(&mut QScratch::default(), t, o))
            }),
            _ => {
                for (t, o) in out.chunks_mut(mn).enumerate().take(self.batches) {
                    one(qs, t, o)?;
                }
                Ok(())
            }
        }
    }
}
