//! Explanations: relevance and SR concentrate where a constructed model looks, maps are
//! deterministic, overlays keep the input's size, faithfulness ranks a real order above a random
//! one, and a quantized bundle's maps stay rank-correlated with the f32 model's.

mod common;

use common::qvit;
use qvit_device::exec::Executor;
use qvit_device::{Graph, Layout, Node, Op, Source, Tensor, Value};
use qvit_host::explain::faithfulness::{Score, curves, order};
use qvit_host::explain::maps::{patch_map, pixel_map};
use qvit_host::explain::saliency::{SaliencyParams, salient_relevance};
use qvit_host::fixtures::SeededRng;
use qvit_host::lrp::{Lrp, LrpOptions, Seed};
use qvit_kernels::KernelSet;
use serde_json::Value as Json;

const SIDE: usize = 16;

/// In the region rows 4..9, columns 6..12 of a 16×16 image.
fn in_region(p: usize) -> bool {
    (4..9).contains(&(p / SIDE)) && (6..12).contains(&(p % SIDE))
}

/// `[1,1,16,16] → flatten → Linear (weights only on the region) → ReLU → Linear → 3 logits`:
/// the output depends on the region's pixels and nothing else.
fn region_model(seed: u64) -> Graph {
    let mut rng = SeededRng::new(seed);
    let mut g = Graph::default();
    let value = |g: &mut Graph, name: &str, shape: Vec<usize>, source: Source| {
        g.values.push(Value {
            name: name.into(),
            shape,
            source,
        });
        (g.values.len() - 1) as u32
    };
    let x = value(&mut g, "x", vec![1, 1, SIDE, SIDE], Source::Input(0));
    g.inputs.push(x);
    let n = SIDE * SIDE;
    let w1: Vec<f32> = (0..12 * n)
        .map(|i| {
            if in_region(i % n) {
                rng.normal() * 0.3
            } else {
                0.0
            }
        })
        .collect();
    let w1 = value(&mut g, "w1", vec![12, n], Source::Const(w1));
    let b1 = value(&mut g, "b1", vec![12], Source::Const(rng.normals(12, 0.1)));
    let w2 = value(
        &mut g,
        "w2",
        vec![3, 12],
        Source::Const(rng.normals(36, 0.5)),
    );
    let flat = value(&mut g, "flat", vec![1, n], Source::Node(0));
    let h = value(&mut g, "h", vec![1, 12], Source::Node(1));
    let r = value(&mut g, "r", vec![1, 12], Source::Node(2));
    let y = value(&mut g, "y", vec![1, 3], Source::Node(3));
    let node = |op, inputs, output| Node {
        name: format!("n{output}"),
        op,
        inputs,
        output,
    };
    g.nodes = vec![
        node(Op::Reshape, vec![x], flat),
        node(Op::Linear, vec![flat, w1, b1], h),
        node(Op::Relu, vec![h], r),
        node(Op::Linear, vec![r, w2], y),
    ];
    g.outputs.push(y);
    g
}

fn image(seed: u64) -> Tensor {
    Tensor::new(
        vec![1, 1, SIDE, SIDE],
        SeededRng::new(seed).normals(SIDE * SIDE, 1.0),
    )
    .unwrap()
}

#[test]
fn relevance_and_sr_concentrate_on_the_region_the_model_reads() {
    for seed in 0..8 {
        let mut lrp = Lrp::new(region_model(seed), LrpOptions::default()).unwrap();
        let r = lrp.run(&image(100 + seed), Seed::Logit(None)).unwrap();
        let m = pixel_map(&r.input, Layout::Nchw).unwrap();
        let outside = (0..m.data.len()).filter(|&p| !in_region(p));
        assert!(
            outside.into_iter().all(|p| m.data[p] == 0.0),
            "relevance outside the region"
        );
        assert!((0..m.data.len()).any(|p| in_region(p) && m.data[p] != 0.0));

        let positive: Vec<f32> = m.data.iter().map(|v| v.max(0.0)).collect();
        if positive.iter().all(|&v| v == 0.0) {
            continue;
        }
        let params = SaliencyParams {
            patch: 3,
            ..Default::default()
        };
        let sr = salient_relevance(&positive, SIDE, SIDE, &params).unwrap();
        let mean = |f: &dyn Fn(usize) -> bool| {
            let v: Vec<f32> = (0..sr.len()).filter(|&p| f(p)).map(|p| sr[p]).collect();
            v.iter().sum::<f32>() / v.len() as f32
        };
        let (si, so) = (mean(&in_region), mean(&|p| !in_region(p)));
        assert!(si > 2.0 * so, "seed {seed}: SR inside {si}, outside {so}");
    }
}

#[test]
fn patch_map_sums_pixel_relevance() {
    let mut lrp = Lrp::new(region_model(1), LrpOptions::default()).unwrap();
    let r = lrp.run(&image(5), Seed::Logit(None)).unwrap();
    let m = pixel_map(&r.input, Layout::Nchw).unwrap();
    let p = patch_map(&m, 4);
    assert_eq!((p.w, p.h), (4, 4));
    let total: f32 = m.data.iter().sum();
    assert!((p.data.iter().sum::<f32>() - total).abs() <= 1e-4 * (1.0 + total.abs()));
}

