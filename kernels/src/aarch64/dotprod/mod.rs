//! SDOT tier (ARMv8.2 `dotprod`: Cortex-A55/A76/A78, Pi 5, Orin): int8 dot products four at a
//! time per 32-bit lane.

mod gemm_w8a8_4x4c16;
mod gemm_w8a8_8x8c4;
mod pack;

pub use gemm_w8a8_4x4c16::{gemm_w8a8_4x4c16, gemm_w8a8_4x4c16_packed};
pub use gemm_w8a8_8x8c4::{gemm_w8a8_8x8c4, gemm_w8a8_8x8c4_packed};
pub(crate) use pack::pack_a_8x4;
