//! Quick per-tier speed check of the f32 ops on DeiT-Tiny shapes, robust to a busy machine: it
//! reports the minimum time of many runs (preemption only ever adds time). Criterion
//! (`cargo bench --bench float_ops`) is the real benchmark; this is for a fast A/B look.
//!
//! `cargo run --release -p qvit-kernels --example float_ops_speed`

use qvit_kernels::{KernelSet, Tier};
use std::time::{Duration, Instant};

fn min_time(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let n = 197 * 768;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 125.0 - 4.0)
        .collect();
    let gamma = vec![1.0f32; 192];
    let beta = vec![0.0f32; 192];
    let mut out = vec![0.0f32; n];
    println!(
        "{:<10} {:>14} {:>14} {:>14} {:>14}",
        "tier", "gelu_erf", "gelu_tanh", "softmax(197)", "layernorm(192)"
    );
    for ks in Tier::ALL
        .into_iter()
        .filter_map(|t| KernelSet::with_tier(t).ok())
    {
        let mut buf = x.clone();
        let runs = if ks.tier() == Tier::Reference { 5 } else { 50 };
        let ns = |d: Duration, n: usize| d.as_secs_f64() * 1e9 / n as f64;
        let erf = min_time(runs, || {
            buf.copy_from_slice(&x);
            ks.gelu_erf_f32(&mut buf)
        });
        let tanh = min_time(runs, || {
            buf.copy_from_slice(&x);
            ks.gelu_tanh_f32(&mut buf)
        });
        let sm_len = 197 * 197 * 3;
        let sm = min_time(runs, || {
            buf[..sm_len].copy_from_slice(&x[..sm_len]);
            ks.softmax_f32(&mut buf[..sm_len], 197).unwrap()
        });
        let ln_len = 197 * 192;
        let ln = min_time(runs, || {
            ks.layer_norm_f32(&x[..ln_len], &gamma, &beta, 1e-6, &mut out[..ln_len])
                .unwrap()
        });
        println!(
            "{:<10} {:>11.3} ns {:>11.3} ns {:>11.3} ns {:>11.3} ns   (per element)",
            ks.tier().name(),
            ns(erf, n),
            ns(tanh, n),
            ns(sm, sm_len),
            ns(ln, ln_len)
        );
    }
}
