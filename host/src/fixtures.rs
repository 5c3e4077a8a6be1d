//! Test and benchmark fixtures: seeded random data and "weightless" ONNX files.
//!
//! Large random-weight exports (e.g. DeiT-Tiny, 23 MB) are committed without their weights: each
//! big initializer points at external data that is never shipped. `fill_external` gives those
//! initializers seeded random values in memory, so tract and qvit see the same model.

use anyhow::{Context, Result};
use rand_distr::{Distribution, StandardNormal, StandardUniform};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;
use std::path::Path;
use tract_onnx::pb::{ModelProto, TensorProto};
use tract_onnx::prelude::Framework;

/// Seeded random data: xoshiro256++ (`rand_xoshiro`) with `rand_distr`'s samplers, so a seed
/// gives the same values on every machine and no distribution is written by hand.
pub struct SeededRng(Xoshiro256PlusPlus);

impl SeededRng {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        StandardUniform.sample(&mut self.0)
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f32 {
        StandardNormal.sample(&mut self.0)
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
    let mut rng = SeededRng::new(seed);
    for t in graph.initializer.iter_mut() {
        fill_external(t, &mut rng);
    }
    Ok(proto)
}

fn fill_external(t: &mut TensorProto, rng: &mut SeededRng) {
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

/// Bilinear interpolation in closed form, the reference resampler of the tests: `src` is
/// row-major `sw`×`sh`; output pixel centres map to `u = (x + 0.5)·sw/dw − 0.5` (and the same
/// for rows), clamped to the border pixels; the result is row-major `dw`×`dh`, in f64.
pub fn bilinear_reference(
    src: &[f32],
    (sw, sh): (usize, usize),
    (dw, dh): (usize, usize),
) -> Vec<f64> {
    let taps = |x: usize, s: usize, d: usize| {
        let u = ((x as f64 + 0.5) * s as f64 / d as f64 - 0.5).clamp(0.0, (s - 1) as f64);
        let i0 = u.floor() as usize;
        (i0, (i0 + 1).min(s - 1), u - i0 as f64)
    };
    let at = |r: usize, c: usize| f64::from(src[r * sw + c]);
    let mut out = Vec::with_capacity(dw * dh);
    for y in 0..dh {
        let (y0, y1, ty) = taps(y, sh, dh);
        for x in 0..dw {
            let (x0, x1, tx) = taps(x, sw, dw);
            let top = at(y0, x0) * (1.0 - tx) + at(y0, x1) * tx;
            let bottom = at(y1, x0) * (1.0 - tx) + at(y1, x1) * tx;
            out.push(top * (1.0 - ty) + bottom * ty);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The samplers against the distributions' closed forms: uniform mean 1/2 and variance
    /// 1/12 within [0, 1); normal mean 0, variance 1, and P(|x| < 1) = erf(1/√2) = 0.682689.
    /// With 200 000 draws the standard errors are about 0.002, so 0.01 fails a wrong sampler.
    #[test]
    fn samplers_match_their_distributions() {
        let n = 200_000;
        let mut rng = SeededRng::new(42);
        let u: Vec<f64> = (0..n).map(|_| f64::from(rng.uniform())).collect();
        assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
        let (mean, var) = moments(&u);
        assert!((mean - 0.5).abs() < 0.01 && (var - 1.0 / 12.0).abs() < 0.01);
        let z: Vec<f64> = rng.normals(n, 1.0).into_iter().map(f64::from).collect();
        let (mean, var) = moments(&z);
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.01,
            "{mean} {var}"
        );
        let inside = z.iter().filter(|x| x.abs() < 1.0).count() as f64 / n as f64;
        assert!((inside - 0.682_689).abs() < 0.01, "{inside}");
        // Same seed, same data; another seed, other data.
        assert_eq!(
            SeededRng::new(7).normals(8, 1.0),
            SeededRng::new(7).normals(8, 1.0)
        );
        assert_ne!(
            SeededRng::new(7).normals(8, 1.0),
            SeededRng::new(8).normals(8, 1.0)
        );
    }

    fn moments(v: &[f64]) -> (f64, f64) {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        (mean, var)
    }
}
