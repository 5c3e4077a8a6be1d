//! SDOT tier (ARMv8.2 `dotprod`: Cortex-A55/A76/A78, Pi 5, Orin): int8 dot products four at a
//! time per 32-bit lane.

mod gemm_w8a8_4x4c16;

pub use gemm_w8a8_4x4c16::gemm_w8a8_4x4c16;
