//! qvit kernels: int8/int4 GEMM and the float ops a Vision Transformer needs.
//!
//! This crate knows nothing of models. [`KernelSet`] is resolved once (at model load) from the
//! CPU's features and holds the chosen implementation of every op. Layout: [`reference`](mod@reference) is the
//! scalar oracle; `aarch64::{neon, dotprod, i8mm}` and `x86_64::avx2` are the tiers, each reached
//! only through a capability token (`Neon::detect() -> Option<Neon>` …); `generic` holds
//! algorithms written once and compiled per tier.
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod attn;
pub mod error;
pub mod gemm;
mod generic;
pub mod inventory;
pub mod nibble;
mod pack;
pub mod reference;
mod set;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

pub use error::{Error, Result};
pub use set::{FORCE_TIER_ENV, KernelSet, Tier};
