//! AVX-512 VNNI kernels (Ice Lake / Sapphire Rapids, Zen 4+). They belong to the `avx2` tier
//! (the tier names the baseline; the set picks the fastest kernel of the tier the CPU runs).

mod gemm_w8a8_8x32c4;
mod quantize;

pub use gemm_w8a8_8x32c4::{gemm_w8a8_8x32c4, gemm_w8a8_8x32c4_packed};
pub(crate) use quantize::dequantize_rows;
pub use quantize::levels_i8;

/// Proof that the running CPU has AVX-512 F/BW and VNNI (plus the AVX2+FMA baseline): the only
/// safe route to this module's kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx512Vnni(());

impl Avx512Vnni {
    /// `Some` when the CPU supports AVX2, FMA, AVX-512 F, BW and VNNI.
    pub fn detect() -> Option<Avx512Vnni> {
        let ok = super::avx2::Avx2Fma::detect().is_some()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni");
        ok.then_some(Avx512Vnni(()))
    }
}
