//! Accuracy of a model on a labelled dataset, computed by the device runtime.

use crate::data::Dataset;
use anyhow::{Context, Result, ensure};
use qvit_device::Preprocess;
use qvit_device::model::Model;
use serde::Serialize;

/// Result of an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Top-1 accuracy in [0, 1].
    pub top1: f64,
    /// Top-5 accuracy in [0, 1].
    pub top5: f64,
    /// Images evaluated.
    pub n: usize,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Kernel tier used.
    pub tier: String,
}

/// Runs `model` over the first `limit` samples of `data`.
pub fn evaluate(
    model: &mut Model,
    data: &Dataset,
    pre: &Preprocess,
    limit: Option<usize>,
) -> Result<EvalReport> {
    ensure!(
        data.labelled(),
        "{} has no labels; evaluation needs a labelled dataset",
        data.description
    );
    let n = limit.unwrap_or(usize::MAX).min(data.len());
    ensure!(n > 0, "no samples to evaluate");
    let bar = crate::progress::bar(n, "eval");
    let start = std::time::Instant::now();
    let (mut top1, mut top5) = (0usize, 0usize);
    for i in 0..n {
        let s = data.sample(i, pre)?;
        let label = s.label.context("unlabelled sample")?;
        let ranked = model
            .classify(&s.input)
            .with_context(|| format!("running {}", s.id))?;
        top1 += (ranked[0].0 == label) as usize;
        top5 += ranked.iter().take(5).any(|r| r.0 == label) as usize;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(EvalReport {
        top1: top1 as f64 / n as f64,
        top5: top5 as f64 / n as f64,
        n,
        seconds: start.elapsed().as_secs_f64(),
        tier: model.tier(),
    })
}
