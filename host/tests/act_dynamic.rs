//! `--act-scale dynamic`: the body Linears get per-row input quantizers and the edges stay
//! static; `--attn-scale dynamic`: the attention products' Q, K and V get run-time steps. On
//! the trained default model with real images each W4A4 dynamic bundle is closer to f32 than
//! the static one, and its fused run gives the node-by-node run's bits on every tier and
//! thread count.

use qvit_device::Tensor;
use qvit_device::exec::{Executor, Profile};
use qvit_device::graph::Op;
use qvit_device::quant::ActQuant;
use qvit_host::compare::cosine;
use qvit_host::prep::{PrepOptions, Preset};
use qvit_host::quant::{ActScale, QuantOptions, quantize};
use qvit_kernels::{KernelSet, Tier};
use std::path::{Path, PathBuf};

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fashion-vit")
}

fn bits_of(a: &[Tensor]) -> Vec<Vec<u32>> {
    a.iter()
        .map(|t| t.data.iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// The default model as f32, 32 calibration images and 64 test images.
fn default_model() -> (qvit_device::bundle::Bundle, Vec<Tensor>, Vec<Tensor>) {
    let prep = PrepOptions {
        preset: Some(Preset::FashionMnist),
        ..Default::default()
    };
    let fb =
        qvit_host::source::float_bundle(&model_dir().join("fashion_vit.onnx"), None, &prep, None)
            .unwrap();
    let pre = fb.header.preprocess.clone().unwrap();
    let calib =
        qvit_host::data::load_inputs(&model_dir().join("calib512-images-idx3-ubyte"), &pre, 32)
            .unwrap();
    let test =
        qvit_host::data::load_inputs(&model_dir().join("test1k-images-idx3-ubyte"), &pre, 64)
            .unwrap();
    (fb, calib, test)
}

/// Each option set's quantized graph of the default model at W4A4 and its mean output cosine
/// against f32 on the test images.
fn quantize_and_score(
    opts: impl IntoIterator<Item = QuantOptions>,
) -> (Vec<qvit_device::Graph>, Vec<f64>, Vec<Tensor>) {
    let (fb, calib, test) = default_model();
    let mut f32_ex = Executor::new(fb.graph.clone(), KernelSet::detect()).unwrap();
    let want: Vec<Vec<f32>> = test
        .iter()
        .map(|x| f32_ex.run(&[x]).unwrap().remove(0).data)
        .collect();
    let (mut graphs, mut cos) = (Vec::new(), Vec::new());
    for o in opts {
        let q = quantize(&fb.graph, &calib, &o).unwrap();
        cos.push(mean_cosine(&q.graph, &test, &want));
        graphs.push(q.graph);
    }
    (graphs, cos, test)
}

/// Mean cosine of `g`'s outputs on `test` against `want`.
fn mean_cosine(g: &qvit_device::Graph, test: &[Tensor], want: &[Vec<f32>]) -> f64 {
    let mut ex = Executor::new(g.clone(), KernelSet::detect()).unwrap();
    test.iter()
        .zip(want)
        .map(|(x, w)| cosine(&ex.run(&[x]).unwrap().remove(0).data, w))
        .sum::<f64>()
        / test.len() as f64
}

/// The fused run of `g` on `x` (dynamic operands quantize their f32 rows themselves) gives the
/// node-by-node run's bits on every tier and thread count.
fn assert_fused_equals_node_by_node(g: &qvit_device::Graph, x: &Tensor) {
    for tier in Tier::supported() {
        let mut ex = Executor::new(g.clone(), KernelSet::with_tier(tier).unwrap()).unwrap();
        let node_by_node = bits_of(&ex.run_observed(&[x], &mut |_, _| {}).unwrap());
        for threads in [1, 2, 3] {
            ex.set_threads(threads);
            let fused = bits_of(&ex.run(&[x]).unwrap());
            assert!(fused == node_by_node, "tier {tier} {threads} threads");
        }
    }
}

#[test]
fn dynamic_w4a4_is_closer_to_f32_than_static_and_fuses_bit_exactly() {
    let (graphs, cos, test) = quantize_and_score([ActScale::Static, ActScale::Dynamic].map(
        |act_scale| QuantOptions {
            wbits: 4,
            abits: 4,
            act_scale,
            ..Default::default()
        },
    ));
    eprintln!(
        "W4A4 logits cosine vs f32: static {:.5}, dynamic {:.5}",
        cos[0], cos[1]
    );
    assert!(cos[1] > cos[0], "dynamic not closer to f32: {cos:?}");

    // Which layers are dynamic: every QLinear but the patch embedding and the head (8 bits).
    let g = &graphs[1];
    let acts: Vec<(String, ActQuant)> = g
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::QLinear { act } => Some((n.name.clone(), act)),
            _ => None,
        })
        .collect();
    let dynamic = acts.iter().filter(|(_, a)| a.is_dynamic()).count();
    assert_eq!(dynamic, acts.len() - 2, "{acts:?}");
    for (name, a) in [&acts[0], &acts[acts.len() - 1]] {
        assert!(
            matches!(a, ActQuant::Uniform { bits: 8, .. }),
            "{name}: {a:?}"
        );
    }
    assert_fused_equals_node_by_node(g, &test[0]);
}

/// `--attn-scale dynamic`: Q gets a step per token, K per token and V per channel; the
/// probabilities keep their log2 quantizer. At W4A4 on the default model it is closer to f32
/// than per-tensor attention operands, the attention still runs as one fused step, and fused
/// equals node by node.
#[test]
fn dynamic_attention_w4a4_is_closer_to_f32_and_fuses_bit_exactly() {
    let (graphs, cos, test) = quantize_and_score([ActScale::Static, ActScale::Dynamic].map(
        |attn_scale| QuantOptions {
            wbits: 4,
            abits: 4,
            act_scale: ActScale::Dynamic,
            attn_scale,
            ..Default::default()
        },
    ));
    eprintln!(
        "W4A4 logits cosine vs f32: static attention {:.5}, dynamic {:.5}",
        cos[0], cos[1]
    );
    assert!(
        cos[1] > cos[0],
        "dynamic attention not closer to f32: {cos:?}"
    );
    let g = &graphs[1];
    let products: Vec<(ActQuant, ActQuant)> = g
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::QMatMul { a, b, .. } => Some((a, b)),
            _ => None,
        })
        .collect();
    assert!(!products.is_empty());
    for pair in products.chunks(2) {
        assert!(
            matches!(
                pair,
                [
                    (
                        ActQuant::Dynamic { bits: 4 },
                        ActQuant::DynamicSymmetric { bits: 4 }
                    ),
                    (
                        ActQuant::Log2 { bits: 4, .. },
                        ActQuant::DynamicSymmetric { bits: 4 }
                    ),
                ]
            ),
            "{pair:?}"
        );
    }
    assert_fused_equals_node_by_node(g, &test[0]);
    // The run-time steps are taken inside the fused attention step: no softmax runs apart.
    let mut ex = Executor::new(g.clone(), KernelSet::detect()).unwrap();
    let mut profile = Profile::default();
    ex.run_profiled(&[&test[0]], &mut profile).unwrap();
    let count = |p: &str| {
        profile
            .steps()
            .iter()
            .filter(|s| s.op.starts_with(p))
            .count()
    };
    assert_eq!(count("Attention"), products.len() / 2);
    assert_eq!(count("Softmax"), 0);
}
