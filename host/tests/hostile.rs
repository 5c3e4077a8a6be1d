//! `qvit` used as a careless or hostile user would (issue 18): wrong files given as models,
//! damaged bundles, ONNX models and images, misleading data folders, out-of-range flags,
//! outputs aimed at inputs and deploy mistakes. Every case checks the exit status, that nothing
//! panicked or died of a signal, what the message says, and that the inputs are unchanged
//! (see `hostile_util::check`). The bad data is made here from the committed default model.

mod hostile_util;

use hostile_util::{Dir, FASHION, case, check, fixture, repo};
use std::path::PathBuf;

/// A copy of `bytes` with `n` bytes from `at` flipped.
fn flipped(bytes: &[u8], at: usize, n: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for x in &mut b[at..at + n] {
        *x ^= 0xA5;
    }
    b
}

/// A PNG that declares `w`×`h` grey pixels but holds a few bytes of data.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit grey, deflate, no filter, no interlace
    let crc = crc32(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc.to_be_bytes());
    // One IDAT with an empty zlib stream, then IEND: a complete file, short of pixels only.
    for (kind, data) in [
        (
            &b"IDAT"[..],
            &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01][..],
        ),
        (b"IEND", &[]),
    ] {
        let mut chunk = kind.to_vec();
        chunk.extend(data);
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    png
}

/// CRC-32 (IEEE), bit by bit: only for the few bytes of a PNG chunk.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn wrong_files_as_the_model() {
    let f = fixture();
    let d = Dir::new("model-files");
    let bundle = std::fs::read(f.path("f.qvit")).unwrap();
    d.file("bundle.onnx", &bundle);
    d.file("empty.onnx", b"");
    d.file(
        "picture.onnx",
        &std::fs::read(f.path("sample.png")).unwrap(),
    );
    d.file(
        "x.npy",
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
    );
    d.file("model.pt", b"PK\x03\x04archive");
    d.file("notes.onnx", b"# not a model\n");
    std::fs::create_dir(d.path("folder.onnx")).unwrap();
    let m = f.arg("m.onnx");
    let cases = [
        case(
            &["inspect", &d.arg("bundle.onnx")],
            2,
            &["is a qvit bundle, not an ONNX model", "qvit-run info"],
        ),
        case(
            &["inspect", &d.arg("empty.onnx")],
            2,
            &["empty.onnx is an empty file"],
        ),
        case(
            &["inspect", &d.arg("folder.onnx")],
            2,
            &["folder.onnx is a directory"],
        ),
        case(
            &["inspect", &d.arg("picture.onnx")],
            2,
            &["is a PNG image, not a model"],
        ),
        case(
            &["inspect", &d.arg("x.npy")],
            2,
            &["x.npy is a NumPy .npy array"],
        ),
        case(
            &["inspect", &d.arg("model.pt")],
            2,
            &["export the model to ONNX first"],
        ),
        case(
            &["inspect", &d.arg("notes.onnx")],
            2,
            &["notes.onnx is a text file"],
        ),
        case(
            &["inspect", &d.arg("missing.onnx")],
            2,
            &["missing.onnx does not exist"],
        ),
        case(
            &[
                "eval",
                &d.arg("folder.onnx"),
                "--data",
                &f.arg("calib-images-idx3-ubyte"),
            ],
            2,
            &["is a directory"],
        ),
        case(
            &[
                "eval",
                &f.arg("calib-images-idx3-ubyte"),
                "--data",
                &f.arg("calib-images-idx3-ubyte"),
            ],
            2,
            &["IDX data file", "not a model"],
        ),
        // compare takes the bundle first; given the other way round it says so.
        case(
            &[
                "compare",
                &m,
                &f.arg("f.qvit"),
                "--data",
                &f.arg("calib-images-idx3-ubyte"),
            ],
            2,
            &["compare takes the quantized bundle first"],
        ),
        case(
            &[
                "quantize",
                &f.arg("f.qvit"),
                "--float",
                "--preset",
                "unit",
                "-o",
                &d.arg("o.qvit"),
            ],
            2,
            &["is a qvit bundle, not an ONNX model"],
        ),
    ];
    let n = check(&cases, &[f.dir.0.clone(), d.0.clone()]);
    assert_eq!(n, 12);
}

