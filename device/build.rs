//! Records the git commit the crate is built from, for `qvit-run bench` results.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=QVIT_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves; only name files that exist, or cargo reruns this every build.
    if let Ok(o) = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
        && o.status.success()
    {
        let dir = std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        for f in ["HEAD", "logs/HEAD"] {
            let p = dir.join(f);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
