//! qvit kernels: int8/int4 GEMM and the float ops a Vision Transformer needs.
//!
//! This crate knows nothing of models. [`KernelSet`] is resolved once (at model load) from the
//! CPU's features and holds the chosen implementation of every op. Layout: [`reference`](mod@reference) is the
//! scalar oracle; `aarch64::{neon, dotprod, i8mm}` and `x86_64::{avx2, avxvnni, avx512vnni}` are
//! the tiers, each reached only through a capability token of [`cpu`], which only the set hands
//! out; `generic` holds algorithms written once and compiled per tier; [`tier`] names the tiers.
//!
//! # Adding a kernel tier
//!
//! Each step names the file and the test that fails when the step is forgotten.
//!
//! 1. [`tier`]: a [`Tier`] variant, its place in `Tier::ALL` (slowest first: the last supported
//!    tier is the default), its `name()` for `QVIT_FORCE_TIER`, and `includes()` (which tiers'
//!    code it may run). `tests/tiers.rs::tier_names_round_trip` checks the names.
//! 2. [`cpu`]: a capability token, its run-time detection in `Cpu::detect`, `Cpu::supports` and
//!    the masking in `Cpu::for_tier`. Without the token no kernel of the tier can be called.
//! 3. The tier module (`x86_64/<tier>/` or `aarch64/<tier>/`): one file per (ISA, op) kernel,
//!    named `<op>_<types>_<MR>x<NR>c<KR>.rs`. Every public entry takes the token, calls
//!    `tier::hit(Tier::…)` first, checks its operands (`pack::check_ukernel` for GEMM tiles) and
//!    puts a `// SAFETY:` line on each `unsafe` block.
//! 4. `inventory.rs`: one `KernelDesc` per GEMM kernel (name, tier, features, tile, `a_offset`,
//!    optional whole-GEMM loop and activation packer). `tests/gemm_w8a8.rs`, `gemm_w4a8.rs` and
//!    `gemm_w4a4.rs` run every entry against [`reference`](mod@reference) bit for bit;
//!    `tests/tiers.rs::with_tier_honours_support` fails if the tier has no W8A8 kernel of its own.
//! 5. `set.rs`: the tier's `FloatOps` (its own, or an included tier's) in `FloatOps::for_cpu`,
//!    and an arm in every `match self.float` (the compiler refuses a missing one).
//!    `tests/tiers.rs::forced_tier_runs_no_other_tiers_code` runs every op of the set and fails
//!    if the tier runs none of its own code or any code of a tier it does not include;
//!    `tests/float_ops.rs` and `tests/quantize_levels.rs` check its float ops and quantizer.
//! 6. `scripts/test.sh`: a `QEMU_CPU` model that has the feature (aarch64), so CI runs the tier;
//!    a CPU without it prints `SKIPPED` for that tier, never passes it silently. Then the
//!    README's list of `QVIT_FORCE_TIER` values and the inventory table in `bench-results/`.
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_arch = "aarch64")]
mod aarch64;
pub mod attn;
pub mod cpu;
pub mod error;
pub mod gemm;
mod generic;
pub mod inventory;
pub mod log2;
pub mod nibble;
mod pack;
pub mod reference;
mod set;
pub mod tier;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use error::{Error, Result};
pub use set::KernelSet;
pub use tier::{FORCE_TIER_ENV, Tier, take_tier_hits};
