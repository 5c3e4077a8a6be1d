//! The `qvit-run` binary end to end, on small bundles built here, checked against the library
//! (decoder, executor, preprocessing) called directly.

mod cli_util;
mod common;

use cli_util::{Dir, fails, qvit_run, stdout, write_bundle};
use qvit_device::bench_report::BenchReport;
use qvit_device::bundle::Bundle;
use qvit_device::model::Model;
use qvit_device::{Tensor, npy, preprocess};
use serde_json::Value as Json;
use std::path::Path;

#[test]
fn info_reports_the_bundle() {
    let dir = Dir::new("info");
    let bundle = common::tiny_bundle();
    let model = write_bundle(&dir, "tiny.qvit", &bundle);
    let (_, stats) = Bundle::read_file_with_stats(&model).unwrap();

    let text = stdout(&qvit_run(&[&"info", &model]));
    for needle in [
        "tiny-mlp",
        "qvit bundle v1",
        "qvit 0.1.0",
        "[1, 4]",
        "labels:      3",
        "params:      67",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }

    let json: Json =
        serde_json::from_str(&stdout(&qvit_run(&[&"info", &model, &"--json"]))).unwrap();
    assert_eq!(json["model"], "tiny-mlp");
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["input_shape"], serde_json::json!([1, 4]));
    assert_eq!(json["labels"], 3);
    assert_eq!(json["params"], 67);
    assert_eq!(
        json["sizes"]["total"],
        std::fs::metadata(&model).unwrap().len()
    );
    assert_eq!(json["sizes"]["weights"], stats.weights);
    assert_eq!(
        json["kernel_tier"],
        qvit_kernels::KernelSet::detect().tier().to_string()
    );
    assert!(json["preprocess"].is_null());

    let image = write_bundle(&dir, "image.qvit", &common::image_bundle());
    let json: Json =
        serde_json::from_str(&stdout(&qvit_run(&[&"info", &image, &"--json"]))).unwrap();
    assert_eq!(json["preprocess"]["crop"], serde_json::json!([4, 4]));
    assert_eq!(json["preprocess"]["layout"], "NCHW");
}

