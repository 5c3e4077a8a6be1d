//! Quantized GEMM contracts and the tier-independent driver.
//!
//! # W8A8 Linear (`gemm_w8a8`)
//!
//! * Activations `a`: `[M, K]` row-major `i8`, per-tensor affine: real value `(a − a_zero)·a_scale`.
//! * Weights `w`: `[N, K]` row-major `i8` (the bundle's canonical layout), symmetric per output
//!   channel: real value `w·w_scale[n]`, **`w ∈ [−127, 127]`** (symmetric quantizers never emit
//!   −128; the NEON tier relies on it to add two products in 16 bits without overflow).
//! * Accumulator: `acc[m][n] = Σₖ (a[m][k] − a_zero)·w[n][k]`, exact in `i32` for `K ≤ 65 536`
//!   (|term| ≤ 255·127). Kernels compute `Σ a·w − a_zero·Σₖ w[n][k]` with the column sums taken at
//!   packing; both are exact integers, so every tier is bit-exact with [`crate::reference`].
//! * Epilogues (shared by all tiers, so they are bit-exact too; see [`epilogue`]): `i32` out;
//!   dequantize `y = acc as f32 · (a_scale·w_scale[n]) + bias[n]`; requantize
//!   `q = clamp(round_half_even(y · (1/out_scale)) + out_zero)` to int8.
//!
//! # W4A8 Linear
//!
//! Same formula with `w ∈ [−8, 7]` stored as nibbles ([`crate::nibble`]). [`PackedW8::from_nibbles`]
//! keeps them nibbles in memory, in nibble panels: each call expands a few weight panels at a
//! time (at most [`EXPAND_BYTES`], an L1-sized buffer) and runs the W8A8 kernels on them
//! (bit-exact with [`crate::reference::gemm_w4a8_i32`]). Expanding costs `O(N·K)` shifts per
//! call against the `O(M·N·K)` product; the kernels themselves do not read nibbles.
//!
//! # W4A4 Linear
//!
//! `acc[m][n] = Σₖ (a[m][k] − a_zero)·w[n][k]` with uint4 activations `a ∈ [0, 15]` given one per
//! byte (they are produced and consumed at run time, so they are not nibble-packed), `a_zero ∈
//! [0, 15]`, and int4 nibble weights. The zero point is subtracted while packing the activations,
//! so every product lies in [−120, 120]: the NEON kernel multiplies in 8-bit lanes.
//!
//! Weights are packed once at load ([`PackedW8`]) for the chosen kernel, int4 ones as nibble
//! panels like W4A8's; activations are packed per call into the same panel layout (`O(M·K)`,
//! against the `O(M·N·K)` product).

pub mod epilogue;

use crate::cpu::Cpu;
use crate::inventory::{KernelDesc, Op};
use crate::pack::{k_blocks, pack_panels_into};
use crate::{Error, Result};

/// Reusable per-call buffers of the GEMM entry points (packed activations, centred int4
/// activations, accumulators). Keep one per executor thread to make inference allocation-free
/// once the buffers have grown to the largest layer.
#[derive(Debug, Default)]
pub struct Scratch {
    pub(crate) a: Vec<i8>,
    pub(crate) centred: Vec<i8>,
    pub(crate) acc: Vec<i32>,
    pub(crate) fold: Vec<i32>,
    /// Weight panels expanded from nibbles.
    pub(crate) w: Vec<i8>,
}

impl Scratch {
    /// Grows the buffers to what a product of `m` rows, `k` deep, into `n` channels needs with
    /// `kernel`, so later calls of that size or smaller allocate nothing.
    pub fn reserve(&mut self, kernel: &KernelDesc, m: usize, k: usize, n: usize) {
        let panels = m.div_ceil(kernel.mr.max(1)) * kernel.mr;
        let a = panels * k_blocks(k, kernel.kr.max(1)) * kernel.kr;
        grow(&mut self.a, a);
        grow(&mut self.centred, m * k);
        grow(&mut self.fold, n);
        grow(
            &mut self.w,
            ExpandGroups::new(kernel, k, n, EXPAND_BYTES).buffer(),
        );
    }
}

