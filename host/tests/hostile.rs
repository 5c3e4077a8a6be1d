//! `qvit` used as a careless or hostile user would (issue 18): wrong files given as models,
//! damaged bundles, ONNX models and images, misleading data folders, out-of-range flags,
//! outputs aimed at inputs and deploy mistakes. Every case checks the exit status, that nothing
//! panicked or died of a signal, what the message says, and that the inputs are unchanged
//! (see `hostile_util::check`). The bad data is made here from the committed default model;
//! data sources, flags, output paths and deploy are in `hostile_io.rs`.

mod hostile_util;

use hostile_util::{Dir, case, check, fixture, flipped};

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
    let inspect = |file: &str, says: &str| case(&["inspect", &d.arg(file)], &[says]);
    let cases = [
        case(
            &["inspect", &d.arg("bundle.onnx")],
            &["is a qvit bundle, not an ONNX model", "qvit-run info"],
        ),
        inspect("empty.onnx", "empty.onnx is an empty file"),
        inspect("folder.onnx", "folder.onnx is a directory"),
        inspect("picture.onnx", "is a PNG image, not a model"),
        inspect("x.npy", "x.npy is a NumPy .npy array"),
        inspect("model.pt", "export the model to ONNX first"),
        inspect("notes.onnx", "notes.onnx is a text file"),
        inspect("missing.onnx", "missing.onnx does not exist"),
        case(
            &[
                "eval",
                &d.arg("folder.onnx"),
                "--data",
                &f.arg("calib-images-idx3-ubyte"),
            ],
            &["is a directory"],
        ),
        case(
            &[
                "eval",
                &f.arg("calib-images-idx3-ubyte"),
                "--data",
                &f.arg("calib-images-idx3-ubyte"),
            ],
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
            &["flipped.qvit"],
        ),
        case(
            &["eval", &d.arg("cut.qvit"), "--data", &data],
            &["cut.qvit"],
        ),
        case(
            &["eval", &d.arg("head.qvit"), "--data", &data],
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
            &["applies to ONNX models only"],
        ),
        // A bundle cannot be preprocessed against its recorded shape with a wrong crop.
        case(
            &["eval", &f.arg("f.qvit"), "--data", &data, "--crop", "20"],
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
    let inspect = |file: &str, says: &str| case(&["inspect", &d.arg(file)], &[says]);
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
        case(&args, &["--input-shape", says])
    })
    .collect();
    cases.extend([
        case(
            &["inspect", &m, "--input-shape", "1,3,28,28"],
            &[
                "dimension 1 is 3 but the model fixes it to 1",
                "give the shape the model takes",
            ],
        ),
        case(
            &["inspect", &m, "--input-shape", "1,1,28"],
            &["has rank 3 but the model's input has rank 4"],
        ),
        inspect("cut.onnx", "cut.onnx"),
        inspect("noise.onnx", "noise.onnx"),
        // Preprocessing must be stated for an ONNX model.
        case(
            &["eval", &m, "--data", &data],
            &["records no preprocessing", "--preset none", "m.onnx"],
        ),
        case(
            &["eval", &m, "--data", &data, "--mean", "0.5"],
            &["--mean and --std go together"],
        ),
        case(
            &["quantize", &m, "--float", "-o", &d.arg("o.qvit")],
            &["records no preprocessing"],
        ),
        case(
            &["eval", &m, "--data", &data, "--preset", "imagenet"],
            &["the model takes 1 channels", "--grayscale"],
        ),
        case(
            &[
                "eval", &m, "--data", &data, "--preset", "unit", "--std", "0",
            ],
            &["--std values must be positive"],
        ),
        case(
            &[
                "eval", &m, "--data", &data, "--preset", "unit", "--mean", "nan",
            ],
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
            &["--resize"],
        ),
        case(
            &[
                "eval", &m, "--data", &data, "--preset", "unit", "--crop", "5",
            ],
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
        |img: &str, says: &str| case(&["explain", &b, &d.arg(img), "-o", &out], &[img, says]);
    let cases = [
        explain("cut.png", "decoding"),
        explain("huge.png", "20000"),
        explain("text.png", "decoding"),
        explain("empty.png", "decoding"),
        explain("cut.jpg", "decoding"),
        explain("x.npy", "decoding"),
        explain("missing.png", "decoding"),
        case(&["eval", &b, "--data", &d.arg("data")], &["zcut.jpg"]),
    ];
    assert_eq!(check(&cases, &[f.dir.0.clone(), d.0.clone()]), 8);
}
