//! The layout ARCHITECTURE.md describes, kept: no import cycles between modules, and a library
//! without command-line types (clap lives in `host/src/cli/`, the binary).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/tools/modcycles.py` reads `crate::`/`super::` paths and reports every cycle
/// between modules (top level and one level down).
#[test]
fn no_crate_has_import_cycles_between_its_modules() {
    let tool = repo().join("../shared/tools/modcycles.py");
    assert!(
        tool.is_file(),
        "{} not found: this test needs the project's shared tools in ../shared, beside the \
         repository",
        tool.display()
    );
    let out = Command::new("python3")
        .arg(&tool)
        .args(["host/src", "device/src", "kernels/src"])
        .current_dir(repo())
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "import cycles:\n{report}");
    assert!(report.contains("0 cycles"), "{report}");
}

/// Every Rust file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn library_modules_do_not_use_clap() {
    let src = repo().join("host/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let cli = src.join("cli");
    let library: Vec<_> = files.iter().filter(|p| !p.starts_with(&cli)).collect();
    assert!(
        library.len() > 20,
        "found only {} library files",
        library.len()
    );
    for p in library {
        let text = std::fs::read_to_string(p).unwrap();
        assert!(
            !text.contains("clap"),
            "{} uses clap: command-line types belong in host/src/cli/",
            p.display()
        );
    }
}
