//! SDOT tier (ARMv8.2 `dotprod`: Cortex-A55/A76/A78, Pi 5, Orin): int8 dot products four at a
//! time per 32-bit lane.

mod gemm_w8a8_4x4c16;

pub use gemm_w8a8_4x4c16::gemm_w8a8_4x4c16;

/// Proof that the running CPU has the ARMv8.2 dot-product instructions (SDOT/UDOT): the only
/// safe route to this module's kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DotProd(());

impl DotProd {
    /// `Some` when the CPU reports `dotprod` (Linux `asimddp` hwcap).
    pub fn detect() -> Option<DotProd> {
        std::arch::is_aarch64_feature_detected!("dotprod").then_some(DotProd(()))
    }
}
