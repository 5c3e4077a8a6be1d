//! `qvit-run` against careless and hostile use: outputs onto inputs, NaN inputs, odd `.npy`
//! dtypes, damaged and huge images, bundles recording sizes no board can afford, and a write
//! that fails midway. Each case checks the exit status, that nothing panicked, what the message
//! says, and that the inputs are unchanged.

mod cli_util;
mod common;

use cli_util::{Dir, fails, qvit_run, run_model, stdout, write_bundle};
use common::{assemble, sections};
use qvit_device::{Tensor, npy};
use std::path::Path;
use std::process::Command;

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// A failed run: exit status 1, `error:` first, no panic; returns the message.
fn error(o: &std::process::Output) -> String {
    let err = fails(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[test]
fn an_output_onto_an_input_is_refused_before_any_work() {
    let dir = Dir::new("same-path");
    let model = write_bundle(&dir, "b.qvit", &common::tiny_bundle());
    let x = dir.path("x.npy");
    npy::write(
        &x,
        &Tensor::new(vec![1, 4], vec![0.5, -1.0, 2.0, 0.25]).unwrap(),
    )
    .unwrap();
    let (model_bytes, x_bytes) = (bytes(&model), bytes(&x));
    std::fs::create_dir(dir.path("sub")).unwrap();
    std::os::unix::fs::symlink(&model, dir.path("link.qvit")).unwrap();
    std::fs::hard_link(&x, dir.path("hard.npy")).unwrap();
    for (out, input) in [
        (model.clone(), &model),
        (x.clone(), &x),
        (dir.path("sub/../b.qvit"), &model),
        (dir.path("link.qvit"), &model),
        (dir.path("hard.npy"), &x),
    ] {
        let err = error(&run_model(&model, &x, &[&out], &[]));
        assert!(
            err.contains(&format!("refusing to write {}", out.display()))
                && err.contains(&input.display().to_string())
                && err.contains("choose another output path"),
            "{err}"
        );
        assert_eq!(bytes(&model), model_bytes);
        assert_eq!(bytes(&x), x_bytes);
    }
    // Two outputs into one file.
    let y = dir.path("y.npy");
    let err = error(&run_model(&model, &x, &[&y, &y], &[]));
    assert!(err.contains("same file"), "{err}");
    assert!(!y.exists());
}

/// Runs the tiny MLP on `input`; its file is unchanged afterwards.
fn run_on(dir: &Dir, input: &Tensor, extra: &[&str]) -> std::process::Output {
    let model = write_bundle(dir, "tiny.qvit", &common::tiny_bundle());
    let (x, y) = (dir.path("x.npy"), dir.path("y.npy"));
    npy::write(&x, input).unwrap();
    let before = bytes(&x);
    let out = run_model(&model, &x, &[&y], extra);
    assert_eq!(bytes(&x), before);
    out
}

#[test]
fn non_finite_inputs_are_refused_unless_allowed() {
    let dir = Dir::new("nan");
    for (bad, shown) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let input = Tensor::new(vec![1, 4], vec![0.5, bad, 2.0, bad]).unwrap();
        let out = run_on(&dir, &input, &[]);
        let err = error(&out);
        assert!(
            err.contains("x.npy")
                && err.contains(&format!(
                    "2 of its 4 values are not finite (the first, {shown}, at flat index 1)"
                ))
                && err.contains("--allow-non-finite"),
            "{err}"
        );
        assert!(!dir.path("y.npy").exists());
        // Allowed, it runs: the outputs are the executor's for that input (often finite and
        // plausible-looking, as here after a ReLU: why the default is to refuse).
        let out = run_on(&dir, &input, &["--allow-non-finite"]);
        stdout(&out);
        let y = npy::read(dir.path("y.npy")).unwrap();
        let want = qvit_device::model::Model::from_bundle(common::tiny_bundle())
            .and_then(|mut m| m.run(&input))
            .unwrap();
        let bits = |t: &Tensor| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!((&y.shape, bits(&y)), (&want[0].shape, bits(&want[0])));
        std::fs::remove_file(dir.path("y.npy")).unwrap();
    }
}

/// numpy's own headers for dtypes the reader does not take.
#[test]
fn unsupported_npy_dtypes_say_what_they_are() {
    let dir = Dir::new("dtypes");
    let model = write_bundle(&dir, "tiny.qvit", &common::tiny_bundle());
    for (descr, data, want) in [
        ("|b1", vec![1u8; 4], "boolean arrays are not supported"),
        ("|O", vec![0u8; 32], "object arrays"),
        ("<c8", vec![0u8; 32], "complex arrays"),
        ("<U3", vec![0u8; 48], "string arrays"),
        (">f4", vec![0u8; 16], "big-endian"),
    ] {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1, 4), }}");
        let mut file = b"\x93NUMPY\x01\x00".to_vec();
        file.extend((dict.len() as u16).to_le_bytes());
        file.extend(dict.as_bytes());
        file.extend(data);
        let x = dir.path("x.npy");
        std::fs::write(&x, &file).unwrap();
        let err = error(&run_model(&model, &x, &[&dir.path("y.npy")], &[]));
        assert!(
            err.contains(want) && err.contains("x.npy"),
            "{descr}: {err}"
        );
        assert!(
            !err.contains("only little-endian") || descr.starts_with('>'),
            "{err}"
        );
        assert_eq!(bytes(&x), file);
    }
}