#[test]
fn damaged_bundles() {
    let f = fixture();
    let d = Dir::new("bundles");
    let good = std::fs::read(f.path("f.qvit")).unwrap();
    let mid = good.len() / 2;
    d.file("flipped.qvit", &flipped(&good, mid, 4));
    d.file("cut.qvit", &good[..mid]);
    d.file("head.qvit", &good[..12]);
    let data = f.arg("calib-images-idx3-ubyte");
    let cases = [
        case(
            &["eval", &d.arg("flipped.qvit"), "--data", &data],
            2,
            &["flipped.qvit"],
        ),
        case(
            &["eval", &d.arg("cut.qvit"), "--data", &data],
            2,
            &["cut.qvit"],
        ),
        case(
            &["eval", &d.arg("head.qvit"), "--data", &data],
            2,
            &["head.qvit"],
        ),
        case(
            &[
                "explain",
                &d.arg("flipped.qvit"),
                &f.arg("sample.png"),
                "-o",
                &d.arg("out"),
            ],
            2,
            &["flipped.qvit"],
        ),
        // --input-shape applies to ONNX models; a bundle records its own.
        case(
            &[
                "eval",
                &f.arg("f.qvit"),
                "--data",
                &data,
                "--input-shape",
                "1,1,32,32",
            ],
            2,
            &["applies to ONNX models only"],
        ),
        // A bundle cannot be preprocessed against its recorded shape with a wrong crop.
        case(
            &["eval", &f.arg("f.qvit"), "--data", &data, "--crop", "20"],
            2,
            &["crop 20x20 does not match the model's input 28x28"],
        ),
    ];
    assert_eq!(check(&cases, &[f.dir.0.clone(), d.0.clone()]), 6);
    assert!(
        !d.path("out").exists(),
        "explain made its folder before failing"
    );
}

#[test]
fn onnx_models_and_input_shapes() {
    let f = fixture();
    let d = Dir::new("onnx");
    let onnx = std::fs::read(f.path("m.onnx")).unwrap();
    d.file("cut.onnx", &onnx[..onnx.len() / 3]);
    d.file("noise.onnx", &flipped(&onnx[..4096], 0, 4096));
    let m = f.arg("m.onnx");
    let data = f.arg("calib-images-idx3-ubyte");
    let shape = |s: &'static str| {
        vec![
            "inspect".to_string(),
            m.clone(),
            "--input-shape".into(),
            s.into(),
        ]
    };
    let mut cases: Vec<_> = [
        ("1000000000,1,28,28", "more than the 16777216"),
        ("18446744073709551615,1,28,28", "more than the 16777216"),
        ("10000000,1,28,28", "more than the 16777216"),
        ("1,0,28,28", "dimension 1 is 0"),
        ("1,1,1,1,1,1,1,1,1", "has rank 9"),
        ("1,x,28,28", "bad dimension \"x\""),
        ("99999999999999999999999,1", "bad dimension"),
    ]
    .into_iter()
    .map(|(s, says)| {
        let args = shape(s);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        case(&args, 2, &["--input-shape", says])
    })
    .collect();
    cases.extend([
        case(
            &["inspect", &m, "--input-shape", "1,3,28,28"],
            2,
            &[
                "dimension 1 is 3 but the model fixes it to 1",
                "give the shape the model takes",
            ],
        ),
        case(
            &["inspect", &m, "--input-shape", "1,1,28"],
            2,
            &["has rank 3 but the model's input has rank 4"],
        ),
        case(&["inspect", &d.arg("cut.onnx")], 2, &["cut.onnx"]),
        case(&["inspect", &d.arg("noise.onnx")], 2, &["noise.onnx"]),
        // Preprocessing must be stated for an ONNX model.
        case(
            &["eval", &m, "--data", &data],
            2,
            &["records no preprocessing", "--preset none", "m.onnx"],
        ),
        case(
            &["eval", &m, "--data", &data, "--mean", "0.5"],
            2,
            &["--mean and --std go together"],
        ),
        case(
            &["quantize", &m, "--float", "-o", &d.arg("o.qvit")],
            2,
            &["records no preprocessing"],
        ),
        case(
            &["eval", &m, "--data", &data, "--preset", "imagenet"],
            2,
            &["the model takes 1 channels", "--grayscale"],
        ),
        case(
            &[
                "eval", &m, "--data", &data, "--preset", "unit", "--std", "0",
            ],
            2,
            &["--std values must be positive"],
        ),
        case(
            &[
                "eval", &m, "--data", &data, "--preset", "unit", "--mean", "nan",
            ],
            2,
            &["--mean values must be finite"],
        ),
        case(
            &[
                "quantize",
                &m,
                "--float",
                "--preset",
                "unit",
                "--resize",
                "100000",
                "-o",
                &d.arg("o.qvit"),
            ],
            2,
            &["--resize"],
        ),
        case(
            &[
                "eval", &m, "--data", &data, "--preset", "unit", "--crop", "5",
            ],
            2,
            &["crop 5x5 does not match", "--crop 28,28"],
        ),
    ]);
    assert_eq!(check(&cases, &[f.dir.0.clone(), d.0.clone()]), 19);
    assert!(!d.path("o.qvit").exists());
}

