//! Deletion and insertion curves: how fast the target score falls when the most relevant pixels
//! are removed first (and rises when they are inserted first), summarised as AOPC.

use anyhow::{Result, ensure};
use qvit_device::exec::Executor;
use qvit_device::{Layout, Tensor};
use serde::Serialize;

/// What the curves measure.
#[derive(Clone, Debug)]
pub enum Score {
    /// Softmax probability of this class.
    Prob(usize),
    /// Projection of the output on the original output, `⟨y, y₀⟩/‖y₀‖²` (1 on the original
    /// image): the quantity relevance seeded at the output norm explains, for models without a
    /// classifier.
    Projection(Vec<f32>),
    /// Mean over output tokens (rows of `d` values) of each token's projection on its original,
    /// `⟨y_t, y₀_t⟩/‖y₀_t‖²`: what relevance seeded per token explains.
    TokenProjection(Vec<f32>, usize),
}

impl Score {
    fn of(&self, y: &[f32]) -> f64 {
        match self {
            Score::Prob(t) => {
                let m = y.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
                let z: f64 = y.iter().map(|&v| (v as f64 - m).exp()).sum();
                (y[*t] as f64 - m).exp() / z
            }
            Score::Projection(y0) => {
                let num: f64 = y.iter().zip(y0).map(|(&a, &b)| a as f64 * b as f64).sum();
                let den: f64 = y0.iter().map(|&b| (b as f64).powi(2)).sum();
                num / den.max(1e-30)
            }
            Score::TokenProjection(y0, d) => {
                let d = (*d).max(1);
                let rows = y0.len() / d;
                let mut sum = 0.0;
                for (a, b) in y.chunks(d).zip(y0.chunks(d)) {
                    let num: f64 = a.iter().zip(b).map(|(&p, &q)| p as f64 * q as f64).sum();
                    let den: f64 = b.iter().map(|&q| (q as f64).powi(2)).sum();
                    sum += num / den.max(1e-30);
                }
                sum / rows.max(1) as f64
            }
        }
    }
}

/// Scores after removing (deletion) or inserting (insertion) the first `k/steps` of the pixel
/// order, `k = 0..=steps`.
#[derive(Clone, Debug, Serialize)]
pub struct Curves {
    /// Deletion curve.
    pub deletion: Vec<f64>,
    /// Insertion curve.
    pub insertion: Vec<f64>,
}

impl Curves {
    /// Mean drop below the intact score over the deletion steps (higher: the order found what
    /// matters sooner).
    pub fn deletion_aopc(&self) -> f64 {
        let d0 = self.deletion[0];
        mean(self.deletion[1..].iter().map(|v| d0 - v))
    }

    /// Mean rise above the empty image's score over the insertion steps.
    pub fn insertion_aopc(&self) -> f64 {
        let i0 = self.insertion[0];
        mean(self.insertion[1..].iter().map(|v| v - i0))
    }
}

fn mean(it: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = it.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    s / n.max(1) as f64
}

/// Pixel indices by decreasing value (ties by index, so the order is deterministic).
pub fn order(map: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..map.len()).collect();
    idx.sort_by(|&a, &b| map[b].total_cmp(&map[a]).then(a.cmp(&b)));
    idx
}

/// Pixel order that removes whole `p×p` patches (the ViT's tokens), most relevant patch first
/// by the summed map, pixels of a patch in raster order.
pub fn patch_order(map: &[f32], w: usize, h: usize, p: usize) -> Vec<usize> {
    let p = p.max(1);
    let pw = w.div_ceil(p);
    let mut sums = vec![0.0f32; pw * h.div_ceil(p)];
    for (i, &v) in map.iter().enumerate() {
        sums[(i / w / p) * pw + (i % w) / p] += v;
    }
    let mut out = Vec::with_capacity(map.len());
    for cell in order(&sums) {
        let (cy, cx) = (cell / pw, cell % pw);
        for y in cy * p..((cy + 1) * p).min(h) {
            for x in cx * p..((cx + 1) * p).min(w) {
                out.push(y * w + x);
            }
        }
    }
    out
}

/// Runs the deletion and insertion curves of `x` for pixel `order` (indices into `h·w`).
/// Removed pixels get 0 in the normalised input, i.e. the dataset's mean colour.
pub fn curves(
    ex: &mut Executor,
    x: &Tensor,
    layout: Layout,
    order: &[usize],
    score: &Score,
    steps: usize,
) -> Result<Curves> {
    ensure!(steps >= 1, "at least one step");
    let (c, hw) = match layout {
        Layout::Nchw => (x.shape[1], x.shape[2] * x.shape[3]),
        Layout::Nhwc => (x.shape[3], x.shape[1] * x.shape[2]),
    };
    ensure!(order.len() == hw, "the order must list every pixel once");
    let at = |p: usize, k: usize| match layout {
        Layout::Nchw => k * hw + p,
        Layout::Nhwc => p * c + k,
    };
    let mut run = |data: &[f32]| -> Result<f64> {
        let t = Tensor::new(x.shape.clone(), data.to_vec())?;
        Ok(score.of(&ex.run(&[&t])?[0].data))
    };
    let mut del = x.data.clone();
    let mut ins = vec![0.0f32; x.data.len()];
    let mut curves = Curves {
        deletion: vec![run(&del)?],
        insertion: vec![run(&ins)?],
    };
    let mut done = 0;
    for k in 1..=steps {
        let upto = hw * k / steps;
        for &p in &order[done..upto] {
            for ch in 0..c {
                del[at(p, ch)] = 0.0;
                ins[at(p, ch)] = x.data[at(p, ch)];
            }
        }
        done = upto;
        curves.deletion.push(run(&del)?);
        curves.insertion.push(run(&ins)?);
    }
    Ok(curves)
}
