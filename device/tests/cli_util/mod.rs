//! Running the `qvit-run` binary from the tests, and checking how it ended.
#![allow(dead_code)] // Each test crate uses a different subset.

use qvit_device::bundle::Bundle;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A fresh directory for one test, removed on drop.
pub struct Dir(pub tempfile::TempDir);

impl Dir {
    pub fn new(name: &str) -> Dir {
        let prefix = format!("qvit-cli-{name}-");
        Dir(tempfile::Builder::new().prefix(&prefix).tempdir().unwrap())
    }
    pub fn path(&self, file: &str) -> PathBuf {
        self.0.path().join(file)
    }
}

/// Runs the binary, through `QVIT_TEST_RUNNER` when set (scripts/test.sh sets it to qemu for
/// cross-compiled aarch64 runs, since the emulated test cannot exec an aarch64 child directly).
pub fn qvit_run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let exe = env!("CARGO_BIN_EXE_qvit-run");
    let runner = std::env::var("QVIT_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut cmd = match words.next() {
        Some(prog) => {
            let mut c = Command::new(prog);
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.args(args.iter().map(|a| a.as_ref())).output().unwrap()
}

/// `qvit-run run MODEL --input INPUT --output OUT... EXTRA...`.
pub fn run_model(
    model: &std::path::Path,
    input: &std::path::Path,
    outputs: &[&std::path::Path],
    extra: &[&str],
) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"run", &model, &"--input", &input];
    for out in outputs {
        args.push(&"--output");
        args.push(out);
    }
    for a in extra {
        args.push(a);
    }
    qvit_run(&args)
}

pub fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A failing run: non-zero exit, `error:` first, no panic message.
pub fn fails(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "should fail; stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

pub fn write_bundle(dir: &Dir, name: &str, bundle: &Bundle) -> PathBuf {
    let path = dir.path(name);
    bundle.write_file(&path).unwrap();
    path
}
