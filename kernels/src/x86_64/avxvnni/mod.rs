//! AVX-VNNI tier (Alder Lake, Zen 5): `vpdpbusd` on 256-bit registers, with AVX2's float ops.

mod gemm_w8a8_6x16c4;

pub use gemm_w8a8_6x16c4::gemm_w8a8_6x16c4;
