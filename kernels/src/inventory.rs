//! The one list of GEMM micro-kernels: name (ISA, op, types, tile), tier, required CPU features
//! and packing parameters. Dispatch, tests and benches iterate [`INVENTORY`], so no kernel ships
//! untested.

use crate::cpu::Cpu;
use crate::tier::Tier;
use crate::{Error, Result};

/// Largest `mr·nr` of any kernel (size of the driver's stack tile).
pub const MAX_TILE: usize = 256;

/// The operation a kernel implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// int8 activations × int8 weights → i32 (contract in the `gemm` module).
    GemmW8A8,
    /// uint4 activations (zero point subtracted at packing) × int4 weights → i32.
    GemmW4A4,
}

/// A micro-kernel: multiplies one packed `mr × (kb·kr)` activation panel by one packed
/// `nr × (kb·kr)` weight panel, **overwriting** the row-major `mr × nr` tile with `Σ a·w`.
/// Takes the detected [`Cpu`] and fails with [`Error::TierUnavailable`] when its capability
/// token is absent, so a descriptor can never run on the wrong CPU.
pub(crate) type W8A8Ukernel = fn(&Cpu, &[i8], &[i8], usize, &mut [i32]) -> Result<()>;

/// A kernel's own whole-GEMM loop over packed operands: `(cpu, activation panels, m, weight
/// panels, n, kb, fold, out, ldo)` stores `Σ a·w − fold[j]` into the `m × n` `out` whose rows
/// start `ldo ≥ n` values apart (so a run over some weight panels writes their columns of a
/// wider output). Kernels that have one skip the driver's tile write-back (the fold is applied
/// in registers).
pub(crate) type W8A8Packed =
    fn(&Cpu, &[i8], usize, &[i8], usize, usize, &[i32], &mut [i32], usize) -> Result<()>;

/// A kernel's own activation packer: `(cpu, out, a, rows, k, flip)` writes the panels of the
/// `[rows, k]` activations that [`crate::pack`] describes (adding 128 when `flip`) into `out`.
pub(crate) type PackA = fn(&Cpu, &mut Vec<i8>, &[i8], usize, usize, bool) -> Result<()>;

/// One kernel of the inventory.
#[derive(Debug)]
pub struct KernelDesc {
    /// `isa.tier.op_types_MRxNRcKR`, e.g. `aarch64.dotprod.gemm_w8a8_4x4c16`.
    pub name: &'static str,
    /// The tier it belongs to.
    pub tier: Tier,
    /// The operation.
    pub op: Op,
    /// CPU features it needs (beyond the architecture baseline).
    pub features: &'static [&'static str],
    /// Rows of activations per tile.
    pub mr: usize,
    /// Weight rows (output channels) per tile = the weight panel height.
    pub nr: usize,
    /// K values per packed block.
    pub kr: usize,
    /// Added to every activation when packing (as a sign-bit flip, so `a + 128` reads as u8) for
    /// kernels whose instruction multiplies unsigned by signed bytes; the driver subtracts
    /// `a_offset·Σₖ w` with the packed column sums. 0 for signed×signed kernels.
    pub a_offset: i32,
    pub(crate) available: fn(&Cpu) -> bool,
    pub(crate) ukernel: W8A8Ukernel,
    /// The kernel's whole-GEMM loop, when it has one (otherwise the driver tiles `ukernel`).
    pub(crate) packed: Option<W8A8Packed>,
    /// The kernel's own activation packer, when it has a faster one than the portable copy.
    pub(crate) pack_a: Option<PackA>,
}

impl KernelDesc {
    /// Whether the running CPU can execute this kernel.
    pub fn is_supported(&self) -> bool {
        self.supported_by(&Cpu::detect())
    }

    pub(crate) fn supported_by(&self, cpu: &Cpu) -> bool {
        cpu.supports(self.tier) && (self.available)(cpu)
    }
}