#[test]
fn images_damaged_huge_or_not_images() {
    let f = fixture();
    let d = Dir::new("images");
    let png = std::fs::read(f.path("sample.png")).unwrap();
    d.file("cut.png", &png[..png.len() / 2]);
    d.file("huge.png", &png_header_only(20000, 20000));
    d.file("text.png", b"hello");
    d.file("empty.png", b"");
    let jpeg = {
        let img = image::open(f.path("sample.png")).unwrap().to_luma8();
        let big = image::imageops::resize(&img, 96, 96, image::imageops::FilterType::Triangle);
        let mut b = std::io::Cursor::new(Vec::new());
        big.write_to(&mut b, image::ImageFormat::Jpeg).unwrap();
        b.into_inner()
    };
    d.file("cut.jpg", &jpeg[..jpeg.len() * 2 / 3]);
    d.file("x.npy", b"\x93NUMPY\x01\x00");
    // A data folder whose one class holds a cut JPEG.
    d.file("data/a/good.png", &png);
    d.file("data/a/zcut.jpg", &jpeg[..jpeg.len() / 2]);
    let b = f.arg("f.qvit");
    let out = d.arg("out");
    let explain =
        |img: &str, says: &str| case(&["explain", &b, &d.arg(img), "-o", &out], 2, &[img, says]);
    let cases = [
        explain("cut.png", "decoding"),
        explain("huge.png", "20000"),
        explain("text.png", "decoding"),
        explain("empty.png", "decoding"),
        explain("cut.jpg", "decoding"),
        explain("x.npy", "decoding"),
        explain("missing.png", "decoding"),
        case(&["eval", &b, "--data", &d.arg("data")], 2, &["zcut.jpg"]),
    ];
    assert_eq!(check(&cases, &[f.dir.0.clone(), d.0.clone()]), 8);
}

/// An IDX images file with `labels` as its labels, written as a pair in `d`.
fn idx_pair(d: &Dir, name: &str, labels: &[u8]) -> String {
    let images = std::fs::read(repo().join(FASHION).join("calib512-images-idx3-ubyte")).unwrap();
    let n = labels.len();
    let mut img = images[..16].to_vec();
    img[4..8].copy_from_slice(&(n as u32).to_be_bytes());
    img.extend(&images[16..16 + n * 784]);
    let mut lab = vec![0, 0, 8, 1];
    lab.extend((n as u32).to_be_bytes());
    lab.extend(labels);
    d.file(&format!("{name}-labels-idx1-ubyte"), &lab);
    d.file(&format!("{name}-images-idx3-ubyte"), &img)
        .display()
        .to_string()
}