#[test]
fn info_reports_the_resident_weight_bytes_per_width() {
    let dir = Dir::new("info-resident");
    let g = common::qlinear_chain(3, 40, &[(48, 8, 8), (24, 4, 8), (16, 8, 8)]);
    let model = write_bundle(&dir, "chain.qvit", &Bundle::new("chain", g));
    let want = Model::load(&model).unwrap().weight_memory();
    let json: Json =
        serde_json::from_str(&stdout(&qvit_run(&[&"info", &model, &"--json"]))).unwrap();
    let rows = json["resident_weights"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    for (row, m) in rows.iter().zip(&want) {
        assert_eq!(row["bits"], m.bits);
        assert_eq!(row["layers"], m.layers);
        assert_eq!(row["params"], m.params);
        assert_eq!(row["packed_bytes"], m.packed_bytes);
        assert_eq!(row["canonical_bytes"], 0);
        assert_eq!(row["resident_bytes"], m.packed_bytes + m.scale_bytes);
    }
    let total: u64 = want.iter().map(|m| m.resident_bytes()).sum();
    assert_eq!(json["resident_weight_bytes"], total);
    let text = stdout(&qvit_run(&[&"info", &model]));
    assert!(text.contains("int4") && text.contains("int8 "), "{text}");
    assert!(text.contains("in 2 layers"), "{text}");

    let float = write_bundle(&dir, "tiny.qvit", &common::tiny_bundle());
    let json: Json =
        serde_json::from_str(&stdout(&qvit_run(&[&"info", &float, &"--json"]))).unwrap();
    assert_eq!(json["resident_weights"], serde_json::json!([]));
    assert_eq!(json["resident_weight_bytes"], 0);
    let text = stdout(&qvit_run(&[&"info", &float]));
    assert!(text.contains("resident:    no quantized weights"), "{text}");
}

#[test]
fn verify_accepts_intact_and_rejects_damaged_bundles() {
    let dir = Dir::new("verify");
    let good = write_bundle(&dir, "good.qvit", &common::tiny_bundle());
    let text = stdout(&qvit_run(&[&"info", &good, &"--verify"]));
    assert!(text.contains("verify:      ok"), "{text}");

    let mut bytes = std::fs::read(&good).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let bad = dir.path("bad.qvit");
    std::fs::write(&bad, &bytes).unwrap();
    let err = fails(&qvit_run(&[&"info", &bad, &"--verify"]));
    assert!(err.starts_with("error: bundle checksum mismatch"), "{err}");

    std::fs::write(&bad, &bytes[..100]).unwrap();
    assert!(fails(&qvit_run(&[&"info", &bad, &"--verify"])).starts_with("error: truncated bundle"));
    std::fs::write(
        &bad,
        b"not a bundle at all, just some text that is long enough",
    )
    .unwrap();
    assert!(fails(&qvit_run(&[&"info", &bad])).starts_with("error: not a qvit bundle"));
    let err = fails(&qvit_run(&[&"info", &dir.path("missing.qvit")]));
    assert!(
        err.starts_with("error: reading ") && err.contains("missing.qvit"),
        "{err}"
    );
    // The cause is quoted once, not repeated as its own line.
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn bad_flags_are_usage_errors() {
    let o = qvit_run(&[&"bench", &"x.qvit", &"--iters", &"zero"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(qvit_run(&[&"frobnicate"]).status.code(), Some(2));
    assert_eq!(qvit_run(&[&"classify", &"x.qvit"]).status.code(), Some(2));
    let help = stdout(&qvit_run(&[&"--help"]));
    assert!(
        help.contains("EXAMPLES:") && help.contains("qvit-run classify"),
        "{help}"
    );
    let help = stdout(&qvit_run(&[&"bench", &"--help"]));
    assert!(
        help.contains("--warmup") && help.contains("bench-results/"),
        "{help}"
    );
}

/// The library's result for the same input, or `None` while the executor cannot run it.
fn direct_run(bundle: Bundle, input: &Tensor) -> Option<Vec<Tensor>> {
    Model::from_bundle(bundle)
        .and_then(|mut m| m.run(input))
        .ok()
}

#[test]
fn run_writes_the_executor_outputs() {
    let dir = Dir::new("run");
    let bundle = common::tiny_bundle();
    let model = write_bundle(&dir, "tiny.qvit", &bundle);
    let input = Tensor::new(vec![1, 4], vec![0.5, -1.0, 2.0, 0.25]).unwrap();
    let (x, y) = (dir.path("x.npy"), dir.path("y.npy"));
    npy::write(&x, &input).unwrap();

    let o = qvit_run(&[&"run", &model, &"--input", &x, &"--output", &y]);
    let expected = direct_run(bundle, &input).expect("the executor runs the tiny MLP");
    stdout(&o);
    assert_eq!(npy::read(&y).unwrap(), expected[0]);

    // Wrong input shape and too many outputs are reported, not panicked on.
    npy::write(&x, &Tensor::zeros(vec![1, 5]).unwrap()).unwrap();
    assert!(
        fails(&qvit_run(&[
            &"run",
            &model,
            &"--input",
            &x,
            &"--output",
            &y
        ]))
        .contains("shape")
    );
    npy::write(&x, &input).unwrap();
    let err = fails(&qvit_run(&[
        &"run",
        &model,
        &"--input",
        &x,
        &"--output",
        &y,
        &"--output",
        &dir.path("z.npy"),
    ]));
    assert!(err.contains("outputs"), "{err}");
    assert!(
        fails(&qvit_run(&[
            &"run",
            &model,
            &"--input",
            &model,
            &"--output",
            &y
        ]))
        .starts_with("error: npy")
    );
}

/// Reference MLP in plain Rust: the CLI's output must match it closely.
#[test]
fn run_matches_a_hand_computed_mlp() {
    let bundle = common::tiny_bundle();
    let g = &bundle.graph;
    let x = [0.5f32, -1.0, 2.0, 0.25];
    let (w1, b1, w2, b2) = (
        g.const_data(1).unwrap(),
        g.const_data(2).unwrap(),
        g.const_data(5).unwrap(),
        g.const_data(6).unwrap(),
    );
    let h: Vec<f32> = (0..8)
        .map(|j| (b1[j] + (0..4).map(|k| w1[j * 4 + k] * x[k]).sum::<f32>()).max(0.0))
        .collect();
    let y: Vec<f32> = (0..3)
        .map(|i| b2[i] + (0..8).map(|j| w2[i * 8 + j] * h[j]).sum::<f32>())
        .collect();
    let got =
        direct_run(bundle, &Tensor::new(vec![1, 4], x.to_vec()).unwrap()).expect("executor runs");
    assert_eq!(got[0].shape, [1, 3]);
    for (a, b) in got[0].data.iter().zip(&y) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

fn write_png(path: &Path) -> image::DynamicImage {
    let img = image::RgbImage::from_fn(6, 5, |x, y| {
        image::Rgb([(40 * x) as u8, (50 * y) as u8, 128])
    });
    img.save(path).unwrap();
    image::DynamicImage::ImageRgb8(img)
}

#[test]
fn classify_matches_the_library() {
    let dir = Dir::new("classify");
    let bundle = common::image_bundle();
    let model = write_bundle(&dir, "image.qvit", &bundle);
    let png = dir.path("a.png");
    let img = write_png(&png);

    let o = qvit_run(&[&"classify", &model, &png, &"--top", &"2", &"--json"]);
    let input = bundle
        .header
        .preprocess
        .as_ref()
        .unwrap()
        .apply(&img)
        .unwrap();
    let expected = Model::from_bundle(bundle.clone())
        .and_then(|mut m| m.classify(&input))
        .expect("executor runs");
    let json: Json = serde_json::from_str(&stdout(&o)).unwrap();
    let top = json[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 2);
    for (entry, &(index, p)) in top.iter().zip(&expected) {
        assert_eq!(entry["index"], index);
        assert_eq!(entry["label"], bundle.header.labels[index]);
        assert!((entry["probability"].as_f64().unwrap() - f64::from(p)).abs() < 1e-6);
    }
    // Probabilities of all classes sum to one and are sorted.
    assert!((expected.iter().map(|e| e.1).sum::<f32>() - 1.0).abs() < 1e-5);
    assert!(expected.windows(2).all(|w| w[0].1 >= w[1].1));

    let text = stdout(&qvit_run(&[&"classify", &model, &png]));
    assert_eq!(text.lines().count(), 1 + 3, "{text}");
    assert!(text.contains(&bundle.header.labels[expected[0].0]));

    // JPEG too: the CLI agrees with the library on the decoded image.
    let jpg = dir.path("c.jpg");
    image::RgbImage::from_pixel(9, 7, image::Rgb([200, 120, 40]))
        .save(&jpg)
        .unwrap();
    let decoded = preprocess::load_image(&jpg).unwrap();
    let px = decoded.to_rgb8().get_pixel(4, 3).0;
    assert!(
        px.iter()
            .zip([200, 120, 40])
            .all(|(&a, b)| (i32::from(a) - b).abs() <= 3),
        "{px:?}"
    );
    let input = bundle
        .header
        .preprocess
        .as_ref()
        .unwrap()
        .apply(&decoded)
        .unwrap();
    let want = Model::from_bundle(bundle.clone())
        .and_then(|mut m| m.classify(&input))
        .unwrap();
    let json: Json = serde_json::from_str(&stdout(&qvit_run(&[
        &"classify",
        &model,
        &jpg,
        &"--json",
        &"--top",
        &"1",
    ])))
    .unwrap();
    assert_eq!(json[0]["top"][0]["index"], want[0].0);

    // Loading the PNG back gives the pixels we wrote.
    assert_eq!(
        preprocess::load_image(&png).unwrap().to_rgb8(),
        img.to_rgb8()
    );
    let not_image = dir.path("b.png");
    std::fs::write(&not_image, b"definitely not a png").unwrap();
    assert!(fails(&qvit_run(&[&"classify", &model, &not_image])).starts_with("error: image"));
    let tiny = write_bundle(&dir, "tiny.qvit", &common::tiny_bundle());
    assert!(fails(&qvit_run(&[&"classify", &tiny, &png])).contains("no image preprocessing"));
}

#[test]
fn bench_reports_latency_and_machine() {
    let dir = Dir::new("bench");
    let model = write_bundle(&dir, "tiny.qvit", &common::tiny_bundle());
    let o = qvit_run(&[
        &"bench",
        &model,
        &"--iters",
        &"7",
        &"--warmup",
        &"2",
        &"--threads",
        &"2",
        &"--json",
    ]);
    let r: BenchReport = serde_json::from_str(&stdout(&o)).unwrap();
    let lat = r.latency_ms;
    assert!(
        0.0 < lat.min && lat.min <= lat.p50 && lat.p50 <= lat.p90 && lat.p90 <= lat.max,
        "{lat:?}"
    );
    assert!(lat.min <= lat.mean && lat.mean <= lat.max, "{lat:?}");
    assert_eq!((r.iters, r.warmup), (7, 2));
    assert_eq!(r.model, "tiny-mlp");
    assert!(r.threads >= 1);
    assert!(r.peak_rss_bytes.unwrap() > 0);
    assert_eq!(r.commit, qvit_device::sysinfo::GIT_COMMIT);
    assert_eq!(r.cpu, qvit_device::sysinfo::cpu_model());
    assert_eq!(r.profile, None, "no profile without --profile");
    let ts = &r.timestamp;
    assert!(
        ts.len() == 20 && ts.ends_with('Z') && ts.starts_with("20"),
        "{ts}"
    );
    let text = stdout(&qvit_run(&[&"bench", &model, &"--iters", &"3"]));
    assert!(text.contains("p50") && text.contains("peak RSS"), "{text}");
}

/// `bench --profile`: one step per executed node, each called once per timed run; per-kind
/// totals are the sums of their steps; and the steps account for the measured runs (they sit
/// inside them, and nothing but input checks and output copies is left outside: ≥ 95 %).
#[test]
fn bench_profile_accounts_for_the_measured_runs() {
    let dir = Dir::new("profile");
    let graph = common::mlp(512, 1024, 256);
    let bundle = Bundle::new("profile-mlp", graph);
    let model = write_bundle(&dir, "mlp.qvit", &bundle);
    let iters = 20;
    let o = qvit_run(&[
        &"bench",
        &model,
        &"--iters",
        &iters.to_string(),
        &"--warmup",
        &"2",
        &"--profile",
        &"--json",
    ]);
    let r: BenchReport = serde_json::from_str(&stdout(&o)).unwrap();
    let steps = r.profile.unwrap();
    let names: Vec<_> = steps.iter().map(|s| s.node.as_str()).collect();
    assert_eq!(names, ["/fc1/Gemm", "/relu/Relu", "/fc2/Gemm"]);
    let ops: Vec<_> = steps.iter().map(|s| s.op.as_str()).collect();
    assert_eq!(ops, ["Linear", "Relu", "Linear"]);
    let measured = r.measured_ms.unwrap();
    let mut sum = 0.0;
    for s in &steps {
        assert_eq!(s.calls, iters, "{s:?}");
        assert!(
            s.ms >= 0.0 && (s.percent - 100.0 * s.ms / measured).abs() < 1e-9,
            "{s:?}"
        );
        sum += s.ms;
    }
    assert!((sum - r.profile_ms.unwrap()).abs() < 1e-9);
    assert!(
        sum <= measured && sum >= 0.95 * measured,
        "steps {sum} ms of {measured} ms measured"
    );
    let by_op = r.profile_by_op.unwrap();
    let linear = by_op.iter().find(|o| o.op == "Linear").unwrap();
    assert_eq!(linear.calls, 2 * iters);
    let linear_ms: f64 = steps
        .iter()
        .filter(|s| s.op == "Linear")
        .map(|s| s.ms)
        .sum();
    assert!((linear.ms - linear_ms).abs() < 1e-9);
    let text = stdout(&qvit_run(&[
        &"bench",
        &model,
        &"--iters",
        &"3",
        &"--profile",
    ]));
    assert!(
        text.contains("/fc2/Gemm") && text.contains("Relu"),
        "{text}"
    );
}
