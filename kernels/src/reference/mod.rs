//! Scalar reference implementations: obviously right, never `unsafe`. They are the oracle of
//! every test and the fallback of every tier.

mod float_ops;
mod gemm_w8a8;

pub(crate) use float_ops::{check_layer_norm, check_rows};
pub use float_ops::{gelu_erf_f32, gelu_tanh_f32, layer_norm_f32, softmax_f32};
pub(crate) use gemm_w8a8::gemm_w8a8_ukernel;
pub use gemm_w8a8::{gemm_w4a4_i32, gemm_w4a8_i32, gemm_w8a8_i32};
