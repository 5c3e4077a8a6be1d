//! Runtime kernel selection: detect the CPU once, keep the chosen implementations in a
//! [`KernelSet`]. This is the only place that chooses code by CPU feature: a set holds only the
//! capability tokens of its tier ([`Cpu::for_tier`]), and every tier-specific path (GEMM,
//! packing, epilogues, quantization, float ops) is reached through it. `QVIT_FORCE_TIER` (see
//! [`FORCE_TIER_ENV`]) forces a tier for A/B runs.

#[cfg(target_arch = "aarch64")]
use crate::aarch64::neon;
use crate::cpu::Cpu;
#[cfg(target_arch = "aarch64")]
use crate::cpu::Neon;
#[cfg(target_arch = "x86_64")]
use crate::cpu::{Avx2Fma, Avx512Vnni};
use crate::gemm::{self, PackedW8, Scratch};
use crate::inventory::{self, KernelDesc, Op};
use crate::tier::{FORCE_TIER_ENV, Tier};
#[cfg(target_arch = "x86_64")]
use crate::x86_64::{avx2, avx512vnni};
use crate::{Error, Result, reference};

impl Tier {
    /// Whether the running CPU can execute this tier.
    pub fn is_supported(self) -> bool {
        Cpu::detect().supports(self)
    }

    /// The tiers the running CPU supports, slowest first.
    pub fn supported() -> Vec<Tier> {
        let cpu = Cpu::detect();
        Tier::ALL.into_iter().filter(|&t| cpu.supports(t)).collect()
    }
}

/// Which implementation of the f32 ops (softmax, LayerNorm, GELU) a set uses.
#[derive(Clone, Copy, Debug)]
enum FloatOps {
    Reference,
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2Fma),
    /// AVX2's float ops, with the quantization loops compiled for 16 lanes.
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx2Fma, Avx512Vnni),
    #[cfg(target_arch = "aarch64")]
    Neon(Neon),
}

impl FloatOps {
    fn for_cpu(cpu: &Cpu, tier: Tier) -> FloatOps {
        match tier {
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2 | Tier::AvxVnni => cpu.avx2.map_or(FloatOps::Reference, FloatOps::Avx2),
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512Vnni => match (cpu.avx2, cpu.avx512vnni) {
                (Some(a), Some(b)) => FloatOps::Avx512(a, b),
                _ => FloatOps::Reference,
            },
            #[cfg(target_arch = "aarch64")]
            Tier::Neon | Tier::DotProd | Tier::I8mm => {
                cpu.neon.map_or(FloatOps::Reference, FloatOps::Neon)
            }
            _ => FloatOps::Reference,
        }
    }
}

/// The kernels chosen for this CPU. Cheap to copy; hold one per loaded model (two models may
/// hold different tiers).
#[derive(Clone, Copy, Debug)]
pub struct KernelSet {
    tier: Tier,
    cpu: Cpu,
    float: FloatOps,
    w8a8: &'static KernelDesc,
    w4a4: &'static KernelDesc,
}

impl KernelSet {
    /// The best tier this CPU supports, or the one forced by `QVIT_FORCE_TIER`. An unknown or
    /// unsupported forced tier is reported on stderr and ignored; use [`KernelSet::from_env`] to
    /// treat it as an error instead.
    pub fn detect() -> KernelSet {
        match KernelSet::from_env() {
            Ok(ks) => ks,
            Err(e) => {
                eprintln!("qvit-kernels: ignoring {FORCE_TIER_ENV}: {e}");
                KernelSet::best()
            }
        }
    }

    /// Like [`KernelSet::detect`] but an unknown or unsupported `QVIT_FORCE_TIER` is an error.
    pub fn from_env() -> Result<KernelSet> {
        match std::env::var(FORCE_TIER_ENV) {
            Ok(v) if !v.trim().is_empty() => KernelSet::with_tier(v.parse()?),
            _ => Ok(KernelSet::best()),
        }
    }

    /// The best tier this CPU supports, ignoring the environment.
    pub fn best() -> KernelSet {
        let cpu = Cpu::detect();
        KernelSet::build(cpu, cpu.best())
    }

    /// Exactly `tier`, or [`Error::TierUnavailable`] if this CPU cannot run it.
    pub fn with_tier(tier: Tier) -> Result<KernelSet> {
        let cpu = Cpu::detect();
        if !cpu.supports(tier) {
            return Err(Error::TierUnavailable(tier.name().to_string()));
        }
        Ok(KernelSet::build(cpu, tier))
    }

