//! AVX2 + FMA tier (Haswell and later, Zen and later).

mod attn_lut;
mod float_ops;
mod gemm_w8a8_6x16c2;
mod log2_split;

pub use attn_lut::{levels_i8, matmul_lut_rows};
pub use float_ops::{gelu_erf_f32, gelu_tanh_f32, layer_norm_f32, softmax_f32};
pub use gemm_w8a8_6x16c2::{gemm_w8a8_6x16c2, gemm_w8a8_6x16c2_packed};
pub use log2_split::log2_split_i8;

/// Writes a pair of 8-lane i32 accumulators as one 16-wide row of a kernel's tile.
pub(crate) fn store_row16(halves: &[std::arch::x86_64::__m256i; 2], row: &mut [i32; 16]) {
    for (half, dst) in halves.iter().zip(row.as_chunks_mut::<8>().0) {
        // SAFETY: `__m256i` and `[i32; 8]` are the same 32 bytes; every bit pattern is valid.
        *dst = unsafe { std::mem::transmute::<std::arch::x86_64::__m256i, [i32; 8]>(*half) };
    }
}
