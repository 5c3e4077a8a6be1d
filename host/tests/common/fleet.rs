//! What the fleet tests share: prerequisites (missing, they fail the test and name the fix),
//! test bundles, and reading a Mender artifact with tools other than the one that wrote it.
//! Included by the fleet test crates as `#[path = "common/fleet.rs"] mod fleet;`.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Fails the test unless `program` is in PATH, naming the Debian package that has it.
pub fn need(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{program} is not installed: run scripts/setup.sh (Debian package {package})"
    );
}

/// The committed golden bundle (a tiny MLP; see models/golden/README.md).
pub fn tiny_bundle() -> PathBuf {
    crate::common::repo().join("models/golden/tiny.qvit")
}

/// A valid bundle at `path` that differs from [`tiny_bundle`] (and from other variants) in its
/// model name, so its bytes and checksum differ.
pub fn tiny_variant(path: &Path, name: &str) {
    let mut b = qvit_device::bundle::Bundle::read_file(tiny_bundle()).unwrap();
    b.header.model_name = name.to_string();
    b.write_file(path).unwrap();
}

/// The bundle's own trailing CRC-32 as lowercase hex, read straight from the file.
pub fn crc_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let tail: [u8; 4] = bytes[bytes.len() - 4..].try_into().unwrap();
    format!("{:08x}", u32::from_le_bytes(tail))
}

/// Runs a program and returns its output, panicking only if it cannot start.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// Text of an output's stdout and stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Unpacks a Mender artifact (a tar of `header.tar.gz` and `data/0000.tar.gz`) with the system
/// `tar` into `dir`: the payload files land in `dir/payload`, the headers in `dir/header`.
pub fn unpack_artifact(artifact: &Path, dir: &Path) {
    for sub in ["payload", "header"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let d = dir.to_str().unwrap();
    let ok = |o: Output| assert!(o.status.success(), "{}", text(&o));
    ok(run("tar", &["-xf", artifact.to_str().unwrap(), "-C", d]));
    ok(run(
        "tar",
        &[
            "-xzf",
            &format!("{d}/data/0000.tar.gz"),
            "-C",
            &format!("{d}/payload"),
        ],
    ));
    ok(run(
        "tar",
        &[
            "-xzf",
            &format!("{d}/header.tar.gz"),
            "-C",
            &format!("{d}/header"),
        ],
    ));
}
