//! ViT float ops per tier on DeiT-Tiny shapes (197 tokens, 192 channels, MLP 768, 3 heads),
//! throughput in elements. The reference tier is the naive baseline of each group.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qvit_kernels::{KernelSet, Tier};
use std::hint::black_box;

fn data(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 125.0 - 4.0)
        .collect()
}

fn sets() -> Vec<KernelSet> {
    Tier::ALL
        .into_iter()
        .filter_map(|t| KernelSet::with_tier(t).ok())
        .collect()
}

fn gelu(c: &mut Criterion) {
    let x = data(197 * 768);
    let mut g = c.benchmark_group("gelu_197x768");
    g.throughput(Throughput::Elements(x.len() as u64));
    for ks in sets() {
        let mut buf = x.clone();
        g.bench_function(format!("erf/{}", ks.tier()), |b| {
            b.iter(|| {
                buf.copy_from_slice(&x);
                ks.gelu_erf_f32(black_box(&mut buf))
            })
        });
        g.bench_function(format!("tanh/{}", ks.tier()), |b| {
            b.iter(|| {
                buf.copy_from_slice(&x);
                ks.gelu_tanh_f32(black_box(&mut buf))
            })
        });
    }
    g.finish();
}

fn softmax(c: &mut Criterion) {
    let x = data(3 * 197 * 197);
    let mut g = c.benchmark_group("softmax_3x197x197");
    g.throughput(Throughput::Elements(x.len() as u64));
    for ks in sets() {
        let mut buf = x.clone();
        g.bench_function(ks.tier().name(), |b| {
            b.iter(|| {
                buf.copy_from_slice(&x);
                ks.softmax_f32(black_box(&mut buf), 197).unwrap()
            })
        });
    }
    g.finish();
}

fn layer_norm(c: &mut Criterion) {
    let x = data(197 * 192);
    let gamma = data(192);
    let beta = data(192);
    let mut out = vec![0.0; x.len()];
    let mut g = c.benchmark_group("layer_norm_197x192");
    g.throughput(Throughput::Elements(x.len() as u64));
    for ks in sets() {
        g.bench_function(ks.tier().name(), |b| {
            b.iter(|| {
                ks.layer_norm_f32(black_box(&x), &gamma, &beta, 1e-6, &mut out)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, gelu, softmax, layer_norm);
criterion_main!(benches);