#[test]
fn data_sources() {
    let f = fixture();
    let d = Dir::new("data");
    let b = f.arg("f.qvit");
    let high = idx_pair(&d, "high", &[3, 1, 12, 0]);
    let good = idx_pair(&d, "good", &[3, 1, 2, 0]);
    // More labels than images.
    let lab = d.path("good-labels-idx1-ubyte");
    let mut more = std::fs::read(&lab).unwrap();
    more[4..8].copy_from_slice(&5u32.to_be_bytes());
    more.push(1);
    d.file("more-labels-idx1-ubyte", &more);
    d.file("more-images-idx3-ubyte", &std::fs::read(&good).unwrap());
    let images = std::fs::read(&good).unwrap();
    d.file("cut-images-idx3-ubyte", &images[..images.len() - 100]);
    d.file("magic-images-idx3-ubyte", &flipped(&images, 0, 4));
    std::fs::create_dir(d.path("empty")).unwrap();
    let png = std::fs::read(f.path("sample.png")).unwrap();
    for c in 0..11 {
        d.file(&format!("classes/c{c:02}/x.png"), &png);
    }
    d.file("npyonly/x.npy", b"\x93NUMPY");
    let eval = |data: &str, says: &[&str]| case(&["eval", &b, "--data", data], 2, says);
    let cases = [
        eval(
            &high,
            &[
                "high-labels-idx1-ubyte",
                "label 12 of image #2",
                "10 classes",
            ],
        ),
        eval(&d.arg("more-images-idx3-ubyte"), &["5 labels for 4 images"]),
        eval(&d.arg("cut-images-idx3-ubyte"), &["cut-images-idx3-ubyte"]),
        eval(
            &d.arg("magic-images-idx3-ubyte"),
            &["magic-images-idx3-ubyte"],
        ),
        eval(&d.arg("empty"), &["empty"]),
        eval(&d.arg("classes"), &["11 class folders", "10 classes"]),
        eval(&d.arg("npyonly"), &["npyonly"]),
        eval(&d.arg("nowhere"), &["nowhere does not exist"]),
        case(
            &["compare", &b, &f.arg("m.onnx"), "--data", &high],
            2,
            &["label 12 of image #2"],
        ),
        case(
            &["eval", &b, "--data", &good, "--limit", "0"],
            2,
            &["the limit is zero"],
        ),
        case(
            &[
                "quantize",
                &f.arg("m.onnx"),
                "--preset",
                "fashion-mnist",
                "--calib",
                &good,
                "--calib-limit",
                "0",
                "-o",
                &d.arg("q.qvit"),
            ],
            2,
            &["--calib-limit", "the limit is zero"],
        ),
        case(
            &[
                "quantize",
                &f.arg("m.onnx"),
                "--preset",
                "fashion-mnist",
                "--calib",
                &d.arg("empty"),
                "--wbits",
                "8",
                "--abits",
                "8",
                "-o",
                &d.arg("q.qvit"),
            ],
            2,
            &["empty"],
        ),
    ];
    assert_eq!(check(&cases, &[f.dir.0.clone(), d.0.clone()]), 12);
}