    fn build(detected: Cpu, tier: Tier) -> KernelSet {
        let cpu = detected.for_tier(tier);
        let pick = |op| {
            inventory::best_kernel(&cpu, op, tier)
                .or_else(|| inventory::best_kernel(&cpu, op, Tier::Reference))
                .unwrap_or(&inventory::INVENTORY[0])
        };
        KernelSet {
            tier,
            cpu,
            float: FloatOps::for_cpu(&cpu, tier),
            w8a8: pick(Op::GemmW8A8),
            w4a4: pick(Op::GemmW4A4),
        }
    }

    /// The W8A8 GEMM kernel of this set.
    pub fn w8a8_kernel(&self) -> &'static KernelDesc {
        self.w8a8
    }

    /// The W4A4 GEMM kernel of this set.
    pub fn w4a4_kernel(&self) -> &'static KernelDesc {
        self.w4a4
    }

    /// Packs int4 nibble weights (`[n, k]`, layout in [`crate::nibble`]) for this set's W4A4
    /// kernel.
    pub fn pack_w4a4(&self, w: &[u8], n: usize, k: usize) -> Result<PackedW8> {
        PackedW8::for_w4a4(self.w4a4, w, n, k)
    }

    /// W4A4: `out[m][n] = Σₖ (a[m][k] − a_zero)·w[n][k]` with uint4 activations (`[m, k]`, one
    /// per byte, values and `a_zero` in [0, 15]) and weights from [`KernelSet::pack_w4a4`];
    /// bit-exact with [`reference::gemm_w4a4_i32`]. Errors on lengths or ranges.
    pub fn gemm_w4a4_i32(
        &self,
        a: &[u8],
        m: usize,
        a_zero: u8,
        w: &PackedW8,
        out: &mut [i32],
    ) -> Result<()> {
        self.gemm_w4a4_i32_with(&mut Scratch::default(), a, m, a_zero, w, out)
    }

    /// Packs canonical `[n, k]` row-major int8 weights (values in [−127, 127]) for this set's
    /// W8A8 kernel, with the column sums that fold the activation zero point. Done once at load.
    pub fn pack_w8a8(&self, w: &[i8], n: usize, k: usize) -> Result<PackedW8> {
        PackedW8::new(self.w8a8, w, n, k)
    }

    /// Empty packed weights for this set's W8A8 kernel, to fill (and refill, without
    /// allocating once grown) with [`PackedW8::repack`].
    pub fn empty_w8a8(&self) -> PackedW8 {
        PackedW8::empty(self.w8a8)
    }

    /// Packs int4 nibble weights (`[n, k]`, layout in [`crate::nibble`]) for this set's W8A8
    /// kernel (W4A8 contract in [`crate::gemm`]); run them with [`KernelSet::gemm_w8a8_i32`].
    pub fn pack_w4a8(&self, w: &[u8], n: usize, k: usize) -> Result<PackedW8> {
        PackedW8::from_nibbles(self.w8a8, w, n, k)
    }

    /// `out[m][n] = Σₖ (a[m][k] − a_zero)·w[n][k]` (contract in [`crate::gemm`]), bit-exact with
    /// [`reference::gemm_w8a8_i32`]. `a` is `[m, k]` row-major; errors on mismatched lengths.
    pub fn gemm_w8a8_i32(
        &self,
        a: &[i8],
        m: usize,
        a_zero: i8,
        w: &PackedW8,
        out: &mut [i32],
    ) -> Result<()> {
        self.gemm_w8a8_i32_with(&mut Scratch::default(), a, m, a_zero, w, out)
    }

    /// [`KernelSet::gemm_w8a8_i32`] reusing `scratch` (no allocation once it has grown).
    pub fn gemm_w8a8_i32_with(
        &self,
        scratch: &mut Scratch,
        a: &[i8],
        m: usize,
        a_zero: i8,
        w: &PackedW8,
        out: &mut [i32],
    ) -> Result<()> {
        gemm::gemm_w8a8_i32(&self.cpu, scratch, a, m, a_zero, w, out)
    }

    /// [`KernelSet::gemm_w4a4_i32`] reusing `scratch` (no allocation once it has grown).
    pub fn gemm_w4a4_i32_with(
        &self,
        scratch: &mut Scratch,
        a: &[u8],
        m: usize,
        a_zero: u8,
        w: &PackedW8,
        out: &mut [i32],
    ) -> Result<()> {
        gemm::gemm_w4a4_i32(&self.cpu, scratch, a, m, a_zero, w, out)
    }

    /// [`KernelSet::gemm_w8a8_f32`] reusing `scratch` (no allocation once it has grown).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_w8a8_f32_with(
        &self,
        scratch: &mut Scratch,
        a: &[i8],
        m: usize,
        a_zero: i8,
        a_scale: f32,
        w: &PackedW8,
        w_scales: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) -> Result<()> {
        let mut acc = std::mem::take(&mut scratch.acc);
        acc.clear();
        acc.resize(out.len(), 0);
        let r = gemm::gemm_w8a8_i32(&self.cpu, scratch, a, m, a_zero, w, &mut acc).and_then(|()| {
            let n = w.n();
            let scales: Vec<f32> = w_scales.iter().map(|&s| a_scale * s).collect();
            let zeros = vec![0.0; n];
            self.dequantize_rows(&acc, n, &scales, bias.unwrap_or(&zeros), out)
        });
        scratch.acc = acc;
        r
    }

    /// W8A8 Linear with a dequantizing epilogue:
    /// `out = acc as f32 · (a_scale·w_scales[n]) + bias[n]` (see [`gemm::epilogue`]).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_w8a8_f32(
        &self,
        a: &[i8],
        m: usize,
        a_zero: i8,
        a_scale: f32,
        w: &PackedW8,
        w_scales: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) -> Result<()> {
        let scratch = &mut Scratch::default();
        self.gemm_w8a8_f32_with(scratch, a, m, a_zero, a_scale, w, w_scales, bias, out)
    }

    /// Dequantizing epilogue with precomputed per-channel scales, over `[m, n]` rows:
    /// `out = acc as f32 · scales[j] + bias[j]`, plain `a * b + c` (never an FMA), so bit-exact with
    /// [`gemm::epilogue::dequantize_i32_f32`] given `scales[j] = a_scale·w_scales[j]` and a zero
    /// bias for an absent one. Allocation-free. Errors on mismatched lengths.
    pub fn dequantize_rows(
        &self,
        acc: &[i32],
        n: usize,
        scales: &[f32],
        bias: &[f32],
        out: &mut [f32],
    ) -> Result<()> {
        gemm::epilogue::check_rows("dequantize_rows", acc.len(), n, scales, bias, out.len())?;
        match self.float {
            #[cfg(target_arch = "x86_64")]
            FloatOps::Avx512(_, wide) => {
                avx512vnni::dequantize_rows(wide, acc, n, scales, bias, out)
            }
            _ => crate::generic::quantize::dequantize_rows(acc, n, scales, bias, out),
        }
        Ok(())
    }

    /// The chosen tier.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Softmax over rows of `row_len`, in place: `yᵢ = e^(xᵢ − max) / Σⱼ e^(xⱼ − max)`.
    /// Relative error ≤ 1e-6 against the f64-accumulated reference; results below 2.3e-38 flush
    /// to zero. Errors if `row_len` is 0 or does not divide `x.len()`.
    pub fn softmax_f32(&self, x: &mut [f32], row_len: usize) -> Result<()> {
        reference::check_rows("softmax_f32", x.len(), row_len)?;
        match self.float {
            FloatOps::Reference => reference::softmax_f32(x, row_len)?,
            #[cfg(target_arch = "x86_64")]
            FloatOps::Avx2(cpu) | FloatOps::Avx512(cpu, _) => avx2::softmax_f32(cpu, x, row_len),
            #[cfg(target_arch = "aarch64")]
            FloatOps::Neon(cpu) => neon::softmax_f32(cpu, x, row_len),
        }
        Ok(())
    }

    /// LayerNorm over rows of `gamma.len()`: `out = (x − mean)/√(var + eps)·gamma + beta`
    /// (population variance), relative error ≤ 1e-5. Errors on mismatched lengths.
    pub fn layer_norm_f32(
        &self,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        out: &mut [f32],
    ) -> Result<()> {
        reference::check_layer_norm(x, gamma, beta, out)?;
        match self.float {
            FloatOps::Reference => reference::layer_norm_f32(x, gamma, beta, eps, out)?,
            #[cfg(target_arch = "x86_64")]
            FloatOps::Avx2(cpu) | FloatOps::Avx512(cpu, _) => {
                avx2::layer_norm_f32(cpu, x, gamma, beta, eps, out)
            }
            #[cfg(target_arch = "aarch64")]
            FloatOps::Neon(cpu) => neon::layer_norm_f32(cpu, x, gamma, beta, eps, out),
        }
        Ok(())
    }

    /// Table-driven attention product `out = lut[levels] · b` (contract in [`crate::attn`]),
    /// compiled for this set's tier; integer-exact, so identical on every tier.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_lut_i32(
        &self,
        levels: &[u8],
        m: usize,
        k: usize,
        lut: &[i32],
        b: &[i8],
        n: usize,
        out: &mut [i32],
    ) -> Result<()> {
        if !crate::attn::check(levels, m, k, lut, b, n, out)? {
            return Ok(());
        }
        match self.float {
            #[cfg(target_arch = "x86_64")]
            FloatOps::Avx2(cpu) | FloatOps::Avx512(cpu, _) => {
                avx2::matmul_lut_rows(cpu, levels, k, lut, b, n, out)
            }
            _ => crate::generic::attn::matmul_lut_rows(levels, k, lut, b, n, out),
        }
        Ok(())
    }

    /// Per-tensor activation levels:
    /// `out[i] = clamp(round_half_even(clamp(x[i]·inv_scale, −512, 512)) + zero, lo, hi)`,
    /// NaN → `clamp(zero, lo, hi)`. Rounding is IEEE add/subtract of 1.5·2²³ (no libm), so every
    /// tier gives the same integers. Errors on mismatched lengths or `lo > hi`.
    pub fn levels_i8(
        &self,
        x: &[f32],
        inv_scale: f32,
        zero: i32,
        (lo, hi): (i8, i8),
        out: &mut [i8],
    ) -> Result<()> {
        if x.len() != out.len() || lo > hi {
            return Err(Error::Shape {
                op: "levels_i8",
                what: format!("x {}, out {}, range [{lo}, {hi}]", x.len(), out.len()),
            });
        }
        let (lo, hi) = (lo as i32, hi as i32);
        match self.float {
            #[cfg(target_arch = "x86_64")]
            FloatOps::Avx2(cpu) => avx2::levels_i8(cpu, x, inv_scale, zero, lo, hi, out),
            #[cfg(target_arch = "x86_64")]
            FloatOps::Avx512(_, wide) => {
                avx512vnni::levels_i8(wide, x, inv_scale, zero, lo, hi, out)
            }
            #[cfg(target_arch = "aarch64")]
            FloatOps::Neon(cpu) => neon::levels_i8(cpu, x, inv_scale, zero, lo, hi, out),
            _ => crate::generic::quantize::levels_i8(x, inv_scale, zero, lo, hi, out),
        }
        Ok(())
    }

    /// Log-domain levels of probabilities split into two signed bytes (contract in
    /// [`crate::log2`]): `hi`, `lo` from `p·inv` with `m` levels per octave, clamped to `max`.
    /// Errors on mismatched lengths or parameters outside the contract.
    pub fn log2_split_i8(
        &self,
        p: &[f32],
        inv: f32,
        m: u32,
        max: i32,
        hi: &mut [i8],
        lo: &mut [i8],
    ) -> Result<()> {
        crate::log2::check(p, m, max, hi, lo)?;
        match self.float {
            #[cfg(target_arch = "x86_64")]
            FloatOps::Avx2(cpu) => avx2::log2_split_i8(cpu, p, inv, m, max, hi, lo),
            #[cfg(target_arch = "x86_64")]
            FloatOps::Avx512(_, wide) => avx512vnni::log2_split_i8(wide, p, inv, m, max, hi, lo),
            #[cfg(target_arch = "aarch64")]
            FloatOps::Neon(cpu) => neon::log2_split_i8(cpu, p, inv, m, max, hi, lo),
            FloatOps::Reference => crate::log2::log2_split_i8(p, inv, m, max, hi, lo)?,
        }
        Ok(())
    }

    /// Exact GELU `0.5·x·(1 + erf(x/√2))` in place, absolute error ≤ 2e-6·max(1, |x|).
    pub fn gelu_erf_f32(&self, x: &mut [f32]) {
        match self.float {
            FloatOps::Reference => reference::gelu_erf_f32(x),
            #[cfg(target_arch = "x86_64")]
            FloatOps::Avx2(cpu) | FloatOps::Avx512(cpu, _) => avx2::gelu_erf_f32(cpu, x),
            #[cfg(target_arch = "aarch64")]
            FloatOps::Neon(cpu) => neon::gelu_erf_f32(cpu, x),
        }
    }

    /// Tanh GELU `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` in place, absolute error
    /// ≤ 2e-6·max(1, |x|).
    pub fn gelu_tanh_f32(&self, x: &mut [f32]) {
        match self.float {
            FloatOps::Reference => reference::gelu_tanh_f32(x),
            #[cfg(target_arch = "x86_64")]
            FloatOps::Avx2(cpu) | FloatOps::Avx512(cpu, _) => avx2::gelu_tanh_f32(cpu, x),
            #[cfg(target_arch = "aarch64")]
            FloatOps::Neon(cpu) => neon::gelu_tanh_f32(cpu, x),
        }
    }
}
