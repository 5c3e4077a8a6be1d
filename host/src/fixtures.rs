//! Test and benchmark fixtures: seeded random data and "weightless" ONNX files.
//!
//! Large random-weight exports (e.g. DeiT-Tiny, 23 MB) are committed without their weights: each
//! big initializer points at external data that is never shipped. `fill_external` gives those
//! initializers seeded random values in memory, so tract and qvit see the same model.

use anyhow::{Context, Result};
use std::path::Path;
use tract_onnx::pb::{ModelProto, TensorProto};
use tract_onnx::prelude::Framework;

/// A small deterministic generator (SplitMix64), so fixtures need no RNG dependency.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = (self.uniform() as f64).max(1e-12);
        let u2 = self.uniform() as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// `n` normal values times `std`.
    pub fn normals(&mut self, n: usize, std: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * std).collect()
    }
}

/// Loads an ONNX file and fills every externally stored initializer with `N(0, 0.02²)` values
/// from `seed`, the scale of timm's ViT initialisation.
pub fn load_weightless(path: &Path, seed: u64) -> Result<ModelProto> {
    let mut proto = tract_onnx::onnx()
        .proto_model_for_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let graph = proto.graph.as_mut().context("model has no graph")?;
    let mut rng = SplitMix(seed);
    for t in graph.initializer.iter_mut() {
        fill_external(t, &mut rng);
    }
    Ok(proto)
}

fn fill_external(t: &mut TensorProto, rng: &mut SplitMix) {
    if t.external_data.is_empty() {
        return;
    }
    let n: i64 = t.dims.iter().product();
    t.external_data.clear();
    t.data_location = None;
    t.raw_data = rng
        .normals(n as usize, 0.02)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
}
