//! qvit-run built for aarch64 and run under qemu gives the x86 device runtime's output on the
//! same bundle and inputs, as a Cortex-A53 (NEON only) and as `max` (dotprod + i8mm).
//!
//! The aarch64 binary is named by QVIT_AARCH64_RUN: scripts/test.sh builds it, sets it and runs
//! these tests with `--ignored`. They are ignored in a plain `cargo test`, and fail when run
//! without the variable.

use qvit_device::Tensor;
use qvit_device::model::Model;
use qvit_host::fixtures::SeededRng;
use qvit_host::prep::{PrepOptions, Preset};
use std::path::{Path, PathBuf};
use std::process::Command;

fn default_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fashion-vit/fashion_vit.onnx")
}

fn runner() -> String {
    std::env::var("QVIT_AARCH64_RUN").unwrap_or_else(|_| {
        panic!(
            "QVIT_AARCH64_RUN is not set: run scripts/test.sh, or build qvit-run for aarch64 \
             (cargo build --target aarch64-unknown-linux-gnu -p qvit-device --bin qvit-run) and \
             set QVIT_AARCH64_RUN to it"
        )
    })
}

fn default_float_bundle() -> qvit_device::bundle::Bundle {
    let prep = PrepOptions {
        preset: Some(Preset::FashionMnist),
        ..Default::default()
    };
    qvit_host::source::float_bundle(&default_model(), None, &prep, None).unwrap()
}

/// Runs `bundle` on `inputs` with the x86 runtime and with the aarch64 qvit-run under qemu as
/// a Cortex-A53 and as `max`; outputs must agree within `tol` relative and pick the same class.
fn check_bundle(tag: &str, bundle: qvit_device::bundle::Bundle, inputs: &[Tensor], tol: f32) {
    let runner = runner();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bpath = dir.join("m.qvit");
    bundle.write_file(&bpath).unwrap();
    let mut x86 = Model::from_bundle(bundle).unwrap();
    for (case, x) in inputs.iter().enumerate() {
        let want = x86.run(x).unwrap().remove(0);
        let (xin, yout) = (
            dir.join(format!("x{case}.npy")),
            dir.join(format!("y{case}.npy")),
        );
        qvit_device::npy::write(&xin, x).unwrap();
        for cpu in ["cortex-a53", "max,sve=off"] {
            let out = Command::new("qemu-aarch64")
                .args(["-L", "/usr/aarch64-linux-gnu", &runner, "run"])
                .arg(&bpath)
                .arg("--input")
                .arg(&xin)
                .arg("--output")
                .arg(&yout)
                .env("QEMU_CPU", cpu)
                .output()
                .expect("qemu-aarch64 runs");
            assert!(
                out.status.success(),
                "qvit-run under qemu {cpu}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got = qvit_device::npy::read(&yout).unwrap();
            assert_eq!(got.shape, want.shape);
            let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
            let err = got
                .data
                .iter()
                .zip(&want.data)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
            eprintln!(
                "{tag} case {case}, QEMU_CPU={cpu}: max rel diff {:.2e}",
                err / scale
            );
            assert!(
                err <= tol * scale,
                "{tag} {cpu}: aarch64 output differs by {err} (scale {scale})"
            );
            assert_eq!(
                argmax(&got.data),
                argmax(&want.data),
                "{tag} {cpu}: predicted class differs"
            );
        }
    }
}

#[test]
#[ignore = "needs QVIT_AARCH64_RUN, an aarch64 qvit-run; scripts/test.sh sets it"]
fn aarch64_qvit_run_matches_x86() {
    let bundle = default_float_bundle();
    let shape = bundle.header.input_shape.clone();
    let mut rng = SeededRng::new(3);
    let inputs: Vec<Tensor> = (0..2)
        .map(|_| Tensor::new(shape.clone(), rng.normals(shape.iter().product(), 1.0)).unwrap())
        .collect();
    check_bundle("f32", bundle, &inputs, 1e-5);
}

/// Quantized bundles on real test images: the integer path is bit-exact across tiers, and the
/// f32 ops between quantized layers differ by rounding only, so logits agree within 1e-4.
#[test]
#[ignore = "needs QVIT_AARCH64_RUN, an aarch64 qvit-run; scripts/test.sh sets it"]
fn aarch64_quantized_bundles_match_x86() {
    runner();
    let fb = default_float_bundle();
    let pre = fb.header.preprocess.clone().unwrap();
    let dir = default_model().parent().unwrap().to_path_buf();
    let calib =
        qvit_host::data::load_inputs(&dir.join("calib512-images-idx3-ubyte"), &pre, 32).unwrap();
    let test =
        qvit_host::data::load_inputs(&dir.join("test1k-images-idx3-ubyte"), &pre, 3).unwrap();
    // The last one takes its activation and attention steps at run time (per token, per
    // channel of V), which every CPU must derive identically from the same rows.
    use qvit_host::quant::ActScale;
    for (bits, scale) in [
        (8u8, ActScale::Static),
        (4, ActScale::Static),
        (4, ActScale::Dynamic),
    ] {
        let opts = qvit_host::quant::QuantOptions {
            wbits: bits,
            abits: bits,
            act_scale: scale,
            attn_scale: scale,
            ..Default::default()
        };
        let q = qvit_host::quant::quantize(&fb.graph, &calib, &opts).unwrap();
        let bundle = qvit_device::bundle::Bundle {
            header: fb.header.clone(),
            graph: q.graph,
        };
        check_bundle(&format!("W{bits}A{bits} {scale}"), bundle, &test, 1e-4);
    }
}