/// Every GEMM kernel compiled into this binary, slowest tier first.
pub static INVENTORY: &[KernelDesc] = &[
    KernelDesc {
        name: "reference.gemm_w8a8_4x4c4",
        tier: Tier::Reference,
        op: Op::GemmW8A8,
        features: &[],
        mr: 4,
        nr: 4,
        kr: 4,
        a_offset: 0,
        available: |_| true,
        ukernel: |_, a, b, kb, t| crate::reference::gemm_w8a8_ukernel(4, 4, 4, a, b, kb, t),
        packed: None,
        pack_a: None,
    },
    #[cfg(target_arch = "aarch64")]
    KernelDesc {
        name: "aarch64.neon.gemm_w8a8_4x4c16",
        tier: Tier::Neon,
        op: Op::GemmW8A8,
        features: &["neon"],
        mr: 4,
        nr: 4,
        kr: 16,
        a_offset: 0,
        available: |cpu| cpu.neon.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.neon.ok_or_else(|| unavailable("neon"))?;
            crate::aarch64::neon::gemm_w8a8_4x4c16(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.neon.ok_or_else(|| unavailable("neon"))?;
            crate::aarch64::neon::gemm_w8a8_4x4c16_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: None,
    },
    #[cfg(target_arch = "aarch64")]
    KernelDesc {
        name: "aarch64.dotprod.gemm_w8a8_4x4c16",
        tier: Tier::DotProd,
        op: Op::GemmW8A8,
        features: &["neon", "dotprod"],
        mr: 4,
        nr: 4,
        kr: 16,
        a_offset: 0,
        available: |cpu| cpu.dotprod.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.dotprod.ok_or_else(|| unavailable("dotprod"))?;
            crate::aarch64::dotprod::gemm_w8a8_4x4c16(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.dotprod.ok_or_else(|| unavailable("dotprod"))?;
            crate::aarch64::dotprod::gemm_w8a8_4x4c16_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: None,
    },
    #[cfg(target_arch = "aarch64")]
    KernelDesc {
        name: "aarch64.dotprod.gemm_w8a8_8x8c4",
        tier: Tier::DotProd,
        op: Op::GemmW8A8,
        features: &["neon", "dotprod"],
        mr: 8,
        nr: 8,
        kr: 4,
        a_offset: 0,
        available: |cpu| cpu.dotprod.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.dotprod.ok_or_else(|| unavailable("dotprod"))?;
            crate::aarch64::dotprod::gemm_w8a8_8x8c4(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.dotprod.ok_or_else(|| unavailable("dotprod"))?;
            crate::aarch64::dotprod::gemm_w8a8_8x8c4_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: Some(|cpu, out, a, rows, k, flip| {
            let tok = cpu.dotprod.ok_or_else(|| unavailable("dotprod"))?;
            crate::aarch64::dotprod::pack_a_8x4(tok, out, a, rows, k, flip);
            Ok(())
        }),
    },
    #[cfg(target_arch = "aarch64")]
    KernelDesc {
        name: "aarch64.i8mm.gemm_w8a8_8x8c8",
        tier: Tier::I8mm,
        op: Op::GemmW8A8,
        features: &["neon", "i8mm"],
        mr: 8,
        nr: 8,
        kr: 8,
        a_offset: 0,
        available: |cpu| cpu.i8mm.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.i8mm.ok_or_else(|| unavailable("i8mm"))?;
            crate::aarch64::i8mm::gemm_w8a8_8x8c8(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.i8mm.ok_or_else(|| unavailable("i8mm"))?;
            crate::aarch64::i8mm::gemm_w8a8_8x8c8_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: Some(|cpu, out, a, rows, k, flip| {
            let tok = cpu.i8mm.ok_or_else(|| unavailable("i8mm"))?;
            crate::aarch64::i8mm::pack_a_8x8(tok, out, a, rows, k, flip);
            Ok(())
        }),
    },
    #[cfg(target_arch = "x86_64")]
    KernelDesc {
        name: "x86_64.avx2.gemm_w8a8_6x16c2",
        tier: Tier::Avx2,
        op: Op::GemmW8A8,
        features: &["avx2"],
        mr: 6,
        nr: 16,
        kr: 2,
        a_offset: 0,
        available: |cpu| cpu.avx2.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.avx2.ok_or_else(|| unavailable("avx2"))?;
            crate::x86_64::avx2::gemm_w8a8_6x16c2(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.avx2.ok_or_else(|| unavailable("avx2"))?;
            crate::x86_64::avx2::gemm_w8a8_6x16c2_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: None,
    },
    #[cfg(target_arch = "x86_64")]
    KernelDesc {
        name: "x86_64.avxvnni.gemm_w8a8_6x16c4",
        tier: Tier::AvxVnni,
        op: Op::GemmW8A8,
        features: &["avx2", "avxvnni"],
        mr: 6,
        nr: 16,
        kr: 4,
        a_offset: 128,
        available: |cpu| cpu.avxvnni.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.avxvnni.ok_or_else(|| unavailable("avxvnni"))?;
            crate::x86_64::avxvnni::gemm_w8a8_6x16c4(tok, a, b, kb, t)
        },
        packed: None,
        pack_a: None,
    },
    #[cfg(target_arch = "x86_64")]
    KernelDesc {
        name: "x86_64.avx512vnni.gemm_w8a8_8x32c4",
        tier: Tier::Avx512Vnni,
        op: Op::GemmW8A8,
        features: &["avx2", "avx512f", "avx512bw", "avx512vnni"],
        mr: 8,
        nr: 32,
        kr: 4,
        a_offset: 128,
        available: |cpu| cpu.avx512vnni.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.avx512vnni.ok_or_else(|| unavailable("avx512vnni"))?;
            crate::x86_64::avx512vnni::gemm_w8a8_8x32c4(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.avx512vnni.ok_or_else(|| unavailable("avx512vnni"))?;
            crate::x86_64::avx512vnni::gemm_w8a8_8x32c4_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: Some(|cpu, out, a, rows, k, flip| {
            let tok = cpu.avx512vnni.ok_or_else(|| unavailable("avx512vnni"))?;
            crate::x86_64::avx512vnni::pack_a_8x4(tok, out, a, rows, k, flip);
            Ok(())
        }),
    },
    KernelDesc {
        name: "reference.gemm_w4a4_4x4c4",
        tier: Tier::Reference,
        op: Op::GemmW4A4,
        features: &[],
        mr: 4,
        nr: 4,
        kr: 4,
        a_offset: 0,
        available: |_| true,
        ukernel: |_, a, b, kb, t| crate::reference::gemm_w8a8_ukernel(4, 4, 4, a, b, kb, t),
        packed: None,
        pack_a: None,
    },
    #[cfg(target_arch = "aarch64")]
    KernelDesc {
        name: "aarch64.neon.gemm_w4a4_4x4c16",
        tier: Tier::Neon,
        op: Op::GemmW4A4,
        features: &["neon"],
        mr: 4,
        nr: 4,
        kr: 16,
        a_offset: 0,
        available: |cpu| cpu.neon.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.neon.ok_or_else(|| unavailable("neon"))?;
            crate::aarch64::neon::gemm_w4a4_4x4c16(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.neon.ok_or_else(|| unavailable("neon"))?;
            crate::aarch64::neon::gemm_w4a4_4x4c16_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: None,
    },
    // On SDOT/SMMLA/AVX2 the W8A8 kernels are already faster than the narrow-product trick, so
    // W4A4 runs them on the (zero-point-free) int4 values.
    #[cfg(target_arch = "aarch64")]
    KernelDesc {
        name: "aarch64.dotprod.gemm_w4a4_4x4c16",
        tier: Tier::DotProd,
        op: Op::GemmW4A4,
        features: &["neon", "dotprod"],
        mr: 4,
        nr: 4,
        kr: 16,
        a_offset: 0,
        available: |cpu| cpu.dotprod.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.dotprod.ok_or_else(|| unavailable("dotprod"))?;
            crate::aarch64::dotprod::gemm_w8a8_4x4c16(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.dotprod.ok_or_else(|| unavailable("dotprod"))?;
            crate::aarch64::dotprod::gemm_w8a8_4x4c16_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: None,
    },
    #[cfg(target_arch = "aarch64")]
    KernelDesc {
        name: "aarch64.dotprod.gemm_w4a4_8x8c4",
        tier: Tier::DotProd,
        op: Op::GemmW4A4,
        features: &["neon", "dotprod"],
        mr: 8,
        nr: 8,
        kr: 4,
        a_offset: 0,
        available: |cpu| cpu.dotprod.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.dotprod.ok_or_else(|| unavailable("dotprod"))?;
            crate::aarch64::dotprod::gemm_w8a8_8x8c4(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.dotprod.ok_or_else(|| unavailable("dotprod"))?;
            crate::aarch64::dotprod::gemm_w8a8_8x8c4_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: Some(|cpu, out, a, rows, k, flip| {
            let tok = cpu.dotprod.ok_or_else(|| unavailable("dotprod"))?;
            crate::aarch64::dotprod::pack_a_8x4(tok, out, a, rows, k, flip);
            Ok(())
        }),
    },
    #[cfg(target_arch = "aarch64")]
    KernelDesc {
        name: "aarch64.i8mm.gemm_w4a4_8x8c8",
        tier: Tier::I8mm,
        op: Op::GemmW4A4,
        features: &["neon", "i8mm"],
        mr: 8,
        nr: 8,
        kr: 8,
        a_offset: 0,
        available: |cpu| cpu.i8mm.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.i8mm.ok_or_else(|| unavailable("i8mm"))?;
            crate::aarch64::i8mm::gemm_w8a8_8x8c8(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.i8mm.ok_or_else(|| unavailable("i8mm"))?;
            crate::aarch64::i8mm::gemm_w8a8_8x8c8_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: Some(|cpu, out, a, rows, k, flip| {
            let tok = cpu.i8mm.ok_or_else(|| unavailable("i8mm"))?;
            crate::aarch64::i8mm::pack_a_8x8(tok, out, a, rows, k, flip);
            Ok(())
        }),
    },
    #[cfg(target_arch = "x86_64")]
    KernelDesc {
        name: "x86_64.avx2.gemm_w4a4_6x16c2",
        tier: Tier::Avx2,
        op: Op::GemmW4A4,
        features: &["avx2"],
        mr: 6,
        nr: 16,
        kr: 2,
        a_offset: 0,
        available: |cpu| cpu.avx2.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.avx2.ok_or_else(|| unavailable("avx2"))?;
            crate::x86_64::avx2::gemm_w8a8_6x16c2(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.avx2.ok_or_else(|| unavailable("avx2"))?;
            crate::x86_64::avx2::gemm_w8a8_6x16c2_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: None,
    },
    #[cfg(target_arch = "x86_64")]
    KernelDesc {
        name: "x86_64.avxvnni.gemm_w4a4_6x16c4",
        tier: Tier::AvxVnni,
        op: Op::GemmW4A4,
        features: &["avx2", "avxvnni"],
        mr: 6,
        nr: 16,
        kr: 4,
        a_offset: 128,
        available: |cpu| cpu.avxvnni.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.avxvnni.ok_or_else(|| unavailable("avxvnni"))?;
            crate::x86_64::avxvnni::gemm_w8a8_6x16c4(tok, a, b, kb, t)
        },
        packed: None,
        pack_a: None,
    },
    #[cfg(target_arch = "x86_64")]
    KernelDesc {
        name: "x86_64.avx512vnni.gemm_w4a4_8x32c4",
        tier: Tier::Avx512Vnni,
        op: Op::GemmW4A4,
        features: &["avx2", "avx512f", "avx512bw", "avx512vnni"],
        mr: 8,
        nr: 32,
        kr: 4,
        a_offset: 128,
        available: |cpu| cpu.avx512vnni.is_some(),
        ukernel: |cpu, a, b, kb, t| {
            let tok = cpu.avx512vnni.ok_or_else(|| unavailable("avx512vnni"))?;
            crate::x86_64::avx512vnni::gemm_w8a8_8x32c4(tok, a, b, kb, t)
        },
        packed: Some(|cpu, a, m, b, n, kb, fold, out, ldo| {
            let tok = cpu.avx512vnni.ok_or_else(|| unavailable("avx512vnni"))?;
            crate::x86_64::avx512vnni::gemm_w8a8_8x32c4_packed(tok, a, m, b, n, kb, fold, out, ldo)
        }),
        pack_a: Some(|cpu, out, a, rows, k, flip| {
            let tok = cpu.avx512vnni.ok_or_else(|| unavailable("avx512vnni"))?;
            crate::x86_64::avx512vnni::pack_a_8x4(tok, out, a, rows, k, flip);
            Ok(())
        }),
    },
];

fn unavailable(feature: &str) -> Error {
    Error::TierUnavailable(feature.to_string())
}

/// The fastest `op` kernel that a set of `tier` may run ([`Tier::includes`]) on `cpu` (the
/// inventory lists kernels slowest first).
pub(crate) fn best_kernel(cpu: &Cpu, op: Op, tier: Tier) -> Option<&'static KernelDesc> {
    INVENTORY
        .iter()
        .rev()
        .find(|d| d.op == op && tier.includes(d.tier) && d.supported_by(cpu))
}

/// The inventory as a Markdown table (name, op, tier, tile, features, whether this CPU runs it):
/// generated, so it cannot drift from the code.
pub fn markdown_table() -> String {
    let mut s = String::from(
        "| kernel | op | tier | MR×NR, KR | a_offset | features | runs here |\n|---|---|---|---|---|---|---|\n",
    );
    for d in INVENTORY {
        s += &format!(
            "| `{}` | {:?} | {} | {}×{}, {} | {} | {} | {} |\n",
            d.name,
            d.op,
            d.tier,
            d.mr,
            d.nr,
            d.kr,
            d.a_offset,
            d.features.join(", "),
            if d.is_supported() { "yes" } else { "no" }
        );
    }
    s
}