#[test]
fn flags_out_of_range() {
    let f = fixture();
    let d = Dir::new("flags");
    let (m, b) = (f.arg("m.onnx"), f.arg("f.qvit"));
    let data = f.arg("calib-images-idx3-ubyte");
    let q = |extra: &[&str]| {
        let mut a = vec![
            "quantize",
            m.as_str(),
            "--preset",
            "fashion-mnist",
            "--calib",
            data.as_str(),
        ];
        a.extend(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let out = d.arg("q.qvit");
    let mut cases = vec![
        case(
            &["eval", &b, "--data", &data, "--threads", "100000"],
            2,
            &["--threads", "100000"],
        ),
        case(
            &["eval", &b, "--data", &data, "--threads", "0"],
            2,
            &["--threads"],
        ),
        case(
            &[
                "explain",
                &b,
                &f.arg("sample.png"),
                "-o",
                &d.arg("x"),
                "--scale",
                "2000",
            ],
            2,
            &["--scale 2000", "give --scale 146 or less"],
        ),
        case(
            &[
                "explain",
                &b,
                &f.arg("sample.png"),
                "-o",
                &d.arg("x"),
                "--scale",
                "100000",
            ],
            2,
            &["--scale"],
        ),
        case(
            &[
                "explain",
                &b,
                "--eval",
                "--data",
                &data,
                "-o",
                &d.arg("x"),
                "--steps",
                "0",
            ],
            2,
            &["--steps", "zero"],
        ),
        case(
            &[
                "explain",
                &b,
                "--eval",
                "--data",
                &data,
                "-o",
                &d.arg("x"),
                "--steps",
                "100000",
            ],
            2,
            &["100000 steps is more than 1000"],
        ),
        case(
            &[
                "explain",
                &b,
                &f.arg("sample.png"),
                "-o",
                &d.arg("x"),
                "--alpha",
                "2",
            ],
            2,
            &["--alpha 2 must lie in [0, 1]"],
        ),
        case(
            &["relevance", &b, "--data", &data, "--eps=-1"],
            2,
            &["--eps -1"],
        ),
        case(
            &["relevance", &b, "--data", &data, "--limit", "0"],
            2,
            &["the limit is zero"],
        ),
    ];
    for (extra, code, says) in [
        (
            &["--mixed", "--budget", "inf", "-o", &out][..],
            2,
            &["--budget", "inf is not a finite number"][..],
        ),
        (
            &["--mixed", "--budget", "nan", "-o", &out],
            2,
            &["--budget", "NaN is not a finite number"],
        ),
        (
            &["--mixed", "--budget", "4", "--abudget=-inf", "-o", &out],
            2,
            &["--abudget"],
        ),
        (
            &[
                "--wbits",
                "4",
                "--abits",
                "8",
                "--percentile",
                "2",
                "--clip",
                "percentile",
                "-o",
                &out,
            ],
            2,
            &["--percentile 2 must lie in [0.5, 1]"],
        ),
        (&["--wbits", "9", "-o", &out], 2, &["--wbits"]),
        (
            &[
                "--wbits",
                "4",
                "--abits",
                "8",
                "--lrp-images",
                "0",
                "-o",
                &out,
            ],
            2,
            &["--lrp-images", "zero"],
        ),
    ] {
        let a = q(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        cases.push(case(&a, code, says));
    }
    cases.push(case(
        &[
            "quantize",
            &m,
            "--preset",
            "fashion-mnist",
            "--wbits",
            "8",
            "--abits",
            "8",
            "-o",
            &out,
        ],
        2,
        &["quantizing needs calibration data: --calib"],
    ));
    assert_eq!(check(&cases, &[f.dir.0.clone(), d.0.clone()]), 16);
    assert!(!d.path("q.qvit").exists() && !d.path("x").exists());
}

#[test]
fn outputs_onto_inputs_are_refused_before_any_work() {
    let f = fixture();
    let d = Dir::new("outputs");
    let m = f.arg("m.onnx");
    let calib = f.arg("calib-images-idx3-ubyte");
    std::os::unix::fs::symlink(f.path("m.onnx"), d.path("link.onnx")).unwrap();
    std::fs::create_dir(d.path("sub")).unwrap();
    std::fs::create_dir(d.path("img")).unwrap();
    let png = std::fs::read(f.path("sample.png")).unwrap();
    d.file("img/a.png", &png);
    d.file("img/a.lrp.png", &png);
    d.file("file", b"x");
    d.file("m.report.md", &std::fs::read(f.path("labels.txt")).unwrap());
    let float = |out: &str| {
        case(
            &[
                "quantize",
                &m,
                "--float",
                "--preset",
                "fashion-mnist",
                "-o",
                out,
            ],
            2,
            &["refusing to write", "choose another output path"],
        )
    };
    let quant = |out: &str| {
        case(
            &[
                "quantize",
                &m,
                "--preset",
                "fashion-mnist",
                "--calib",
                &calib,
                "--wbits",
                "8",
                "--abits",
                "8",
                "-o",
                out,
            ],
            2,
            &["refusing to write"],
        )
    };
    let cases = [
        float(&m),
        float(&d.arg("link.onnx")),
        float(&format!("{}/../{}", d.arg("sub"), "link.onnx")),
        float(&f.arg("labels.txt")),
        quant(&calib),
        quant(&f.arg("calib-labels-idx1-ubyte")),
        // The reports beside the bundle (m.report.json, m.report.md) may not be inputs either.
        case(
            &[
                "quantize",
                &m,
                "--preset",
                "fashion-mnist",
                "--calib",
                &calib,
                "--wbits",
                "8",
                "--abits",
                "8",
                "--labels",
                &d.arg("m.report.md"),
                "-o",
                &d.arg("m.qvit"),
            ],
            2,
            &["m.report.md"],
        ),
        case(
            &[
                "quantize",
                &m,
                "--float",
                "--preset",
                "fashion-mnist",
                "-o",
                &d.arg("sub"),
            ],
            2,
            &["is a directory; give a file path"],
        ),
        case(
            &[
                "quantize",
                &m,
                "--float",
                "--preset",
                "fashion-mnist",
                "-o",
                &d.arg("nodir/o.qvit"),
            ],
            2,
            &["does not exist"],
        ),
        case(
            &[
                "relevance",
                &f.arg("f.qvit"),
                "--data",
                &d.arg("img"),
                "--plot",
                &d.arg("img/a.png"),
            ],
            2,
            &["refusing to write", "a.png"],
        ),
        case(
            &[
                "explain",
                &f.arg("f.qvit"),
                &d.arg("img/a.png"),
                &d.arg("img/a.lrp.png"),
                "-o",
                &d.arg("img"),
            ],
            2,
            &["refusing to write", "a.lrp.png"],
        ),
        case(
            &[
                "explain",
                &f.arg("f.qvit"),
                &f.arg("sample.png"),
                "-o",
                &d.arg("file"),
            ],
            2,
            &["is a file", "give a folder path"],
        ),
    ];
    assert_eq!(check(&cases, &[f.dir.0.clone(), d.0.clone()]), 12);
}

#[test]
fn deploy_mistakes_are_caught_before_connecting() {
    let f = fixture();
    let d = Dir::new("deploy");
    d.file("results.json", b"{}\n");
    let b = f.arg("f.qvit");
    // Port 9 on a reserved address: a connection attempt would fail slowly or not at all, and
    // every case must fail on its own check first.
    let host = "nobody@192.0.2.1";
    let dep = |extra: &[&str]| {
        let mut a = vec!["deploy", b.as_str(), host];
        a.extend(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let mut cases = Vec::new();
    for (extra, code, says) in [
        (
            &["--bench", "--results", &d.arg("results.json")][..],
            2,
            &["--results", "results.json is a file", "give a folder path"][..],
        ),
        (
            &["--bench", "--results", &d.arg("results.json/sub")],
            2,
            &["results.json is a file"],
        ),
        (&["--bench", "--threads", "0"], 2, &["--threads"]),
        (&["--bench", "--threads", "5000"], 2, &["--threads"]),
        (&["--jobs", "0"], 2, &["--jobs"]),
        (
            &["--ssh-config", &d.arg("nossh")],
            2,
            &["--ssh-config", "no such file"],
        ),
        (&["--runner", &f.arg("m.onnx")], 2, &["m.onnx"]),
    ] {
        let a = dep(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        cases.push(case(&a, code, says));
    }
    cases.push(case(
        &["deploy", &f.arg("m.onnx"), host],
        2,
        &["is not a valid bundle"],
    ));
    cases.push(case(
        &["deploy", &b, &format!("@{}", d.arg("nohosts"))],
        2,
        &["nohosts"],
    ));
    let inputs: Vec<PathBuf> = vec![f.dir.0.clone(), d.0.clone()];
    let start = std::time::Instant::now();
    assert_eq!(check(&cases, &inputs), 9);
    assert!(
        start.elapsed().as_secs() < 20,
        "a deploy case tried to connect"
    );
}
