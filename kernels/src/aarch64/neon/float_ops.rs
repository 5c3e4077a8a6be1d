//! ViT float ops (softmax, LayerNorm, GELU) for NEON: the generic branch-free algorithms of
//! `crate::generic`, which LLVM vectorises to 4-lane `fmla` code because NEON and FP are part of
//! the aarch64 baseline (no `#[target_feature]` needed); softmax's exponentials and the exact
//! GELU come from `super::math`, which interleaves four vectors' dependency chains.

use crate::cpu::Neon;
use crate::generic::float_ops as g;

/// Softmax over rows of `row_len` (`x.len()` must be a multiple of `row_len > 0`; a ragged tail
/// is left untouched).
pub fn softmax_f32(_cpu: Neon, x: &mut [f32], row_len: usize) {
    crate::tier::hit(crate::Tier::Neon);
    if row_len == 0 {
        return;
    }
    // SAFETY: NEON is part of the aarch64 baseline (the token says so too).
    g::softmax_with(x, row_len, |row, max| unsafe {
        super::math::exp_shifted(row, max)
    })
}

/// LayerNorm over rows of `gamma.len()` (lengths are checked by the caller; extra elements are
/// ignored).
pub fn layer_norm_f32(
    _cpu: Neon,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    crate::tier::hit(crate::Tier::Neon);
    if gamma.is_empty() {
        return;
    }
    g::layer_norm_f32(x, gamma, beta, eps, out)
}

/// Exact-form GELU in place.
pub fn gelu_erf_f32(_cpu: Neon, x: &mut [f32]) {
    crate::tier::hit(crate::Tier::Neon);
    // SAFETY: NEON is part of the aarch64 baseline (the token says so too).
    unsafe { super::math::gelu_erf(x) }
}

/// Tanh-form GELU in place.
pub fn gelu_tanh_f32(_cpu: Neon, x: &mut [f32]) {
    crate::tier::hit(crate::Tier::Neon);
    g::gelu_tanh_f32(x)
}
