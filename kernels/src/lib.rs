//! qvit kernels: int8/int4 GEMM and the float ops a Vision Transformer needs.
//!
//! This crate knows nothing of models. [`KernelSet`] is resolved once (at model load) from the
//! CPU's features and holds the chosen implementation of every op.
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod error;
pub mod reference;
mod set;

pub use error::{Error, Result};
pub use set::{KernelSet, Tier};
