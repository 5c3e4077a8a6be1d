//! The `qvit` binary end to end on the bundled default model and the shared MNIST ViT.

mod common;

use common::{qvit, repo};
use serde_json::Value;

#[test]
fn inspect_json_counts_macs_in_closed_form() {
    let (ok, out, err) = qvit(&["inspect", "models/fashion-vit/fashion_vit.onnx", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    // 28×28 input, patch 7 → 16 patches + cls = 17 tokens; dim 64, 4 heads of 16, MLP 128, 6 blocks.
    let (t, d, h, hd, mlp, depth) = (17u64, 64u64, 4u64, 16u64, 128u64, 6u64);
    let block = t * d * 3 * d + 2 * h * t * t * hd + t * d * d + 2 * t * d * mlp;
    let want = 16 * d * 49 + depth * block + d * 10;
    assert_eq!(v["total_macs"].as_u64().unwrap(), want);
    let layers = v["layers"].as_array().unwrap();
    let linear = layers.iter().filter(|l| l["op"] == "Linear").count();
    assert_eq!(
        linear as u64,
        4 * depth + 1,
        "qkv, proj, fc1, fc2 per block, plus the head"
    );
    let norms = layers.iter().filter(|l| l["op"] == "LayerNorm").count() as u64;
    assert_eq!(norms, 2 * depth + 1);
    let sum: u64 = layers.iter().map(|l| l["params"].as_u64().unwrap()).sum();
    assert_eq!(sum, v["total_params"].as_u64().unwrap());
}

#[test]
fn float_bundle_of_default_model_matches_onnxruntime_accuracy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bundle = dir.join("f.qvit");
    let b = bundle.to_str().unwrap();
    let (ok, _, err) = qvit(&[
        "quantize",
        "models/fashion-vit/fashion_vit.onnx",
        "--float",
        "--preset",
        "fashion-mnist",
        "-o",
        b,
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = qvit(&[
        "eval",
        b,
        "--data",
        "models/fashion-vit/test1k-images-idx3-ubyte",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 1000);
    // onnxruntime: 899 of the first 1000 test images (models/fashion-vit/README.md).
    assert_eq!((v["top1"].as_f64().unwrap() * 1000.0).round() as i64, 899);
    assert!(v["top5"].as_f64().unwrap() >= v["top1"].as_f64().unwrap());
}

#[test]
fn mnist_vit_matches_onnxruntime_on_10k_test_images() {
    let shared = repo().join("../shared");
    assert!(
        shared.is_dir(),
        "{} not found: this test needs the project's shared models and data in ../shared, \
         beside the repository",
        shared.display()
    );
    let (ok, out, err) = qvit(&[
        "eval",
        "../shared/models/vit-mnist/vit_mnist.onnx",
        "--preset",
        "mnist",
        "--data",
        "../shared/data/mnist/t10k-images-idx3-ubyte",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 10000);
    // onnxruntime: 97.91 % (../shared/README.md).
    assert_eq!((v["top1"].as_f64().unwrap() * 10000.0).round() as i64, 9791);
}

#[test]
fn bad_inputs_give_errors_not_panics() {
    for args in [
        vec!["inspect", "does-not-exist.onnx"],
        vec!["inspect", "README.md"],
        vec![
            "inspect",
            "models/fashion-vit/fashion_vit.onnx",
            "--input-shape",
            "1,3,28,28",
        ],
        vec![
            "eval",
            "models/fashion-vit/fashion_vit.onnx",
            "--data",
            "nowhere",
        ],
        vec![
            "eval",
            "models/fashion-vit/fashion_vit.onnx",
            "--preset",
            "imagenet",
            "--data",
            "models/fashion-vit",
        ],
        vec![
            "quantize",
            "models/fashion-vit/fashion_vit.onnx",
            "-o",
            "/tmp/x.qvit",
        ],
        vec![
            "eval",
            "README.qvit",
            "--data",
            "models/fashion-vit/test1k-images-idx3-ubyte",
        ],
    ] {
        let (ok, _, err) = qvit(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// The quantization commands through the binary: `quantize` writes the bundle and both reports
/// with the documented fields, `compare --json` gives agreement, cosines and one entry per
/// quantized layer, and the bundle's accuracy from `eval` equals `compare`'s.
#[test]
fn quantize_and_compare_cli_write_their_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bundle = dir.join("w6a6.qvit");
    let b = bundle.to_str().unwrap();
    let m = "models/fashion-vit";
    let (ok, _, err) = qvit(&[
        "quantize",
        &format!("{m}/fashion_vit.onnx"),
        "--preset",
        "fashion-mnist",
        "--calib",
        &format!("{m}/calib512-images-idx3-ubyte"),
        "--calib-limit",
        "32",
        "--wbits",
        "6",
        "--abits",
        "6",
        "-o",
        b,
    ]);
    assert!(ok, "{err}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("w6a6.report.json")).unwrap())
            .unwrap();
    assert_eq!(report["wbits"], 6);
    assert_eq!(report["calib_images"], 32);
    assert_eq!(report["sizes"]["within_bound"], true);
    let layers = report["layers"].as_array().unwrap();
    assert!(
        layers
            .iter()
            .any(|l| l["kind"] == "patch_embed" && l["wbits"] == 8)
    );
    assert!(layers.iter().any(|l| l["kind"] == "qkv" && l["wbits"] == 6));
    assert!(
        std::fs::read_to_string(dir.join("w6a6.report.md"))
            .unwrap()
            .contains("| layer |")
    );

    let (ok, out, err) = qvit(&[
        "compare",
        b,
        &format!("{m}/fashion_vit.onnx"),
        "--data",
        &format!("{m}/test1k-images-idx3-ubyte"),
        "--limit",
        "100",
        "--json",
    ]);
    assert!(ok, "{err}");
    let c: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(c["n"], 100);
    assert!(c["top1_agreement"].as_f64().unwrap() > 0.9);
    assert!(c["output_cosine_mean"].as_f64().unwrap() >= c["output_cosine_min"].as_f64().unwrap());
    assert_eq!(c["layers"].as_array().unwrap().len(), layers.len());
    let (ok, out, err) = qvit(&[
        "eval",
        b,
        "--data",
        &format!("{m}/test1k-images-idx3-ubyte"),
        "--limit",
        "100",
        "--json",
    ]);
    assert!(ok, "{err}");
    let e: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["top1"].as_f64(), c["top1_quantized"].as_f64());

    // Bad quantization requests are errors, not panics.
    for bad in [
        vec!["--wbits", "9"],
        vec!["--wbits", "4"],
        vec!["--calib", "models/fashion-vit/calib512-images-idx3-ubyte"],
    ] {
        let mut args = vec![
            "quantize",
            "models/fashion-vit/fashion_vit.onnx",
            "--preset",
            "fashion-mnist",
            "-o",
            b,
        ];
        args.extend(bad);
        let (ok, _, err) = qvit(&args);
        assert!(!ok && err.contains("error"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `qvit relevance` prints per-layer scores that sum to 1 over the same layer names `quantize`
/// reports, draws the bar chart, and refuses a bad target.
#[test]
fn relevance_cli_scores_layers_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let png = dir.join("scores.png");
    let m = "models/fashion-vit";
    let base = [
        "relevance",
        "models/fashion-vit/fashion_vit.onnx",
        "--preset",
        "fashion-mnist",
        "--data",
        &format!("{m}/test1k-images-idx3-ubyte"),
        "--limit",
        "4",
    ];
    let mut args = base.to_vec();
    args.extend(["--json", "--plot", png.to_str().unwrap()]);
    let (ok, out, err) = qvit(&args);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"], 4);
    let layers = v["layers"].as_array().unwrap();
    let total: f64 = layers.iter().map(|l| l["score"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9, "scores sum to {total}");
    for kind in [
        "qkv",
        "proj",
        "fc1",
        "fc2",
        "qk",
        "av",
        "head",
        "patch_embed",
    ] {
        assert!(layers.iter().any(|l| l["kind"] == kind), "no {kind} layer");
    }
    let img = image::open(&png).unwrap();
    assert!(img.height() > 14 * layers.len() as u32);

    let mut bad = base.to_vec();
    bad.extend(["--target", "10"]);
    let (ok, _, err) = qvit(&bad);
    assert!(!ok && err.contains("out of range"), "{err}");
}

/// `qvit quantize --mixed` writes the allocation into both reports and stays within budget;
/// a malformed allocator or a budget below every choice is an error.
#[test]
fn quantize_mixed_cli_reports_its_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bundle = dir.join("mixed.qvit");
    let m = "models/fashion-vit";
    let calib = format!("{m}/calib512-images-idx3-ubyte");
    let args = |alloc: &'static str, budget: &'static str, select: &'static str| {
        vec![
            "quantize".to_string(),
            format!("{m}/fashion_vit.onnx"),
            "--preset".into(),
            "fashion-mnist".into(),
            "--calib".into(),
            calib.clone(),
            "--calib-limit".into(),
            "16".into(),
            "--mixed".into(),
            "--budget".into(),
            budget.into(),
            "--allocate".into(),
            alloc.into(),
            "--select-images".into(),
            select.into(),
            "-o".into(),
            bundle.to_str().unwrap().into(),
        ]
    };
    let call = |a: Vec<String>| qvit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let report = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("mixed.report.json")).unwrap())
            .unwrap()
    };
    // Without trials the knapsack's proposal is taken as it is.
    let (ok, _, err) = call(args("lrp", "3.5", "0"));
    assert!(ok, "{err}");
    let r = report();
    let mixed = &r["mixed"];
    assert_eq!(mixed["trials"].as_array().map(Vec::len), Some(0));
    assert_eq!(mixed["allocator"], "lrp");
    assert!(mixed["achieved_wbits"].as_f64().unwrap() <= 3.5);
    assert!(mixed["achieved_abits"].as_f64().unwrap() <= 3.5);
    let bits: Vec<u64> = mixed["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["wbits"].as_u64())
        .collect();
    assert!(bits.iter().min() < bits.iter().max(), "not mixed: {bits:?}");
    let md = std::fs::read_to_string(dir.join("mixed.report.md")).unwrap();
    assert!(md.contains("Mixed precision: `lrp`"));

    // With trials: 3 γ and uniform, for weights and activations (fewer where proposals agree).
    let (ok, _, err) = call(args("lrp", "3.5", "8"));
    assert!(ok, "{err}");
    let r = report();
    let trials = r["mixed"]["trials"].as_array().unwrap().len();
    assert!((2..=16).contains(&trials), "{trials} trials");
    assert_eq!(r["mixed"]["selection_images"], 8);
    let md = std::fs::read_to_string(dir.join("mixed.report.md")).unwrap();
    assert!(md.contains("Best trial's edge over uniform"), "{md}");

    let (ok, _, err) = call(args("random:x", "4", "0"));
    assert!(!ok && err.contains("seed must be an integer"), "{err}");
    let (ok, _, err) = call(args("uniform", "1", "0"));
    assert!(
        !ok && err.contains("below the smallest bit choice"),
        "{err}"
    );
}
