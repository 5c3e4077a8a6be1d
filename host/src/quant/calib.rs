//! Calibration statistics from the device's f32 executor: exact ranges plus a bounded,
//! deterministic subsample of every watched tensor (per tensor, or per channel of the last
//! axis), from which the clipping methods pick ranges.

use super::gptq::Gram;
use anyhow::{Context, Result};
use qvit_device::exec::Executor;
use qvit_device::{Graph, Tensor, ValueId};
use qvit_kernels::KernelSet;
use std::collections::HashMap;

/// Values kept per watched tensor, over all calibration images.
const TENSOR_SAMPLES: usize = 1 << 18;
/// Values kept per channel of a per-channel watched tensor.
const CHANNEL_SAMPLES: usize = 4096;

/// Range and subsample of one tensor over the calibration set.
#[derive(Clone, Debug)]
pub struct TensorStats {
    /// Smallest value seen.
    pub min: f32,
    /// Largest value seen.
    pub max: f32,
    /// Every `stride`-th value (NaNs dropped).
    pub samples: Vec<f32>,
    stride: usize,
}

impl TensorStats {
    fn new(per_image: usize, images: usize, cap: usize) -> Self {
        TensorStats {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            samples: Vec::new(),
            stride: (per_image * images).div_ceil(cap).max(1),
        }
    }

    fn add(&mut self, data: impl Iterator<Item = f32>, phase: usize) {
        for (j, x) in data.enumerate() {
            if x.is_nan() {
                continue;
            }
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            // The phase rotates per image so a stride never locks onto one token or channel.
            if (j + phase).is_multiple_of(self.stride) {
                self.samples.push(x);
            }
        }
    }
}

/// Statistics gathered by [`calibrate`].
#[derive(Debug, Default)]
pub struct Calibration {
    /// Per-tensor statistics of the watched values.
    pub tensors: HashMap<ValueId, TensorStats>,
    /// Per-channel (last axis) statistics of the channel-watched values.
    pub channels: HashMap<ValueId, Vec<TensorStats>>,
    /// `XᵀX` of the gram-watched values (Linear inputs, for GPTQ rounding).
    pub gram: HashMap<ValueId, Gram>,
    /// Images used.
    pub images: usize,
}

/// Runs `g` on every input and records the watched values.
pub fn calibrate(
    g: &Graph,
    inputs: &[Tensor],
    watch: &[ValueId],
    watch_channels: &[ValueId],
    what: &str,
) -> Result<Calibration> {
    calibrate_with_gram(g, inputs, watch, watch_channels, &[], what)
}

/// [`calibrate`], also accumulating `XᵀX` over the last axis of every value in `watch_gram`.
pub fn calibrate_with_gram(
    g: &Graph,
    inputs: &[Tensor],
    watch: &[ValueId],
    watch_channels: &[ValueId],
    watch_gram: &[ValueId],
    what: &str,
) -> Result<Calibration> {
    let n = inputs.len();
    let len = |v: ValueId| g.shape(v).iter().product::<usize>();
    let mut cal = Calibration {
        images: n,
        ..Default::default()
    };
    for &v in watch {
        cal.tensors
            .insert(v, TensorStats::new(len(v), n, TENSOR_SAMPLES));
    }
    for &v in watch_channels {
        let c = g.shape(v).last().copied().unwrap_or(1);
        let rows = len(v) / c.max(1);
        cal.channels.insert(
            v,
            (0..c)
                .map(|_| TensorStats::new(rows, n, CHANNEL_SAMPLES))
                .collect(),
        );
    }
    for &v in watch_gram {
        let k = g.shape(v).last().copied().unwrap_or(1);
        cal.gram.insert(v, Gram::new(k));
    }
    let mut ex = Executor::new(g.clone(), KernelSet::detect()).context("planning the f32 graph")?;
    let bar = crate::progress::bar(n, what);
    for (img, x) in inputs.iter().enumerate() {
        let mut record = |v: ValueId, data: &[f32]| {
            if let Some(s) = cal.tensors.get_mut(&v) {
                s.add(data.iter().copied(), img);
            }
            if let Some(chs) = cal.channels.get_mut(&v) {
                let c = chs.len();
                for (ch, s) in chs.iter_mut().enumerate() {
                    s.add(data.iter().skip(ch).step_by(c).copied(), img);
                }
            }
            if let Some(gram) = cal.gram.get_mut(&v) {
                gram.add(data);
            }
        };
        // Graph inputs are not produced by a node, so the observer never sees them.
        for &inp in &g.inputs {
            record(inp, &x.data);
        }
        ex.run_observed(&[x], &mut record)
            .with_context(|| format!("calibration image {img}"))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(cal)
}
