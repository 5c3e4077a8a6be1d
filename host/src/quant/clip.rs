//! Choosing quantization ranges from calibration statistics, and quantizing weights.

use super::calib::TensorStats;
use qvit_device::quant::{ActQuant, IntData, symmetric_max, unsigned_max};

/// How an activation range is chosen from its calibration statistics.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum ClipMethod {
    /// The full observed range.
    MinMax,
    /// The two-sided percentile `p` (e.g. 0.9999 clips the top and bottom 0.01 %).
    Percentile(f64),
    /// The candidate range (percentiles 0.99 … 1.0) with the least quantization error (L2) on
    /// the calibration sample, RepQ-ViT's search.
    Mse,
}

impl std::fmt::Display for ClipMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClipMethod::MinMax => write!(f, "minmax"),
            ClipMethod::Percentile(p) => write!(f, "percentile({p})"),
            ClipMethod::Mse => write!(f, "mse"),
        }
    }
}

const MSE_PERCENTILES: [f64; 6] = [0.99, 0.999, 0.9999, 0.99999, 0.999999, 1.0];

fn quantile(sorted: &[f32], p: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn sorted(s: &TensorStats) -> Vec<f32> {
    let mut v = s.samples.clone();
    v.sort_by(f32::total_cmp);
    v
}

/// Mean squared quantization error of `q` on `xs`.
pub fn mse(q: &ActQuant, xs: &[f32]) -> f64 {
    let sum: f64 = xs
        .iter()
        .map(|&x| {
            let d = (q.fake(x) - x) as f64;
            d * d
        })
        .sum();
    sum / xs.len().max(1) as f64
}

/// Uniform affine quantizer covering `[lo, hi]` (widened to include 0, so zero is exact).
pub fn uniform(lo: f32, hi: f32, bits: u8) -> ActQuant {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let levels = unsigned_max(bits);
    let scale = ((hi - lo) / levels as f32).max(1e-8);
    let zero = ((-lo / scale).round() as i32).clamp(0, levels);
    ActQuant::Uniform { bits, scale, zero }
}

/// Symmetric quantizer covering `[−m, m]`.
pub fn symmetric(m: f32, bits: u8) -> ActQuant {
    ActQuant::Symmetric {
        bits,
        scale: (m / symmetric_max(bits) as f32).max(1e-8),
    }
}

/// Uniform quantizer for a tensor.
pub fn uniform_for(s: &TensorStats, method: ClipMethod, bits: u8) -> ActQuant {
    match method {
        ClipMethod::MinMax => uniform(s.min, s.max, bits),
        ClipMethod::Percentile(p) => {
            let v = sorted(s);
            uniform(quantile(&v, 1.0 - p), quantile(&v, p), bits)
        }
        ClipMethod::Mse => {
            let v = sorted(s);
            best(
                MSE_PERCENTILES
                    .iter()
                    .map(|&p| uniform(quantile(&v, 1.0 - p), quantile(&v, p), bits))
                    .chain([uniform(s.min, s.max, bits)]),
                &s.samples,
            )
        }
    }
}

/// The clipped range `[lo, hi]` of a tensor (per channel for post-LayerNorm reparameterisation).
pub fn range_for(s: &TensorStats, method: ClipMethod, bits: u8) -> (f32, f32) {
    match uniform_for(s, method, bits) {
        ActQuant::Uniform { scale, zero, bits } if method != ClipMethod::MinMax => {
            let lo = -(zero as f32) * scale;
            (
                lo.max(s.min),
                (lo + unsigned_max(bits) as f32 * scale).min(s.max),
            )
        }
        _ => (s.min, s.max),
    }
}

/// Symmetric quantizer for a tensor, clipping `|x|`.
pub fn symmetric_for(s: &TensorStats, method: ClipMethod, bits: u8) -> ActQuant {
    let full = s.min.abs().max(s.max.abs());
    let mut mags: Vec<f32> = s.samples.iter().map(|x| x.abs()).collect();
    mags.sort_by(f32::total_cmp);
    match method {
        ClipMethod::MinMax => symmetric(full, bits),
        ClipMethod::Percentile(p) => symmetric(quantile(&mags, p), bits),
        ClipMethod::Mse => best(
            MSE_PERCENTILES
                .iter()
                .map(|&p| symmetric(quantile(&mags, p), bits))
                .chain([symmetric(full, bits)]),
            &s.samples,
        ),
    }
}

/// Log2 quantizer of probabilities: the largest observed value is the top level.
pub fn log2_for(s: &TensorStats, bits: u8) -> ActQuant {
    ActQuant::Log2 {
        bits,
        scale: s.max.clamp(1e-6, 1.0),
    }
}

fn best(cands: impl Iterator<Item = ActQuant>, xs: &[f32]) -> ActQuant {
    cands
        .filter(|q| q.check().is_ok())
        .map(|q| (mse(&q, xs), q))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, q)| q)
        .unwrap_or(ActQuant::Uniform {
            bits: 8,
            scale: 1.0,
            zero: 128,
        })
}

/// Symmetric per-output-channel weights: for each row of `w` (`[n, k]`) the scale minimising
/// the row's squared error over clip ratios 1.0, 0.95, …, 0.5 of its largest magnitude.
pub fn quantize_weights(w: &[f32], n: usize, k: usize, bits: u8) -> (IntData, Vec<f32>) {
    let max = symmetric_max(bits);
    let mut data = Vec::with_capacity(n * k);
    let mut scales = Vec::with_capacity(n);
    for row in w.chunks_exact(k.max(1)).take(n) {
        let amax = row.iter().fold(0f32, |m, x| m.max(x.abs()));
        let q = |scale: f32, x: f32| ((x / scale).round() as i32).clamp(-max, max);
        let err = |scale: f32| -> f64 {
            row.iter()
                .map(|&x| {
                    let d = (q(scale, x) as f32 * scale - x) as f64;
                    d * d
                })
                .sum()
        };
        let scale = if amax == 0.0 {
            1.0
        } else {
            (0..=10)
                .map(|i| amax * (1.0 - 0.05 * i as f32) / max as f32)
                .map(|s| (err(s), s))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, s)| s)
                .unwrap_or(amax / max as f32)
        };
        data.extend(row.iter().map(|&x| q(scale, x) as i8));
        scales.push(scale);
    }
    (IntData { bits, data }, scales)
}
