//! `qvit` used as a careless or hostile user would (issue 18), second half: data sources
//! whose labels or contents are wrong, out-of-range flags, outputs aimed at inputs, and deploy
//! mistakes that must be caught before connecting. Checked as in `hostile.rs`.

mod hostile_util;

use hostile_util::{Dir, FASHION, case, check, fixture, flipped, repo, words};
use std::path::PathBuf;

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
    let eval = |data: &str, says: &[&str]| case(&["eval", &b, "--data", data], says);
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
            &["label 12 of image #2"],
        ),
        case(
            &["eval", &b, "--data", &good, "--limit", "0"],
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
    let (png, x, out) = (f.arg("sample.png"), d.arg("x"), d.arg("q.qvit"));
    let eval = format!("eval {b} --data {data}");
    let explain = format!("explain {b} {png} -o {x}");
    let faithful = format!("explain {b} --eval --data {data} -o {x}");
    let quant = format!("quantize {m} --preset fashion-mnist --calib {data} -o {out}");
    let cases = [
        words(
            &format!("{eval} --threads 100000"),
            &["--threads", "100000"],
        ),
        words(&format!("{eval} --threads 0"), &["--threads"]),
        words(
            &format!("{explain} --scale 2000"),
            &["--scale 2000", "give --scale 146 or less"],
        ),
        words(&format!("{explain} --scale 100000"), &["--scale"]),
        words(&format!("{faithful} --steps 0"), &["--steps", "zero"]),
        words(
            &format!("{faithful} --steps 100000"),
            &["100000 steps is more than 1000"],
        ),
        words(
            &format!("{explain} --alpha 2"),
            &["--alpha 2 must lie in [0, 1]"],
        ),
        words(
            &format!("relevance {b} --data {data} --eps=-1"),
            &["--eps -1"],
        ),
        words(
            &format!("relevance {b} --data {data} --limit 0"),
            &["the limit is zero"],
        ),
        words(
            &format!("{quant} --mixed --budget inf"),
            &["--budget", "inf is not a finite number"],
        ),
        words(
            &format!("{quant} --mixed --budget nan"),
            &["--budget", "NaN is not a finite number"],
        ),
        words(
            &format!("{quant} --mixed --budget 4 --abudget=-inf"),
            &["--abudget"],
        ),
        words(
            &format!("{quant} --wbits 4 --abits 8 --percentile 2 --clip percentile"),
            &["--percentile 2 must lie in [0.5, 1]"],
        ),
        words(&format!("{quant} --wbits 9"), &["--wbits"]),
        words(
            &format!("{quant} --wbits 4 --abits 8 --lrp-images 0"),
            &["--lrp-images", "zero"],
        ),
        words(
            &format!("quantize {m} --preset fashion-mnist --wbits 8 --abits 8 -o {out}"),
            &["quantizing needs calibration data: --calib"],
        ),
    ];
    assert_eq!(check(&cases, &[f.dir.0.clone(), d.0.clone()]), 16);
    assert!(!d.path("q.qvit").exists() && !d.path("x").exists());
}

#[test]
fn outputs_onto_inputs_are_refused_before_any_work() {
    let f = fixture();
    let d = Dir::new("outputs");
    let (m, b) = (f.arg("m.onnx"), f.arg("f.qvit"));
    let calib = f.arg("calib-images-idx3-ubyte");
    std::os::unix::fs::symlink(f.path("m.onnx"), d.path("link.onnx")).unwrap();
    std::os::unix::fs::symlink(f.path("f.qvit"), d.path("link.qvit")).unwrap();
    std::fs::create_dir(d.path("sub")).unwrap();
    let png = std::fs::read(f.path("sample.png")).unwrap();
    d.file("img/a.png", &png);
    d.file("img/a.lrp.png", &png);
    d.file("file", b"x");
    d.file("m.report.md", &std::fs::read(f.path("labels.txt")).unwrap());
    let float = format!("quantize {m} --float --preset fashion-mnist -o");
    let quant = format!("quantize {m} --preset fashion-mnist --calib {calib} --wbits 8 --abits 8");
    let package = format!("package {b} --format mender --device-type pi4 -o");
    let refused = ["refusing to write", "choose another output path"];
    let cases = [
        words(&format!("{float} {m}"), &refused),
        words(&format!("{float} {}", d.arg("link.onnx")), &refused),
        words(&format!("{float} {}/../link.onnx", d.arg("sub")), &refused),
        words(&format!("{float} {}", f.arg("labels.txt")), &refused),
        words(&format!("{quant} -o {calib}"), &refused),
        words(
            &format!("{quant} -o {}", f.arg("calib-labels-idx1-ubyte")),
            &refused,
        ),
        // The reports beside the bundle (m.report.json, m.report.md) may not be inputs either.
        words(
            &format!(
                "{quant} --labels {} -o {}",
                d.arg("m.report.md"),
                d.arg("m.qvit")
            ),
            &["refusing to write", "m.report.md"],
        ),
        words(
            &format!("{float} {}", d.arg("sub")),
            &["is a directory; give a file path"],
        ),
        words(
            &format!("{float} {}", d.arg("nodir/o.qvit")),
            &["does not exist"],
        ),
        words(
            &format!(
                "relevance {b} --data {} --plot {}",
                d.arg("img"),
                d.arg("img/a.png")
            ),
            &["refusing to write", "a.png"],
        ),
        words(
            &format!(
                "explain {b} {} {} -o {}",
                d.arg("img/a.png"),
                d.arg("img/a.lrp.png"),
                d.arg("img")
            ),
            &["refusing to write", "a.lrp.png"],
        ),
        words(
            &format!("explain {b} {} -o {}", f.arg("sample.png"), d.arg("file")),
            &["is a file", "give a folder path"],
        ),
        words(&format!("{package} {}", d.arg("link.qvit")), &refused),
        words(
            &format!("{package} {0} --key {0}", f.arg("labels.txt")),
            &["refusing to write", "labels.txt"],
        ),
    ];
    assert_eq!(check(&cases, &[f.dir.0.clone(), d.0.clone()]), 14);
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
    for (extra, says) in [
        (
            &["--bench", "--results", &d.arg("results.json")][..],
            &["--results", "results.json is a file", "give a folder path"][..],
        ),
        (
            &["--bench", "--results", &d.arg("results.json/sub")],
            &["results.json is a file"],
        ),
        (&["--bench", "--threads", "0"], &["--threads"]),
        (&["--bench", "--threads", "5000"], &["--threads"]),
        (&["--jobs", "0"], &["--jobs"]),
        (
            &["--ssh-config", &d.arg("nossh")],
            &["--ssh-config", "no such file"],
        ),
        (&["--runner", &f.arg("m.onnx")], &["m.onnx"]),
    ] {
        let a = dep(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        cases.push(case(&a, says));
    }
    cases.push(case(
        &["deploy", &f.arg("m.onnx"), host],
        &["is not a valid bundle"],
    ));
    cases.push(case(
        &["deploy", &b, &format!("@{}", d.arg("nohosts"))],
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
