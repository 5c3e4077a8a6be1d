//! What the running CPU can do, as capability tokens: zero-sized proofs that a feature was
//! detected. A tier's kernels take its token, so they cannot be reached on a CPU without the
//! feature. Tokens are created only by `Cpu::detect`, and a kernel set keeps only the tokens
//! of its own tier (`Cpu::for_tier`), so a forced tier cannot run another tier's code.

use crate::tier::Tier;

/// Proof that the running CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx2Fma(());

/// Proof that the running CPU has AVX2, FMA and AVX-VNNI (`vpdpbusd` on 256-bit registers).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvxVnni(());

/// Proof that the running CPU has AVX-512 F/BW and VNNI (plus the AVX2+FMA baseline).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx512Vnni(());

/// Proof that NEON is available (always true on the aarch64 targets we build; kept as a token
/// so every tier is reached the same way).
#[cfg(target_arch = "aarch64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neon(());

/// Proof that the running CPU has the ARMv8.2 dot-product instructions (SDOT/UDOT; Linux
/// `asimddp` hwcap).
#[cfg(target_arch = "aarch64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DotProd(());

/// Proof that the running CPU has the ARMv8.6 int8 matrix-multiply instructions (SMMLA; Linux
/// `i8mm` hwcap2).
#[cfg(target_arch = "aarch64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct I8mm(());

/// The capability tokens a CPU (or a kernel set restricted to one tier) grants.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cpu {
    #[cfg(target_arch = "x86_64")]
    pub(crate) avx2: Option<Avx2Fma>,
    #[cfg(target_arch = "x86_64")]
    pub(crate) avxvnni: Option<AvxVnni>,
    #[cfg(target_arch = "x86_64")]
    pub(crate) avx512vnni: Option<Avx512Vnni>,
    #[cfg(target_arch = "aarch64")]
    pub(crate) neon: Option<Neon>,
    #[cfg(target_arch = "aarch64")]
    pub(crate) dotprod: Option<DotProd>,
    #[cfg(target_arch = "aarch64")]
    pub(crate) i8mm: Option<I8mm>,
}

impl Cpu {
    /// The running CPU's features: every feature beyond the architecture baseline is detected at
    /// run time, because one binary must run on any CPU of its architecture.
    pub(crate) fn detect() -> Cpu {
        #[cfg(target_arch = "x86_64")]
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        Cpu {
            #[cfg(target_arch = "x86_64")]
            avx2: avx2.then_some(Avx2Fma(())),
            #[cfg(target_arch = "x86_64")]
            avxvnni: (avx2 && is_x86_feature_detected!("avxvnni")).then_some(AvxVnni(())),
            #[cfg(target_arch = "x86_64")]
            avx512vnni: (avx2
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni"))
            .then_some(Avx512Vnni(())),
            #[cfg(target_arch = "aarch64")]
            neon: std::arch::is_aarch64_feature_detected!("neon").then_some(Neon(())),
            #[cfg(target_arch = "aarch64")]
            dotprod: std::arch::is_aarch64_feature_detected!("dotprod").then_some(DotProd(())),
            #[cfg(target_arch = "aarch64")]
            i8mm: std::arch::is_aarch64_feature_detected!("i8mm").then_some(I8mm(())),
        }
    }

    /// No tokens at all: what the reference tier holds.
    fn none() -> Cpu {
        Cpu {
            #[cfg(target_arch = "x86_64")]
            avx2: None,
            #[cfg(target_arch = "x86_64")]
            avxvnni: None,
            #[cfg(target_arch = "x86_64")]
            avx512vnni: None,
            #[cfg(target_arch = "aarch64")]
            neon: None,
            #[cfg(target_arch = "aarch64")]
            dotprod: None,
            #[cfg(target_arch = "aarch64")]
            i8mm: None,
        }
    }

    /// Whether this CPU can run every kernel a set of `tier` may use.
    pub(crate) fn supports(&self, tier: Tier) -> bool {
        match tier {
            Tier::Reference => true,
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2 => self.avx2.is_some(),
            #[cfg(target_arch = "x86_64")]
            Tier::AvxVnni => self.avx2.is_some() && self.avxvnni.is_some(),
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512Vnni => self.avx2.is_some() && self.avx512vnni.is_some(),
            #[cfg(target_arch = "aarch64")]
            Tier::Neon => self.neon.is_some(),
            #[cfg(target_arch = "aarch64")]
            Tier::DotProd => self.neon.is_some() && self.dotprod.is_some(),
            #[cfg(target_arch = "aarch64")]
            Tier::I8mm => self.neon.is_some() && self.dotprod.is_some() && self.i8mm.is_some(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The fastest tier this CPU supports.
    pub(crate) fn best(&self) -> Tier {
        Tier::ALL
            .into_iter()
            .rev()
            .find(|&t| self.supports(t))
            .unwrap_or(Tier::Reference)
    }

    /// Only the tokens of the tiers `tier` includes ([`Tier::includes`]): what a kernel set of
    /// that tier holds, so no code of another tier can be reached through it.
    pub(crate) fn for_tier(&self, tier: Tier) -> Cpu {
        let keep = |t: Tier| tier.includes(t);
        let mut cpu = Cpu::none();
        #[cfg(target_arch = "x86_64")]
        {
            cpu.avx2 = self.avx2.filter(|_| keep(Tier::Avx2));
            cpu.avxvnni = self.avxvnni.filter(|_| keep(Tier::AvxVnni));
            cpu.avx512vnni = self.avx512vnni.filter(|_| keep(Tier::Avx512Vnni));
        }
        #[cfg(target_arch = "aarch64")]
        {
            cpu.neon = self.neon.filter(|_| keep(Tier::Neon));
            cpu.dotprod = self.dotprod.filter(|_| keep(Tier::DotProd));
            cpu.i8mm = self.i8mm.filter(|_| keep(Tier::I8mm));
        }
        let _ = keep;
        cpu
    }
}
