//! What the hostile-input suite shares: a scratch folder of damaged and misleading files made
//! from the committed default model, and one checker that runs `qvit` on a case and asserts
//! the exit status, that nothing panicked or died of a signal, what the message says, and that
//! every input file is byte for byte what it was.
#![allow(dead_code)] // each test crate uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The default model's folder, in the repository.
pub const FASHION: &str = "models/fashion-vit";

/// A scratch folder removed when dropped.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("qvit-hostile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `self/name` as a string argument.
    pub fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Writes `bytes` to `self/name` (folders created) and returns the path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A copy of `bytes` with `n` bytes from `at` flipped.
pub fn flipped(bytes: &[u8], at: usize, n: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for x in &mut b[at..at + n] {
        *x ^= 0xA5;
    }
    b
}

/// The files every case may read, made once per test process: `m.onnx` (the default model)
/// with its `labels.txt`, an f32 bundle of it `f.qvit`, the calibration IDX pair, a sample PNG.
pub struct Fixture {
    pub dir: Dir,
}

impl Fixture {
    pub fn arg(&self, name: &str) -> String {
        self.dir.arg(name)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path(name)
    }
}

/// The shared [`Fixture`] (built on first use; the f32 bundle comes from `qvit quantize`).
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = Dir::new("fixture");
        for (from, to) in [
            ("fashion_vit.onnx", "m.onnx"),
            ("labels.txt", "labels.txt"),
            ("sample.png", "sample.png"),
            ("calib512-images-idx3-ubyte", "calib-images-idx3-ubyte"),
            ("calib512-labels-idx1-ubyte", "calib-labels-idx1-ubyte"),
        ] {
            std::fs::copy(repo().join(FASHION).join(from), dir.path(to)).unwrap();
        }
        let out = qvit(&[
            "quantize",
            &dir.arg("m.onnx"),
            "--float",
            "--preset",
            "fashion-mnist",
            "-o",
            &dir.arg("f.qvit"),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        Fixture { dir }
    })
}

/// Runs `qvit ARGS` in the repository root.
pub fn qvit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_qvit"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every file under `paths` (a folder counts with all its files) and its bytes.
fn snapshot(paths: &[PathBuf]) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut todo: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        } else if let Ok(b) = std::fs::read(&p) {
            m.insert(p, b);
        }
    }
    m
}

/// One hostile use of `qvit`: its arguments and what the message must say. Every case must
/// fail with exit status 2, which `qvit` gives any error (clap, a refused flag).
pub struct Case {
    pub args: Vec<String>,
    pub says: Vec<String>,
}

/// A case: `args` must exit with status 2 and a message containing each of `says`.
pub fn case(args: &[&str], says: &[&str]) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        says: says.iter().map(|s| s.to_string()).collect(),
    }
}

/// A case written as one command line, split at whitespace (the scratch paths have none).
pub fn words(line: &str, says: &[&str]) -> Case {
    case(&line.split_whitespace().collect::<Vec<_>>(), says)
}

/// Runs every case; `inputs` (files or folders) must be unchanged after each. Returns the
/// number of cases run. All failures are collected and reported at once.
pub fn check(cases: &[Case], inputs: &[PathBuf]) -> usize {
    let mut failures = Vec::new();
    for c in cases {
        let before = snapshot(inputs);
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let out = qvit(&args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let mut wrong = Vec::new();
        match out.status.code() {
            None => wrong.push(format!("killed by a signal ({:?})", out.status)),
            Some(code) if code != 2 => wrong.push(format!("exit {code}, want 2")),
            _ => {}
        }
        for bad in ["panicked at", "RUST_BACKTRACE", "memory allocation of"] {
            if stderr.contains(bad) {
                wrong.push(format!("stderr contains {bad:?}"));
            }
        }
        for s in &c.says {
            if !stderr.contains(s.as_str()) {
                wrong.push(format!("message lacks {s:?}"));
            }
        }
        let after = snapshot(inputs);
        for (p, b) in &before {
            if after.get(p) != Some(b) {
                wrong.push(format!("input {} changed", p.display()));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "qvit {}\n  {}\n  stderr: {}\n  stdout: {}",
                c.args.join(" "),
                wrong.join("; "),
                stderr.trim(),
                stdout.chars().take(300).collect::<String>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    cases.len()
}
