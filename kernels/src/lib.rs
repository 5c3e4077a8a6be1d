//! qvit kernels: int8/int4 GEMM and the float ops a Vision Transformer needs.
//!
//! This crate knows nothing of models. See the module docs for each contract.
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]