/// A write that fails midway (here the file-size limit, as a full disk would) leaves the
/// previous output whole and no partial file beside it.
#[test]
fn a_failed_output_write_keeps_the_previous_file() {
    let dir = Dir::new("efbig");
    // 700 classes: the output .npy (2.9 KB) is over a 1 KiB file-size limit.
    let graph = common::mlp(4, 8, 700);
    let model = write_bundle(
        &dir,
        "wide.qvit",
        &qvit_device::bundle::Bundle::new("wide", graph),
    );
    let (x, y) = (dir.path("x.npy"), dir.path("y.npy"));
    npy::write(
        &x,
        &Tensor::new(vec![1, 4], vec![1.0, 2.0, 3.0, 4.0]).unwrap(),
    )
    .unwrap();
    stdout(&run_model(&model, &x, &[&y], &[]));
    let good = bytes(&y);
    npy::write(
        &x,
        &Tensor::new(vec![1, 4], vec![-1.0, 0.0, 5.0, 9.0]).unwrap(),
    )
    .unwrap();
    let exe = env!("CARGO_BIN_EXE_qvit-run");
    let runner = std::env::var("QVIT_TEST_RUNNER").unwrap_or_default();
    // SIGXFSZ ignored, so the write fails with EFBIG instead of killing the process.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 1; exec {runner} \"$0\" run \"$1\" --input \"$2\" --output \"$3\""
        ))
        .arg(exe)
        .arg(&model)
        .arg(&x)
        .arg(&y)
        .output()
        .unwrap();
    let err = error(&out);
    assert!(err.contains("writing") && err.contains("y.npy"), "{err}");
    assert_eq!(bytes(&y), good);
    let mut names: Vec<String> = std::fs::read_dir(dir.0.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["wide.qvit", "x.npy", "y.npy"]);
}

/// A bundle recording a resize no board can afford (`--resize 100000`, 30 GB a picture) is
/// refused when loaded: by `info --verify` and by `classify`, with the value and the limit.
#[test]
fn a_bundle_with_an_unaffordable_resize_fails_verification() {
    let dir = Dir::new("resize");
    let (mut header, graph, blob) = sections(&common::image_bundle().encode().unwrap());
    header.preprocess.as_mut().unwrap().resize = Some(100_000);
    let model = dir.path("huge.qvit");
    std::fs::write(&model, assemble(&header, &graph, &blob)).unwrap();
    let png = dir.path("a.png");
    image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]))
        .save(&png)
        .unwrap();
    for args in [
        vec![&"info" as &dyn AsRef<std::ffi::OsStr>, &model, &"--verify"],
        vec![&"classify", &model, &png],
    ] {
        let err = error(&qvit_run(&args));
        assert!(
            err.contains("preprocess: resize 100000 is larger than 4096 pixels"),
            "{err}"
        );
    }
}

#[test]
fn damaged_and_oversized_images_are_errors() {
    let dir = Dir::new("images");
    let model = write_bundle(&dir, "image.qvit", &common::image_bundle());
    let jpg = dir.path("cut.jpg");
    use rand_xoshiro::rand_core::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    let noisy = image::RgbImage::from_fn(96, 64, |x, _| {
        image::Rgb([rng.next_u32() as u8, x as u8, 40])
    });
    noisy.save(&jpg).unwrap();
    stdout(&qvit_run(&[&"classify", &model, &jpg]));
    let whole = bytes(&jpg);
    std::fs::write(&jpg, &whole[..whole.len() * 2 / 3]).unwrap();
    let err = error(&qvit_run(&[&"classify", &model, &jpg]));
    assert!(
        err.contains("cut.jpg") && err.contains("truncated JPEG"),
        "{err}"
    );

    // 20000 x 20000 grey pixels (400 MB decoded; a Pi 3 has 1 GB), a real file.
    let big = dir.path("big.png");
    let file = std::fs::File::create(&big).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 20_000, 20_000);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut w = enc.write_header().unwrap().into_stream_writer().unwrap();
    let row = vec![128u8; 20_000];
    for _ in 0..20_000 {
        std::io::Write::write_all(&mut w, &row).unwrap();
    }
    w.finish().unwrap();
    let start = std::time::Instant::now();
    let err = error(&qvit_run(&[&"classify", &model, &big]));
    assert!(
        err.contains("big.png")
            && err.contains("20000x20000")
            && err.contains("scale the image down"),
        "{err}"
    );
    eprintln!("refused in {:?}", start.elapsed());
}
