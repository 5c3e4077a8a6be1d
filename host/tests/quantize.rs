//! Post-training quantization end to end: the exact rewrites keep the f32 function, quantized
//! bundles stay close to f32 on real data, fit the size bound, and the CLI writes its reports.

use qvit_device::bundle::Bundle;
use qvit_device::exec::Executor;
use qvit_device::model::Model;
use qvit_device::{Graph, Op, Tensor};
use qvit_host::compare::cosine;
use qvit_host::data::Dataset;
use qvit_host::fixtures::{SeededRng, load_weightless};
use qvit_host::import::{import_path, import_proto};
use qvit_host::prep::{PrepOptions, Preset};
use qvit_host::quant::{QuantOptions, prepare, quantize};
use qvit_kernels::KernelSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn fashion() -> PathBuf {
    repo().join("models/fashion-vit")
}

fn run(g: &Graph, x: &Tensor) -> Vec<f32> {
    let mut ex = Executor::new(g.clone(), KernelSet::detect()).unwrap();
    ex.run(&[x]).unwrap().remove(0).data
}

fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn default_bundle() -> Bundle {
    let prep = PrepOptions {
        preset: Some(Preset::FashionMnist),
        ..Default::default()
    };
    qvit_host::source::float_bundle(&fashion().join("fashion_vit.onnx"), None, &prep, None).unwrap()
}

fn images(path: &Path, bundle: &Bundle, range: std::ops::Range<usize>) -> Vec<(Tensor, usize)> {
    let ds = Dataset::open(path).unwrap();
    let pre = bundle.header.preprocess.clone().unwrap();
    range
        .map(|i| {
            let s = ds.sample(i, &pre).unwrap();
            (s.input, s.label.unwrap())
        })
        .collect()
}

/// Patchify and the post-LayerNorm reparameterisation are exact in real arithmetic: the
/// prepared f32 graph gives the original output up to float rounding, on three architectures.
#[test]
fn rewrites_keep_the_f32_function() {
    let mut rng = SeededRng::new(7);
    let opts = QuantOptions::default();
    let deit = import_proto(
        &load_weightless(&repo().join("models/fixtures/deit_tiny_op17.onnx"), 17).unwrap(),
        None,
    )
    .unwrap();
    let swin = import_path(&repo().join("models/fixtures/swin_tiny_op17.onnx"), None).unwrap();
    let fv = default_bundle();
    for (name, g, shape) in [
        ("deit_tiny", deit.graph, deit.input_shape),
        ("swin_tiny", swin.graph, swin.input_shape),
        ("fashion_vit", fv.graph, fv.header.input_shape),
    ] {
        let n: usize = shape.iter().product();
        let calib: Vec<Tensor> = (0..3)
            .map(|_| Tensor::new(shape.clone(), rng.normals(n, 1.0)).unwrap())
            .collect();
        let p = prepare(&g, &calib, &opts).unwrap();
        p.graph.validate().unwrap();
        assert!(
            !p.reparams.is_empty(),
            "{name}: no LayerNorm was reparameterised"
        );
        let x = Tensor::new(shape.clone(), rng.normals(n, 1.0)).unwrap();
        let (want, got) = (run(&g, &x), run(&p.graph, &x));
        let e = rel_err(&got, &want);
        eprintln!(
            "{name}: {} patch convs rewritten, {} LayerNorms reparameterised ({} channels clipped), rel err {e:.2e}",
            p.patch_linears.len(),
            p.reparams.len(),
            p.reparams.iter().map(|r| r.clipped).sum::<usize>()
        );
        assert!(e < 1e-4, "{name}: rewritten graph differs by {e}");
        assert!(cosine(&got, &want) > 0.99999);
    }
}

/// On real Fashion-MNIST test images the quantized default model agrees with f32 (W8A8 nearly
/// always; W4A4 mostly), its accuracy is close, and every bundle fits the size bound.
#[test]
fn quantized_default_model_tracks_f32_and_fits_the_size_bound() {
    let fb = default_bundle();
    let calib: Vec<Tensor> = images(&fashion().join("calib512-images-idx3-ubyte"), &fb, 0..64)
        .into_iter()
        .map(|(x, _)| x)
        .collect();
    let test = images(&fashion().join("test1k-images-idx3-ubyte"), &fb, 0..400);
    let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
    let f32_out: Vec<Vec<f32>> = test.iter().map(|(x, _)| run(&fb.graph, x)).collect();
    let f32_right = test
        .iter()
        .zip(&f32_out)
        .filter(|((_, l), o)| argmax(o) == *l)
        .count();
    for (bits, min_agree, max_drop) in [(8u8, 0.99, 0.01), (6, 0.98, 0.015), (4, 0.93, 0.03)] {
        let opts = QuantOptions {
            wbits: bits,
            abits: bits,
            ..Default::default()
        };
        let q = quantize(&fb.graph, &calib, &opts).unwrap();
        let n_q = q
            .graph
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::QLinear { .. } | Op::QMatMul { .. }))
            .count();
        assert_eq!(n_q, q.report.layers.len());
        assert!(
            q.report.float_layers.is_empty(),
            "{:?}",
            q.report.float_layers
        );
        // Through the file, as the board gets it.
        let bundle = Bundle {
            header: fb.header.clone(),
            graph: q.graph.clone(),
        };
        let (bytes, stats) = bundle.encode_with_stats().unwrap();
        let size = qvit_host::quant::report::size_report(&q.graph, bits, stats);
        assert!(
            size.within_bound,
            "W{bits}: {} bytes > bound {}",
            stats.total, size.bound_bytes
        );
        let mut m = Model::from_bundle(Bundle::decode(&bytes).unwrap()).unwrap();
        let (mut agree, mut right, mut cos) = (0, 0, 0.0);
        for ((x, l), fo) in test.iter().zip(&f32_out) {
            let o = m.run(x).unwrap().remove(0).data;
            agree += (argmax(&o) == argmax(fo)) as usize;
            right += (argmax(&o) == *l) as usize;
            cos += cosine(&o, fo);
        }
        let n = test.len() as f64;
        let (agree, drop) = (agree as f64 / n, (f32_right as f64 - right as f64) / n);
        eprintln!(
            "W{bits}A{bits}: {} bytes (bound {:.0}), agreement {:.3}, top-1 {:.3} vs f32 {:.3}, mean cosine {:.5}",
            stats.total,
            size.bound_bytes,
            agree,
            right as f64 / n,
            f32_right as f64 / n,
            cos / n
        );
        assert!(agree >= min_agree, "W{bits}: agreement {agree}");
        assert!(drop <= max_drop, "W{bits}: top-1 drop {drop}");
    }
}

#[test]
fn bad_options_are_errors_not_panics() {
    let fb = default_bundle();
    let x = images(&fashion().join("calib512-images-idx3-ubyte"), &fb, 0..1)
        .remove(0)
        .0;
    let bad = QuantOptions {
        wbits: 9,
        ..Default::default()
    };
    assert!(quantize(&fb.graph, std::slice::from_ref(&x), &bad).is_err());
    assert!(quantize(&fb.graph, &[], &QuantOptions::default()).is_err());
}