/// Int8 bytes of weight panels expanded from nibbles at a time: within a 32 KiB L1 beside the
/// activation panel the kernel streams (at least one panel whatever its size).
pub const EXPAND_BYTES: usize = 16 * 1024;

/// How a nibble-panel product is cut: `per` panels of `panel` int8 bytes (`half` as nibbles)
/// expanded at a time, out of `panels`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExpandGroups {
    pub(crate) panel: usize,
    pub(crate) half: usize,
    pub(crate) per: usize,
    pub(crate) panels: usize,
}

impl ExpandGroups {
    pub(crate) fn new(kernel: &KernelDesc, k: usize, n: usize, budget: usize) -> ExpandGroups {
        let (nr, kr) = (kernel.nr.max(1), kernel.kr.max(1));
        let kb = k_blocks(k, kr);
        let panel = nr * kr * kb;
        ExpandGroups {
            panel,
            half: crate::nibble::half_panel(kb, nr * kr),
            per: (budget / panel.max(1)).max(1),
            panels: n.div_ceil(nr),
        }
    }

    /// Bytes of the expansion buffer.
    pub(crate) fn buffer(&self) -> usize {
        self.per.min(self.panels) * self.panel
    }
}

fn grow<T>(v: &mut Vec<T>, n: usize) {
    v.reserve(n.saturating_sub(v.len()));
}

/// Largest K for which the i32 accumulator of the W8A8 contract cannot overflow.
pub const MAX_K: usize = 65_536;

/// Weights of one W8A8 Linear packed for one kernel, with the column sums that fold the
/// activation zero point.
#[derive(Clone, Debug)]
pub struct PackedW8 {
    pub(crate) kernel: &'static KernelDesc,
    pub(crate) n: usize,
    pub(crate) k: usize,
    /// Int8 panels, or nibble panels ([`crate::nibble`]) when `nibbles`.
    pub(crate) data: Vec<i8>,
    pub(crate) nibbles: bool,
    pub(crate) col_sums: Vec<i32>,
}

impl PackedW8 {
    /// Packs canonical `[n, k]` row-major weights for `kernel`. Errors on a length mismatch,
    /// `k > MAX_K`, a value of −128, or a kernel that is not a W8A8 GEMM.
    pub fn new(kernel: &'static KernelDesc, w: &[i8], n: usize, k: usize) -> Result<PackedW8> {
        expect_op(kernel, Op::GemmW8A8, "pack_w8")?;
        PackedW8::pack(kernel, w, n, k)
    }

    /// Packs int4 weights (`[n, k]` nibble rows, layout in [`crate::nibble`]) for a W4A4 kernel.
    pub fn for_w4a4(kernel: &'static KernelDesc, w: &[u8], n: usize, k: usize) -> Result<PackedW8> {
        expect_op(kernel, Op::GemmW4A4, "pack_w4a4")?;
        PackedW8::pack_nibbles(kernel, w, n, k)
    }

