//! Runtime kernel selection: detect the CPU once, keep the chosen functions in a [`KernelSet`].

use crate::{Result, reference};

/// An instruction-set tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Tier {
    /// Portable scalar code.
    Reference,
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tier::Reference => "reference",
        })
    }
}

/// The kernels chosen for this CPU. Cheap to copy; hold one per loaded model.
#[derive(Clone, Copy, Debug)]
pub struct KernelSet {
    tier: Tier,
}

impl KernelSet {
    /// The best tier this CPU supports.
    pub fn detect() -> KernelSet {
        KernelSet { tier: Tier::Reference }
    }

    /// The chosen tier.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Softmax over rows of `row_len`, in place.
    pub fn softmax_f32(&self, x: &mut [f32], row_len: usize) -> Result<()> {
        reference::softmax_f32(x, row_len)
    }

    /// LayerNorm over rows of `gamma.len()`.
    pub fn layer_norm_f32(&self, x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) -> Result<()> {
        reference::layer_norm_f32(x, gamma, beta, eps, out)
    }

    /// Exact GELU, in place.
    pub fn gelu_erf_f32(&self, x: &mut [f32]) {
        reference::gelu_erf_f32(x)
    }

    /// Tanh GELU, in place.
    pub fn gelu_tanh_f32(&self, x: &mut [f32]) {
        reference::gelu_tanh_f32(x)
    }
}
