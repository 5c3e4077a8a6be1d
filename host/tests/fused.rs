//! The device's integer dataflow on real exports: quantized DeiT-Tiny, Swin, a dynamo export and
//! the default model give the same bits fused (LayerNorm and Linear epilogues writing the next
//! layer's integers, the attention core as one step) as node by node, on every kernel tier and
//! thread count, and the fusion does apply to the ViT blocks of each export.

use qvit_device::exec::{Executor, Profile};
use qvit_device::{Graph, Tensor};
use qvit_host::fixtures::{SeededRng, load_weightless};
use qvit_host::import::{import_path, import_proto};
use qvit_host::prep::{PrepOptions, Preset};
use qvit_host::quant::{QuantOptions, quantize};
use qvit_kernels::{KernelSet, Tier};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `(name, f32 graph, input shape, ViT blocks whose attention must fuse)`.
fn models() -> Vec<(&'static str, Graph, Vec<usize>, usize)> {
    let fx = repo().join("models/fixtures");
    let deit = import_proto(
        &load_weightless(&fx.join("deit_tiny_op17.onnx"), 17).unwrap(),
        None,
    )
    .unwrap();
    let swin = import_path(&fx.join("swin_tiny_op17.onnx"), None).unwrap();
    let dynamo = import_path(&fx.join("vit_dynamo_op18.onnx"), None).unwrap();
    let prep = PrepOptions {
        preset: Some(Preset::FashionMnist),
        ..Default::default()
    };
    let fashion = qvit_host::source::float_bundle(
        &repo().join("models/fashion-vit/fashion_vit.onnx"),
        None,
        &prep,
        None,
    )
    .unwrap();
    vec![
        ("deit_tiny", deit.graph, deit.input_shape, 12),
        ("fashion_vit", fashion.graph, fashion.header.input_shape, 6),
        ("vit_dynamo", dynamo.graph, dynamo.input_shape, 0),
        // Swin adds a relative position bias to the scores: its attention stays node by node.
        ("swin_tiny", swin.graph, swin.input_shape, 0),
    ]
}

fn bits_of(a: &[Tensor]) -> Vec<Vec<u32>> {
    a.iter()
        .map(|t| t.data.iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn fused_runs_equal_node_by_node_runs_on_every_tier() {
    let mut rng = SeededRng::new(11);
    for (name, graph, shape, blocks) in models() {
        let n: usize = shape.iter().product();
        let calib: Vec<Tensor> = (0..2)
            .map(|_| Tensor::new(shape.clone(), rng.normals(n, 1.0)).unwrap())
            .collect();
        let x = Tensor::new(shape.clone(), rng.normals(n, 1.0)).unwrap();
        for bits in [8u8, 5, 4] {
            let opts = QuantOptions {
                wbits: bits,
                abits: bits,
                ..Default::default()
            };
            let q = quantize(&graph, &calib, &opts).unwrap();
            for tier in Tier::supported() {
                let ks = KernelSet::with_tier(tier).unwrap();
                let mut ex = Executor::new(q.graph.clone(), ks).unwrap();
                let want = bits_of(&ex.run_observed(&[&x], &mut |_, _| {}).unwrap());
                for threads in [1, 2, 3] {
                    ex.set_threads(threads);
                    let mut profile = Profile::default();
                    let got = bits_of(&ex.run_profiled(&[&x], &mut profile).unwrap());
                    assert!(
                        got == want,
                        "{name} W{bits}A{bits} tier {tier} {threads} threads: fused differs"
                    );
                    let count = |op: &str| profile.steps().iter().filter(|s| s.op == op).count();
                    for op in [
                        "Attention→int8",
                        "LayerNorm→int8",
                        "QLinear→int8",
                        "QLinear+Gelu→int8",
                    ] {
                        assert!(
                            count(op) >= blocks,
                            "{name}: {} {op} steps, {blocks} blocks",
                            count(op)
                        );
                    }
                    assert!(count("QLinear+Add") >= 2 * blocks, "{name}: residual adds");
                }
            }
            eprintln!(
                "{name} W{bits}A{bits}: fused = node by node on {:?}",
                Tier::supported()
            );
        }
    }
}
