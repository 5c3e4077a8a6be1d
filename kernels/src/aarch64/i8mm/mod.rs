//! SMMLA tier (ARMv8.6 `i8mm`: Neoverse N2/V1/V2, Graviton 3/4, Cortex-A510/A710+): a 2×8 by
//! 8×2 int8 matrix multiply-accumulate per instruction.

mod gemm_w8a8_8x8c8;

pub use gemm_w8a8_8x8c8::gemm_w8a8_8x8c8;

/// Proof that the running CPU has the int8 matrix-multiply instructions (SMMLA): the only safe
/// route to this module's kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct I8mm(());

impl I8mm {
    /// `Some` when the CPU reports `i8mm` (Linux `i8mm` hwcap2).
    pub fn detect() -> Option<I8mm> {
        std::arch::is_aarch64_feature_detected!("i8mm").then_some(I8mm(()))
    }
}
