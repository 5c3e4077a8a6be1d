//! Steady-state inference allocates nothing: after warm-up, runs of a quantized bundle (W8A8
//! and W4A4, static and run-time activation steps, fused integer dataflow, 1 and 2 threads) into reused output tensors make no heap
//! allocation on any thread, counted by a wrapper around the system allocator. This file holds
//! one test, so nothing else allocates while it counts.

use qvit_device::Tensor;
use qvit_device::exec::Executor;
use qvit_host::fixtures::SeededRng;
use qvit_host::prep::{PrepOptions, Preset};
use qvit_host::quant::{ActScale, QuantOptions, quantize};
use qvit_kernels::KernelSet;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

#[test]
fn steady_state_runs_do_not_allocate() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let prep = PrepOptions {
        preset: Some(Preset::FashionMnist),
        ..Default::default()
    };
    let fb = qvit_host::source::float_bundle(
        &repo.join("models/fashion-vit/fashion_vit.onnx"),
        None,
        &prep,
        None,
    )
    .unwrap();
    let shape = fb.header.input_shape.clone();
    let n: usize = shape.iter().product();
    let mut rng = SeededRng::new(5);
    let calib: Vec<Tensor> = (0..2)
        .map(|_| Tensor::new(shape.clone(), rng.normals(n, 1.0)).unwrap())
        .collect();
    let x = Tensor::new(shape.clone(), rng.normals(n, 1.0)).unwrap();
    // The last one takes its activation and attention steps at run time.
    for (bits, scale) in [
        (8u8, ActScale::Static),
        (4, ActScale::Static),
        (4, ActScale::Dynamic),
    ] {
        let opts = QuantOptions {
            wbits: bits,
            abits: bits,
            act_scale: scale,
            attn_scale: scale,
            ..Default::default()
        };
        let q = quantize(&fb.graph, &calib, &opts).unwrap();
        for threads in [1, 2] {
            let mut ex = Executor::new(q.graph.clone(), KernelSet::detect()).unwrap();
            ex.set_threads(threads);
            let mut out = Vec::new();
            for _ in 0..2 {
                ex.run_into(&[&x], &mut out).unwrap();
            }
            let want = out.clone();
            let before = allocations();
            for _ in 0..5 {
                ex.run_into(&[&x], &mut out).unwrap();
            }
            let made = allocations() - before;
            assert_eq!(
                made, 0,
                "W{bits}A{bits} {scale}, {threads} threads: {made} allocations in 5 warm runs"
            );
            assert_eq!(out, want, "reused outputs hold the same results");
        }
    }
}
