//! ViT float ops (softmax, LayerNorm, GELU) for AVX2+FMA: the generic branch-free algorithms of
//! `crate::generic` compiled with `avx2,fma` enabled, which LLVM vectorises to 8-lane FMAs
//! (16 partial sums in the reductions). Inputs are checked by `KernelSet`; these functions only
//! require what the slice types already guarantee.

use crate::cpu::Avx2Fma;
use crate::generic::float_ops as g;

/// Softmax over rows of `row_len` (`x.len()` must be a multiple of `row_len > 0`; a ragged tail
/// is left untouched).
pub fn softmax_f32(_cpu: Avx2Fma, x: &mut [f32], row_len: usize) {
    crate::tier::hit(crate::Tier::Avx2);
    if row_len == 0 {
        return;
    }
    // SAFETY: the `Avx2Fma` token exists only if AVX2 and FMA were detected on this CPU.
    unsafe { softmax_f32_avx2(x, row_len) }
}

#[target_feature(enable = "avx2,fma")]
fn softmax_f32_avx2(x: &mut [f32], row_len: usize) {
    g::softmax_f32(x, row_len)
}

/// LayerNorm over rows of `gamma.len()` (lengths are checked by the caller; extra elements are
/// ignored).
pub fn layer_norm_f32(
    _cpu: Avx2Fma,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    crate::tier::hit(crate::Tier::Avx2);
    if gamma.is_empty() {
        return;
    }
    // SAFETY: the `Avx2Fma` token exists only if AVX2 and FMA were detected on this CPU.
    unsafe { layer_norm_f32_avx2(x, gamma, beta, eps, out) }
}

#[target_feature(enable = "avx2,fma")]
fn layer_norm_f32_avx2(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    g::layer_norm_f32(x, gamma, beta, eps, out)
}

/// Exact-form GELU in place.
pub fn gelu_erf_f32(_cpu: Avx2Fma, x: &mut [f32]) {
    crate::tier::hit(crate::Tier::Avx2);
    // SAFETY: the `Avx2Fma` token exists only if AVX2 and FMA were detected on this CPU.
    unsafe { gelu_erf_f32_avx2(x) }
}

#[target_feature(enable = "avx2,fma")]
fn gelu_erf_f32_avx2(x: &mut [f32]) {
    g::gelu_erf_f32(x)
}

/// Tanh-form GELU in place.
pub fn gelu_tanh_f32(_cpu: Avx2Fma, x: &mut [f32]) {
    crate::tier::hit(crate::Tier::Avx2);
    // SAFETY: the `Avx2Fma` token exists only if AVX2 and FMA were detected on this CPU.
    unsafe { gelu_tanh_f32_avx2(x) }
}

#[target_feature(enable = "avx2,fma")]
fn gelu_tanh_f32_avx2(x: &mut [f32]) {
    g::gelu_tanh_f32(x)
}