/// Deleting pixels by relevance lowers the target probability faster than a random order.
#[test]
fn relevance_order_deletes_faster_than_random() {
    let mut gain = 0.0;
    for seed in 0..6 {
        let g = region_model(seed);
        let mut lrp = Lrp::new(g.clone(), LrpOptions::default()).unwrap();
        let mut ex = Executor::new(g, KernelSet::detect()).unwrap();
        let x = image(200 + seed);
        let r = lrp.run(&x, Seed::Logit(None)).unwrap();
        let m = pixel_map(&r.input, Layout::Nchw).unwrap();
        let score = Score::Prob(r.target.unwrap());
        let by_lrp = curves(&mut ex, &x, Layout::Nchw, &order(&m.data), &score, 16).unwrap();
        let mut rng = SeededRng::new(seed);
        let random: Vec<f32> = (0..m.data.len()).map(|_| rng.uniform()).collect();
        let by_random = curves(&mut ex, &x, Layout::Nchw, &order(&random), &score, 16).unwrap();
        assert_eq!(by_lrp.deletion.len(), 17);
        gain += by_lrp.deletion_aopc() - by_random.deletion_aopc();
    }
    assert!(gain > 0.0, "relevance order no better than random: {gain}");
}

#[test]
fn explain_cli_writes_deterministic_maps_with_the_input_size() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut npys = Vec::new();
    for run in 0..2 {
        let out = dir.join(format!("run{run}"));
        let (ok, _, err) = qvit(&[
            "explain",
            "models/fashion-vit/fashion_vit.onnx",
            "--preset",
            "fashion-mnist",
            "models/fashion-vit/sample.png",
            "--scale",
            "1",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        for kind in ["lrp", "patch", "sr"] {
            let png = image::open(out.join(format!("sample.{kind}.png"))).unwrap();
            assert_eq!(png.height(), 28, "{kind}");
            assert_eq!(png.width(), 28 + qvit_host::plot::COLORBAR_WIDTH, "{kind}");
        }
        npys.push(std::fs::read(out.join("sample.lrp.npy")).unwrap());
        let summary: Json =
            serde_json::from_str(&std::fs::read_to_string(out.join("explain.json")).unwrap())
                .unwrap();
        assert_eq!(summary["images"][0]["label"], "Ankle boot");
    }
    assert_eq!(npys[0], npys[1], "maps differ between runs");
}

#[test]
fn explain_eval_reports_aopc_per_method() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (ok, out, err) = qvit(&[
        "explain",
        "models/fashion-vit/fashion_vit.onnx",
        "--preset",
        "fashion-mnist",
        "--eval",
        "--data",
        "models/fashion-vit/test1k-images-idx3-ubyte",
        "--limit",
        "6",
        "--steps",
        "8",
        "--json",
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let v: Json = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 6);
    for m in ["lrp", "sr", "gradxinput", "random"] {
        let d = v["methods"][m]["deletion_aopc"].as_f64().unwrap();
        let i = v["methods"][m]["insertion_aopc"].as_f64().unwrap();
        assert!(
            (-1.0..=1.0).contains(&d) && (-1.0..=1.0).contains(&i),
            "{m}: {d} {i}"
        );
        assert_eq!(
            v["methods"][m]["deletion_curve"].as_array().unwrap().len(),
            9
        );
    }
    assert!(dir.join("faithfulness.png").exists());
}

/// A W8A8 bundle is explained through its own graph, and its maps stay close in rank to the f32
/// model's; a W2A2 bundle's maps move further away.
#[test]
fn quantized_bundle_explanations_track_the_float_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut rc = Vec::new();
    for bits in ["8", "2"] {
        let bundle = dir.join(format!("w{bits}.qvit"));
        let (ok, _, err) = qvit(&[
            "quantize",
            "models/fashion-vit/fashion_vit.onnx",
            "--preset",
            "fashion-mnist",
            "--calib",
            "models/fashion-vit/calib512-images-idx3-ubyte",
            "--calib-limit",
            "32",
            "--wbits",
            bits,
            "--abits",
            bits,
            "-o",
            bundle.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        let out = dir.join(format!("maps{bits}"));
        let (ok, stdout, err) = qvit(&[
            "explain",
            bundle.to_str().unwrap(),
            "models/fashion-vit/sample.png",
            "--reference",
            "models/fashion-vit/fashion_vit.onnx",
            "--json",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        let v: Json = serde_json::from_str(&stdout).unwrap();
        rc.push(
            v["images"][0]["rank_correlation_vs_reference"]["lrp"]
                .as_f64()
                .unwrap(),
        );
    }
    assert!(rc[0] > 0.8, "W8A8 maps rank-correlate only {}", rc[0]);
    assert!(
        rc[0] > rc[1],
        "W2A2 ({}) not further from f32 than W8A8 ({})",
        rc[1],
        rc[0]
    );
}
