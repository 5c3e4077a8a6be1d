//! Scalar reference implementations: obviously right, never `unsafe`. They are the oracle of
//! every test and the fallback of every tier.

mod float_ops;

pub use float_ops::{gelu_erf_f32, gelu_tanh_f32, layer_norm_f32, softmax_f32};