    /// Packs nibble rows as nibble panels: values in [−8, 7] by construction. One weight panel
    /// (`nr` rows) is unpacked and packed at a time, so loading a layer never holds it at a
    /// byte per value; panels are independent, so the result is the whole layer's packing.
    fn pack_nibbles(kernel: &'static KernelDesc, w: &[u8], n: usize, k: usize) -> Result<PackedW8> {
        let rb = crate::nibble::row_bytes(k);
        if k == 0 || n == 0 || n.checked_mul(rb) != Some(w.len()) {
            // Empty shapes and length errors, as the whole-layer unpacking reports them.
            let mut p = PackedW8::pack(kernel, &crate::nibble::unpack_nibbles(w, n, k)?, n, k)?;
            p.data = Vec::new();
            p.nibbles = true;
            return Ok(p);
        }
        let g = ExpandGroups::new(kernel, k, n, EXPAND_BYTES);
        let mut one = PackedW8::empty(kernel);
        let mut data = Vec::with_capacity(g.panels * g.half);
        let mut col_sums = Vec::with_capacity(n);
        for rows in w.chunks(kernel.nr.max(1) * rb) {
            let r = rows.len() / rb;
            one.repack(&crate::nibble::unpack_nibbles(rows, r, k)?, r, k)?;
            data.extend(crate::nibble::compress_panels(&one.data, g.panel, g.half));
            col_sums.extend_from_slice(&one.col_sums);
        }
        Ok(PackedW8 {
            kernel,
            n,
            k,
            data,
            nibbles: true,
            col_sums,
        })
    }

    fn pack(kernel: &'static KernelDesc, w: &[i8], n: usize, k: usize) -> Result<PackedW8> {
        let mut p = PackedW8::empty(kernel);
        p.repack(w, n, k)?;
        Ok(p)
    }

    /// No weights yet, for `kernel`: fill it with [`PackedW8::repack`].
    pub(crate) fn empty(kernel: &'static KernelDesc) -> PackedW8 {
        PackedW8 {
            kernel,
            n: 0,
            k: 0,
            data: Vec::new(),
            nibbles: false,
            col_sums: Vec::new(),
        }
    }

    /// Packs canonical `[n, k]` row-major weights (values in [−127, 127]) for the same kernel,
    /// replacing the current ones and reusing their memory: operands that change every run
    /// (the right-hand side of an attention product) are packed without allocating once the
    /// buffers have grown. Errors as [`PackedW8::new`].
    pub fn repack(&mut self, w: &[i8], n: usize, k: usize) -> Result<()> {
        let op = "pack_w8";
        if n.checked_mul(k) != Some(w.len()) {
            return Err(Error::Shape {
                op,
                what: format!("weights have {} values, expected {n}×{k}", w.len()),
            });
        }
        if k > MAX_K {
            return Err(Error::Shape {
                op,
                what: format!("K = {k} exceeds {MAX_K}"),
            });
        }
        if let Some(i) = w.iter().position(|&v| v == i8::MIN) {
            return Err(Error::Shape {
                op,
                what: format!("weight {i} is -128; symmetric weights lie in [-127, 127]"),
            });
        }
        self.col_sums.clear();
        self.col_sums.extend(
            w.chunks(k.max(1))
                .take(n)
                .map(|row| row.iter().map(|&v| v as i32).sum::<i32>()),
        );
        self.col_sums.resize(n, 0);
        pack_panels_into(
            &mut self.data,
            w,
            n,
            k,
            self.kernel.nr,
            self.kernel.kr,
            false,
        );
        (self.n, self.k, self.nibbles) = (n, k, false);
        Ok(())
    }

    /// Packs int4 weights (`[n, k]` nibble rows, layout in [`crate::nibble`]) for a W8A8 kernel
    /// (W4A8): they stay nibbles in memory, half a byte per weight, and each product expands
    /// them a few panels at a time.
    pub fn from_nibbles(
        kernel: &'static KernelDesc,
        w: &[u8],
        n: usize,
        k: usize,
    ) -> Result<PackedW8> {
        expect_op(kernel, Op::GemmW8A8, "pack_w4a8")?;
        PackedW8::pack_nibbles(kernel, w, n, k)
    }

    /// Whether the weights are held as nibbles (4 bits each) rather than bytes.
    pub fn is_nibbles(&self) -> bool {
        self.nibbles
    }

    /// Output channels.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input channels.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The kernel these weights are packed for.
    pub fn kernel(&self) -> &'static KernelDesc {
        self.kernel
    }

    /// Bytes these weights keep resident: the packed panels and the column sums.
    pub fn resident_bytes(&self) -> usize {
        self.data.capacity() + self.col_sums.capacity() * std::mem::size_of::<i32>()
    }
}

