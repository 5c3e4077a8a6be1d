//! AVX-512 VNNI tier (Ice Lake / Sapphire Rapids, Zen 4+): the 512-bit VNNI GEMM, its activation
//! packing, and the quantization loops compiled for 16 lanes; AVX2's float ops otherwise.

mod gemm_w8a8_8x32c4;
mod log2_split;
mod pack;
mod quantize;

pub use gemm_w8a8_8x32c4::{gemm_w8a8_8x32c4, gemm_w8a8_8x32c4_packed};
pub use log2_split::log2_split_i8;
pub(crate) use pack::pack_a_8x4;
pub(crate) use quantize::dequantize_rows;
pub use quantize::levels_i8;
