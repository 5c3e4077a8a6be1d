//! SMMLA tier (ARMv8.6 `i8mm`: Neoverse N2/V1/V2, Graviton 3/4, Cortex-A510/A710+): a 2×8 by
//! 8×2 int8 matrix multiply-accumulate per instruction.

mod gemm_w8a8_8x8c8;
mod pack;

pub use gemm_w8a8_8x8c8::{gemm_w8a8_8x8c8, gemm_w8a8_8x8c8_packed};
pub(crate) use pack::pack_a_8x8;
