//! Instruction-set tiers: names, the order in which they are preferred, which tiers' code a tier
//! may run, and (in builds with debug assertions) a per-thread count of tier-specific kernel
//! entries, so tests can prove that a forced tier runs no code of another tier.

use std::str::FromStr;

use crate::{Error, Result};

/// Environment variable that forces a tier (`reference|neon|dotprod|i8mm|avx2|avxvnni|avx512vnni`).
pub const FORCE_TIER_ENV: &str = "QVIT_FORCE_TIER";

/// An instruction-set tier, from slowest to fastest on its architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Tier {
    /// Portable scalar code: the oracle of the tests.
    Reference,
    /// aarch64 ARMv8.0 NEON (Cortex-A53/A57/A72).
    Neon,
    /// aarch64 NEON + SDOT (ARMv8.2 dotprod: Cortex-A76/A78).
    DotProd,
    /// aarch64 NEON + SDOT + SMMLA (ARMv8.6 i8mm: Neoverse N2/V1).
    I8mm,
    /// x86_64 AVX2 + FMA (Haswell, Zen).
    Avx2,
    /// x86_64 AVX2 + FMA + AVX-VNNI (`vpdpbusd` on 256-bit registers: Alder Lake, Zen 5).
    AvxVnni,
    /// x86_64 AVX2 + FMA + AVX-512 F/BW/VNNI (Ice Lake, Sapphire Rapids, Zen 4).
    Avx512Vnni,
}

/// Number of [`Tier`] variants.
#[cfg(debug_assertions)]
const COUNT: usize = Tier::ALL.len();

impl Tier {
    /// Every tier, slowest first within each architecture.
    pub const ALL: [Tier; 7] = [
        Tier::Reference,
        Tier::Neon,
        Tier::DotProd,
        Tier::I8mm,
        Tier::Avx2,
        Tier::AvxVnni,
        Tier::Avx512Vnni,
    ];

    /// The lower-case name used by [`FORCE_TIER_ENV`] and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Reference => "reference",
            Tier::Neon => "neon",
            Tier::DotProd => "dotprod",
            Tier::I8mm => "i8mm",
            Tier::Avx2 => "avx2",
            Tier::AvxVnni => "avxvnni",
            Tier::Avx512Vnni => "avx512vnni",
        }
    }

    /// Whether a kernel set of this tier may run code of `other`: itself, the portable
    /// reference, and the tiers it extends (SDOT and I8MM keep NEON's float ops; the VNNI tiers
    /// keep AVX2's). Never a sibling: an AVX-512 set runs no AVX-VNNI code, a CPU may have one
    /// without the other.
    pub fn includes(self, other: Tier) -> bool {
        use Tier::*;
        other == self
            || other == Reference
            || matches!(
                (self, other),
                (DotProd | I8mm, Neon) | (I8mm, DotProd) | (AvxVnni | Avx512Vnni, Avx2)
            )
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Tier {
    type Err = Error;

    fn from_str(s: &str) -> Result<Tier> {
        Tier::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::TierUnavailable(s.to_string()))
    }
}

#[cfg(debug_assertions)]
thread_local! {
    static HITS: [std::cell::Cell<u64>; COUNT] = const { [const { std::cell::Cell::new(0) }; COUNT] };
}

/// Records one entry into code of `tier` on this thread. Every tier-specific kernel entry calls
/// it; it compiles to nothing without debug assertions.
#[inline(always)]
pub(crate) fn hit(tier: Tier) {
    #[cfg(debug_assertions)]
    HITS.with(|h| {
        let c = &h[tier as usize];
        c.set(c.get() + 1);
    });
    #[cfg(not(debug_assertions))]
    let _ = tier;
}

/// Tier-specific kernel entries on this thread since the previous call, per tier (portable
/// reference code is not counted), and resets the counts. Counted only in builds with debug
/// assertions (tests, dev builds); release builds report `None`.
pub fn take_tier_hits() -> Option<Vec<(Tier, u64)>> {
    #[cfg(debug_assertions)]
    {
        Some(HITS.with(|h| {
            Tier::ALL
                .into_iter()
                .map(|t| (t, h[t as usize].replace(0)))
                .filter(|&(_, n)| n > 0)
                .collect()
        }))
    }
    #[cfg(not(debug_assertions))]
    None
}
