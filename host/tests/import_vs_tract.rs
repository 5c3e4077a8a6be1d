//! Every model the importer must handle, run by the device executor and by tract (the oracle),
//! on a random and a real input: cosine ≥ 0.99999 and max relative error ≤ 1e-4, where the
//! relative error is max|device − tract| / max|tract| over the output.

use qvit_device::Tensor;
use qvit_device::exec::Executor;
use qvit_host::fixtures::{SeededRng, load_weightless};
use qvit_host::import::{Imported, import_path, import_proto};
use qvit_kernels::KernelSet;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The shared models beside the repository (every developer machine and CI has them).
fn shared() -> PathBuf {
    let p = repo().join("../shared/models");
    assert!(
        p.is_dir(),
        "{} not found: these tests need the project's shared models and data in ../shared, \
         beside the repository",
        p.display()
    );
    p
}

fn tract_run(imp: &Imported, x: &Tensor) -> Vec<f32> {
    let plan = imp
        .tract
        .clone()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let t = tract_onnx::prelude::Tensor::from_shape(&x.shape, &x.data).unwrap();
    let out = plan.run(tvec!(t.into())).unwrap();
    out[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

fn compare(label: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{label}: output length");
    let dot: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| *a as f64 * *b as f64)
        .sum();
    let na: f64 = got.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum::<f64>().sqrt();
    let cos = dot / (na * nb).max(1e-30);
    let maxabs = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let maxerr = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    let rel = maxerr / maxabs.max(1e-30);
    eprintln!("{label}: cosine {cos:.9}, max rel error {rel:.3e}");
    assert!(cos >= 0.99999, "{label}: cosine {cos}");
    assert!(rel <= 1e-4, "{label}: max relative error {rel:e}");
}

/// Where the fixture script saved onnxruntime's outputs, the device must match them too.
fn check_onnxruntime(name: &str, exec: &mut Executor) {
    for kind in ["random", "real"] {
        let (xi, yo) = (
            fixture(&format!("{name}.input_{kind}.npy")),
            fixture(&format!("{name}.output_{kind}.npy")),
        );
        let x = qvit_device::npy::read(&xi).unwrap();
        let want = qvit_device::npy::read(&yo).unwrap_or_else(|e| {
            panic!("{name}: onnxruntime's output (scripts/fixtures/ writes it): {e}")
        });
        let got = exec.run(&[&x]).unwrap().remove(0);
        assert_eq!(got.shape, want.shape, "{name}: output shape vs onnxruntime");
        compare(
            &format!("{name} {kind} vs onnxruntime"),
            &got.data,
            &want.data,
        );
    }
}

/// Which references a model is checked against besides tract.
#[derive(PartialEq)]
enum Oracles {
    /// tract only: no onnxruntime outputs exist (weights filled from a seed, or a shared model).
    Tract,
    /// tract and the onnxruntime outputs the fixture script saved.
    TractAndOnnxruntime,
}

fn check(label: &str, imp: Imported, real: Tensor, oracles: Oracles) {
    let shape = imp.input_shape.clone();
    let mut rng = SeededRng::new(7);
    let random = Tensor::new(shape.clone(), rng.normals(shape.iter().product(), 1.0)).unwrap();
    let mut exec = Executor::new(imp.graph.clone(), KernelSet::detect()).unwrap();
    for (kind, x) in [("random", random), ("real", real)] {
        let got = exec.run(&[&x]).unwrap();
        compare(
            &format!("{label} {kind}"),
            &got[0].data,
            &tract_run(&imp, &x),
        );
    }
    if oracles == Oracles::TractAndOnnxruntime {
        check_onnxruntime(label, &mut exec);
    }
}

fn fixture(name: &str) -> PathBuf {
    repo().join("models/fixtures").join(name)
}

/// The real input the fixture script saved beside the model.
fn real_input(name: &str) -> Tensor {
    let p = fixture(&format!("{name}.input_real.npy"));
    qvit_device::npy::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn vit_mnist_opset17() {
    let s = shared();
    let imp = import_path(&s.join("vit-mnist/vit_mnist.onnx"), None).unwrap();
    let digits =
        qvit_host::data::Dataset::open(&s.join("../data/mnist/t10k-images-idx3-ubyte")).unwrap();
    let real = digits
        .sample(0, &qvit_device::Preprocess::mnist())
        .unwrap()
        .input;
    check("vit_mnist", imp, real, Oracles::Tract);
}

#[test]
fn vit_s14_dinov2_opset14() {
    let s = shared();
    let imp = import_path(&s.join("vit-s14-dinov2/vit_s14_backbone.onnx"), None).unwrap();
    let photo =
        qvit_device::preprocess::load_image(s.join("../data/imagenet-sample/n01440764_tench.JPEG"))
            .unwrap();
    let real = qvit_device::Preprocess::imagenet(224)
        .apply(&photo)
        .unwrap();
    check("vit_s14", imp, real, Oracles::Tract);
}

#[test]
fn deit_tiny_opset14() {
    let proto = load_weightless(&fixture("deit_tiny_op14.onnx"), 14).unwrap();
    check(
        "deit_tiny_op14",
        import_proto(&proto, None).unwrap(),
        real_input("deit_tiny_op14"),
        Oracles::Tract,
    );
}

#[test]
fn deit_tiny_opset17() {
    let proto = load_weightless(&fixture("deit_tiny_op17.onnx"), 17).unwrap();
    check(
        "deit_tiny_op17",
        import_proto(&proto, None).unwrap(),
        real_input("deit_tiny_op17"),
        Oracles::Tract,
    );
}

#[test]
fn dynamo_opset18_external_data() {
    let name = "vit_dynamo_op18";
    check(
        name,
        import_path(&fixture(&format!("{name}.onnx")), None).unwrap(),
        real_input(name),
        Oracles::TractAndOnnxruntime,
    );
}

#[test]
fn postnorm_transformer_encoder() {
    let name = "postnorm_encoder_op17";
    check(
        name,
        import_path(&fixture(&format!("{name}.onnx")), None).unwrap(),
        real_input(name),
        Oracles::TractAndOnnxruntime,
    );
}

#[test]
fn swin_shifted_windows() {
    let name = "swin_tiny_op17";
    check(
        name,
        import_path(&fixture(&format!("{name}.onnx")), None).unwrap(),
        real_input(name),
        Oracles::TractAndOnnxruntime,
    );
}
