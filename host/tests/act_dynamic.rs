//! `--act-scale dynamic`: the body Linears get per-row input quantizers and the edges stay
//! static; on the trained default model with real images a W4A4 dynamic bundle is closer to
//! f32 than the static one; and its fused run gives the node-by-node run's bits on every tier
//! and thread count.

use qvit_device::Tensor;
use qvit_device::exec::Executor;
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

#[test]
fn dynamic_w4a4_is_closer_to_f32_than_static_and_fuses_bit_exactly() {
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
    let run = |g: &qvit_device::Graph, x: &Tensor| {
        let mut ex = Executor::new(g.clone(), KernelSet::detect()).unwrap();
        ex.run(&[x]).unwrap().remove(0).data
    };
    let want: Vec<Vec<f32>> = test.iter().map(|x| run(&fb.graph, x)).collect();
    let mut cos = Vec::new();
    let mut graphs = Vec::new();
    for act_scale in [ActScale::Static, ActScale::Dynamic] {
        let opts = QuantOptions {
            wbits: 4,
            abits: 4,
            act_scale,
            ..Default::default()
        };
        let q = quantize(&fb.graph, &calib, &opts).unwrap();
        let mut ex = Executor::new(q.graph.clone(), KernelSet::detect()).unwrap();
        let c = test
            .iter()
            .zip(&want)
            .map(|(x, w)| cosine(&ex.run(&[x]).unwrap().remove(0).data, w))
            .sum::<f64>()
            / test.len() as f64;
        cos.push(c);
        graphs.push(q.graph);
    }
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

    // Fused (dynamic layers quantize their f32 rows themselves) equals node by node.
    let x = &test[0];
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
