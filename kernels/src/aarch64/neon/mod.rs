//! ARMv8.0 NEON tier (Cortex-A53/A57/A72: Pi 3/4, Jetson Nano).

mod float_ops;
mod gemm_w4a4_4x4c16;
mod gemm_w8a8_4x4c16;
mod log2_split;
mod math;
mod quantize;

pub use float_ops::{gelu_erf_f32, gelu_tanh_f32, layer_norm_f32, softmax_f32};
pub use gemm_w4a4_4x4c16::{gemm_w4a4_4x4c16, gemm_w4a4_4x4c16_packed};
pub use gemm_w8a8_4x4c16::{gemm_w8a8_4x4c16, gemm_w8a8_4x4c16_packed};
pub use log2_split::log2_split_i8;
pub use quantize::levels_i8;