/// Errors unless `kernel` computes `op` (weights packed for one op's kernel cannot run another).
fn expect_op(kernel: &KernelDesc, op: Op, name: &'static str) -> Result<()> {
    if kernel.op == op {
        return Ok(());
    }
    let what = match op {
        Op::GemmW8A8 => format!("kernel {} is not a W8A8 GEMM", kernel.name),
        Op::GemmW4A4 => format!("kernel {} is not a W4A4 GEMM", kernel.name),
    };
    Err(Error::Shape { op: name, what })
}

/// `out[m][n] = Σₖ (a[m][k] − a_zero)·w[n][k]` with `w`'s (W8A8) kernel; lengths checked here.
pub(crate) fn gemm_w8a8_i32(
    cpu: &Cpu,
    scratch: &mut Scratch,
    a: &[i8],
    m: usize,
    a_zero: i8,
    w: &PackedW8,
    out: &mut [i32],
) -> Result<()> {
    if w.kernel.op != Op::GemmW8A8 {
        let what = format!("weights are packed for {}", w.kernel.name);
        return Err(Error::Shape {
            op: "gemm_w8a8",
            what,
        });
    }
    check_dims("gemm_w8a8", a.len(), m, w, out.len())?;
    let desc = w.kernel;
    let ap = &mut scratch.a;
    pack_activations(cpu, desc, ap, a, m, w.k)?;
    // The kernel saw `a + a_offset`; one subtraction folds both offsets.
    let za = a_zero as i32 + desc.a_offset;
    run_packed(cpu, ap, m, za, w, (&mut scratch.fold, &mut scratch.w), out)
}

/// W4A4: `out[m][n] = Σₖ (a[m][k] − a_zero)·w[n][k]` with uint4 activations `a ∈ [0, 15]` (one per
/// byte), `a_zero ∈ [0, 15]` and `w`'s (W4A4) kernel. The zero point is subtracted while packing,
/// so kernels see `[−15, 15] × [−8, 7]` products that fit in a byte.
pub(crate) fn gemm_w4a4_i32(
    cpu: &Cpu,
    scratch: &mut Scratch,
    a: &[u8],
    m: usize,
    a_zero: u8,
    w: &PackedW8,
    out: &mut [i32],
) -> Result<()> {
    let op = "gemm_w4a4";
    if w.kernel.op != Op::GemmW4A4 {
        return Err(Error::Shape {
            op,
            what: format!("weights are packed for {}", w.kernel.name),
        });
    }
    check_dims(op, a.len(), m, w, out.len())?;
    // An OR over all values has a bit above the low four iff one exceeds 15; unlike `any`, the
    // fold has no early exit, so it vectorises (the short-circuit scan cost 3 instructions per
    // value on aarch64, a tenth of a DeiT-Tiny W4A4 inference).
    if a.iter().fold(a_zero, |acc, &v| acc | v) > 15 {
        return Err(Error::Shape {
            op,
            what: format!("activations or zero point {a_zero} outside [0, 15]"),
        });
    }
    scratch.centred.clear();
    scratch
        .centred
        .extend(a.iter().map(|&v| v.wrapping_sub(a_zero) as i8));
    let desc = w.kernel;
    pack_activations(cpu, desc, &mut scratch.a, &scratch.centred, m, w.k)?;
    // Only a u8×i8 kernel's own offset remains to fold; the zero point is already subtracted.
    let bufs = (&mut scratch.fold, &mut scratch.w);
    run_packed(cpu, &scratch.a, m, desc.a_offset, w, bufs, out)
}

