//! W8A8 GEMM per inventory kernel on ViT shapes (M×K×N), throughput in MACs (criterion reports
//! them as elements/s). The reference oracle is the naive baseline of each group; the `gemm`
//! crate's f32 matmul (1 thread, what the device's f32 executor runs) is the float peer.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qvit_kernels::gemm::PackedW8;
use qvit_kernels::inventory::{INVENTORY, Op};
use qvit_kernels::{KernelSet, reference};
use std::hint::black_box;

/// DeiT-Tiny / ViT-S at 197 tokens: QKV, MLP up, MLP down, per-head QKᵀ.
const SHAPES: [(usize, usize, usize); 4] = [
    (197, 192, 576),
    (197, 384, 1536),
    (197, 1536, 384),
    (197, 64, 197),
];

fn data(n: usize, seed: usize) -> Vec<i8> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 255) as i32 - 127)
        .map(|v| v as i8)
        .collect()
}

fn gemm(c: &mut Criterion) {
    for (m, k, n) in SHAPES {
        let a = data(m * k, 1);
        let w = data(n * k, 2);
        let mut out = vec![0i32; m * n];
        let mut g = c.benchmark_group(format!("gemm_w8a8_{m}x{k}x{n}"));
        g.throughput(Throughput::Elements((m * k * n) as u64));
        g.sample_size(10);
        let (af, wf): (Vec<f32>, Vec<f32>) = (
            a.iter().map(|&v| v as f32).collect(),
            w.iter().map(|&v| v as f32).collect(),
        );
        let mut of = vec![0f32; m * n];
        g.bench_function("f32_gemm_crate_1thread", |b| {
            b.iter(|| {
                // SAFETY: `af` is m×k row-major, `wf` is n×k row-major read as its k×n transpose
                // (column stride k), `of` is m×n row-major: every (m, n, k) index with these
                // strides stays inside the three vectors, and `of` aliases neither input.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        of.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        af.as_ptr(),
                        1,
                        k as isize,
                        wf.as_ptr(),
                        k as isize,
                        1,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                };
                black_box(&of);
            })
        });
        g.bench_function("naive_reference", |b| {
            b.iter(|| reference::gemm_w8a8_i32(black_box(&a), m, k, 3, &w, n, &mut out).unwrap())
        });
        for d in INVENTORY
            .iter()
            .filter(|d| d.op == Op::GemmW8A8 && d.is_supported())
        {
            let ks = KernelSet::with_tier(d.tier).unwrap();
            let packed = PackedW8::new(d, &w, n, k).unwrap();
            g.bench_function(d.name, |b| {
                b.iter(|| {
                    ks.gemm_w8a8_i32(black_box(&a), m, 3, &packed, &mut out)
                        .unwrap()
                })
            });
        }
        g.finish();
    }
}

fn packing(c: &mut Criterion) {
    let (k, n) = (384, 1536);
    let w = data(n * k, 2);
    let mut g = c.benchmark_group(format!("pack_w8a8_{n}x{k}"));
    g.throughput(Throughput::Bytes((n * k) as u64));
    for d in INVENTORY.iter().filter(|d| d.op == Op::GemmW8A8) {
        g.bench_function(d.name, |b| {
            b.iter(|| PackedW8::new(d, black_box(&w), n, k).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, gemm, packing);
criterion_main!(benches);
