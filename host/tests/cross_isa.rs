//! qvit-run built for aarch64 and run under qemu gives the x86 device runtime's output on the
//! same bundle and inputs, as a Cortex-A53 (NEON only) and as `max` (dotprod + i8mm).
//!
//! The aarch64 binary is named by QVIT_AARCH64_RUN (scripts/test.sh builds it and sets it);
//! without it this test reports itself skipped.

use qvit_device::Tensor;
use qvit_device::model::Model;
use qvit_host::fixtures::SplitMix;
use qvit_host::prep::{PrepArgs, Preset};
use std::path::{Path, PathBuf};
use std::process::Command;

fn default_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fashion-vit/fashion_vit.onnx")
}

#[test]
fn aarch64_qvit_run_matches_x86() {
    let Ok(runner) = std::env::var("QVIT_AARCH64_RUN") else {
        eprintln!(
            "SKIPPED: QVIT_AARCH64_RUN is not set (scripts/test.sh sets it after building qvit-run for aarch64)"
        );
        return;
    };
    let model = default_model();
    let prep = PrepArgs {
        preset: Some(Preset::FashionMnist),
        ..Default::default()
    };
    let bundle = qvit_host::source::float_bundle(&model, None, &prep, None).unwrap();
    let dir = std::env::temp_dir().join(format!("qvit-cross-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bpath = dir.join("m.qvit");
    bundle.write_file(&bpath).unwrap();
    let shape = bundle.header.input_shape.clone();
    let mut x86 = Model::from_bundle(bundle).unwrap();
    let mut rng = SplitMix(3);
    for case in 0..2 {
        let x = Tensor::new(shape.clone(), rng.normals(shape.iter().product(), 1.0)).unwrap();
        let want = x86.run(&x).unwrap().remove(0);
        let (xin, yout) = (
            dir.join(format!("x{case}.npy")),
            dir.join(format!("y{case}.npy")),
        );
        qvit_device::npy::write(&xin, &x).unwrap();
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
                "case {case}, QEMU_CPU={cpu}: max rel diff {:.2e}",
                err / scale
            );
            assert!(
                err <= 1e-5 * scale,
                "{cpu}: aarch64 output differs by {err} (scale {scale})"
            );
            assert_eq!(
                argmax(&got.data),
                argmax(&want.data),
                "{cpu}: predicted class differs"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