/// Packs `[m, k]` activations for `desc` with its own packer when it has one (sign-flipped for
/// u8×i8 kernels).
fn pack_activations(
    cpu: &Cpu,
    desc: &KernelDesc,
    out: &mut Vec<i8>,
    a: &[i8],
    m: usize,
    k: usize,
) -> Result<()> {
    let flip = desc.a_offset != 0;
    match desc.pack_a {
        Some(pack) => pack(cpu, out, a, m, k, flip),
        None => {
            pack_panels_into(out, a, m, k, desc.mr, desc.kr, flip);
            Ok(())
        }
    }
}

fn check_dims(
    op: &'static str,
    a_len: usize,
    m: usize,
    w: &PackedW8,
    out_len: usize,
) -> Result<()> {
    let (n, k) = (w.n, w.k);
    if m.checked_mul(k) != Some(a_len) {
        return Err(Error::Shape {
            op,
            what: format!("activations have {a_len} values, expected {m}×{k}"),
        });
    }
    if m.checked_mul(n) != Some(out_len) {
        return Err(Error::Shape {
            op,
            what: format!("output has {out_len} values, expected {m}×{n}"),
        });
    }
    Ok(())
}

/// `out = Σ a_packed·w − za_fold·colsum` over the packed activations `ap`, with the kernel's own
/// whole-GEMM loop when it has one (`KernelDesc::packed`), else by tiling its micro-kernel.
///
/// The fold `za_fold·colsum` is computed once per call into `bufs.0`; nibble weights expand
/// into `bufs.1`. Every term is exact in `i32` (see the module contract), so wrapping arithmetic
/// gives the exact result and lets the write-back vectorise (no overflow-check branches in
/// debug builds).
fn run_packed(
    cpu: &Cpu,
    ap: &[i8],
    m: usize,
    za_fold: i32,
    w: &PackedW8,
    (fold, wbuf): (&mut Vec<i32>, &mut Vec<i8>),
    out: &mut [i32],
) -> Result<()> {
    let kb = k_blocks(w.k, w.kernel.kr);
    if kb == 0 || m == 0 || w.n == 0 {
        out.fill(0);
        return Ok(());
    }
    fold.clear();
    fold.extend(w.col_sums.iter().map(|&c| za_fold.wrapping_mul(c)));
    if w.nibbles {
        let groups = ExpandGroups::new(w.kernel, w.k, w.n, EXPAND_BYTES);
        return run_expanded(cpu, ap, m, w, groups, fold, wbuf, out);
    }
    run_panels(cpu, w.kernel, ap, m, &w.data, w.n, kb, fold, out, w.n)
}

/// `Σ a·w − fold` of the int8 weight panels `b` (`n` channels) into `out`, rows `ldo` apart:
/// the kernel's own whole-GEMM loop when it has one, else its micro-kernel tiled.
#[allow(clippy::too_many_arguments)]
fn run_panels(
    cpu: &Cpu,
    desc: &KernelDesc,
    ap: &[i8],
    m: usize,
    b: &[i8],
    n: usize,
    kb: usize,
    fold: &[i32],
    out: &mut [i32],
    ldo: usize,
) -> Result<()> {
    match desc.packed {
        Some(packed) => packed(cpu, ap, m, b, n, kb, fold, out, ldo),
        None => run_tiles(cpu, desc, ap, m, b, n, kb, fold, out, ldo),
    }
}

/// [`run_panels`] over nibble weights: `groups.per` panels at a time are expanded into `wbuf`
/// and multiplied into their columns of `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_expanded(
    cpu: &Cpu,
    ap: &[i8],
    m: usize,
    w: &PackedW8,
    groups: ExpandGroups,
    fold: &[i32],
    wbuf: &mut Vec<i8>,
    out: &mut [i32],
) -> Result<()> {
    let ExpandGroups {
        panel,
        half,
        per,
        panels,
    } = groups;
    let (nr, kb) = (w.kernel.nr, k_blocks(w.k, w.kernel.kr));
    if wbuf.len() < groups.buffer() {
        // Within the capacity `Scratch::reserve` gave: no allocation in steady state.
        wbuf.resize(groups.buffer(), 0);
    }
    for g0 in (0..panels).step_by(per) {
        let g = per.min(panels - g0);
        let b = &mut wbuf[..g * panel];
        crate::nibble::expand_panels(b, &w.data[g0 * half..(g0 + g) * half], panel, half);
        let c0 = g0 * nr;
        let cols = (g * nr).min(w.n - c0);
        let fold = &fold[c0..c0 + cols];
        run_panels(cpu, w.kernel, ap, m, b, cols, kb, fold, &mut out[c0..], w.n)?;
    }
    Ok(())
}

