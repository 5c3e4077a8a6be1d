//! What `qvit-run bench --json` prints. One type for the writer (`qvit-run`) and every reader
//! (`qvit deploy`'s summary and stored results, the tests), so a renamed or retyped field is a
//! compile error on both sides instead of a key that silently reads as missing.

use serde::{Deserialize, Serialize};

/// One `qvit-run bench` run: latency statistics, the machine, and the optional profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The bundle's model name.
    pub model: String,
    /// The bundle's path as given to `qvit-run`.
    pub bundle: String,
    /// Latency of the timed runs.
    pub latency_ms: Latency,
    /// Time to load the bundle, in ms.
    pub load_ms: f64,
    /// Peak resident memory of the process (`VmHWM`), where the system reports it.
    pub peak_rss_bytes: Option<u64>,
    /// Kernel tier the runtime chose for this CPU.
    pub kernel_tier: String,
    /// CPU model name.
    pub cpu: String,
    /// CPU features the kernels look for, as detected.
    pub cpu_features: Vec<String>,
    /// Commit `qvit-run` was built from.
    pub commit: String,
    /// Threads the executor used.
    pub threads: usize,
    /// Timed runs.
    pub iters: u32,
    /// Untimed runs before them.
    pub warmup: u32,
    /// When the run ended, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub timestamp: String,
    /// Per step (node) time over the timed runs, with `--profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Vec<StepShare>>,
    /// Per op kind time over the timed runs, with `--profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_by_op: Option<Vec<OpShare>>,
    /// Sum of the profiled steps, ms, with `--profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_ms: Option<f64>,
    /// Sum of the timed runs, ms, with `--profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_ms: Option<f64>,
}

/// Latency statistics in milliseconds; percentiles are nearest-rank.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Fastest run.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Slowest run.
    pub max: f64,
}

impl Latency {
    /// Statistics of `times` (ms, any order); `None` when there are none.
    pub fn of(times: &[f64]) -> Option<Latency> {
        let mut t = times.to_vec();
        t.sort_by(f64::total_cmp);
        let n = t.len();
        let pct = |p: f64| t[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some(Latency {
            min: *t.first()?,
            p50: pct(0.5),
            p90: pct(0.9),
            mean: t.iter().sum::<f64>() / n as f64,
            max: t[n - 1],
        })
    }
}

/// Time of one step of the graph over the timed runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepShare {
    /// Node name.
    pub node: String,
    /// Op kind.
    pub op: String,
    /// Times it ran.
    pub calls: u64,
    /// Total ms.
    pub ms: f64,
    /// Share of the measured runs, percent.
    pub percent: f64,
}

/// Time of one op kind over the timed runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpShare {
    /// Op kind.
    pub op: String,
    /// Times it ran.
    pub calls: u64,
    /// Total ms.
    pub ms: f64,
    /// Share of the measured runs, percent.
    pub percent: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nearest-rank percentiles against a direct count: p is the smallest value with at least
    /// p·n values at or below it.
    #[test]
    fn latency_percentiles_are_nearest_rank() {
        for n in 1..40usize {
            let times: Vec<f64> = (0..n).map(|i| ((i * 7919) % n) as f64 + 0.5).collect();
            let l = Latency::of(&times).unwrap();
            for (p, got) in [(0.5, l.p50), (0.9, l.p90)] {
                let at_or_below = times.iter().filter(|&&t| t <= got).count();
                let below = times.iter().filter(|&&t| t < got).count();
                assert!(at_or_below as f64 >= p * n as f64, "n {n} p {p}");
                assert!((below as f64) < p * n as f64, "n {n} p {p}");
            }
            let mean = times.iter().sum::<f64>() / n as f64;
            assert_eq!((l.min, l.max, l.mean), (0.5, n as f64 - 0.5, mean));
        }
        assert_eq!(Latency::of(&[]), None);
    }
}