/// Runs `desc`'s micro-kernel over every (weight panel of `b`, activation panel) pair and
/// stores `tile − fold` into the valid part of `out` (rows `ldo` apart). Weight panels are the
/// outer loop: one panel (`nr·k` bytes) stays in L1 while the activation panels stream past it.
#[allow(clippy::too_many_arguments)]
fn run_tiles(
    cpu: &Cpu,
    desc: &KernelDesc,
    ap: &[i8],
    m: usize,
    b: &[i8],
    n: usize,
    kb: usize,
    fold: &[i32],
    out: &mut [i32],
    ldo: usize,
) -> Result<()> {
    let t = Tiles {
        desc,
        ap,
        m,
        b,
        n,
        kb,
        ldo,
    };
    match desc.nr {
        4 => run_tiles_nr::<4>(cpu, t, fold, out),
        8 => run_tiles_nr::<8>(cpu, t, fold, out),
        16 => run_tiles_nr::<16>(cpu, t, fold, out),
        32 => run_tiles_nr::<32>(cpu, t, fold, out),
        _ => Err(Error::Shape {
            op: "gemm",
            what: format!("kernel {} has an unsupported tile width", desc.name),
        }),
    }
}

/// The operands [`run_tiles`] walks.
#[derive(Clone, Copy)]
struct Tiles<'a> {
    desc: &'a KernelDesc,
    ap: &'a [i8],
    m: usize,
    b: &'a [i8],
    n: usize,
    kb: usize,
    ldo: usize,
}

/// [`run_tiles`] for a kernel `NR` columns wide: full tile rows are stored as whole `[i32; NR]`
/// arrays (a few vector instructions), only the ragged last weight panel goes element-wise.
fn run_tiles_nr<const NR: usize>(cpu: &Cpu, t: Tiles, fold: &[i32], out: &mut [i32]) -> Result<()> {
    let Tiles {
        desc,
        ap,
        m,
        b,
        n,
        kb,
        ldo,
    } = t;
    let (mr, kr) = (desc.mr, desc.kr);
    let mut tile = [0i32; crate::inventory::MAX_TILE];
    let tile = &mut tile[..mr * NR];
    let a_panels = ap.chunks_exact(mr * kr * kb).take(m.div_ceil(mr));
    let b_panels = b.chunks_exact(NR * kr * kb).zip(fold[..n].chunks(NR));
    for (pj, (b_panel, fold_j)) in b_panels.enumerate() {
        let full: Option<&[i32; NR]> = fold_j.try_into().ok();
        for (pi, a_panel) in a_panels.clone().enumerate() {
            (desc.ukernel)(cpu, a_panel, b_panel, kb, tile)?;
            let rows = mr.min(m - pi * mr);
            let (trows, _) = tile.as_chunks::<NR>();
            for (r, trow) in trows.iter().take(rows).enumerate() {
                let at = (pi * mr + r) * ldo + pj * NR;
                match full {
                    Some(f) => {
                        let row: [i32; NR] = std::array::from_fn(|c| trow[c].wrapping_sub(f[c]));
                        out[at..at + NR].copy_from_slice(&row);
                    }
                    None => {
                        let o = &mut out[at..at + fold_j.len()];
                        for ((o, &t), &f) in o.iter_mut().zip(trow).zip(fold_j) {
                            *o = t.wrapping_sub(f);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
