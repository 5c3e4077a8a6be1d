//! `qvit package --format mender`: the artifact is judged by the real `mender-artifact` tool
//! (validate, read, signature check) and unpacked with the system `tar`, so the bundle that
//! reaches the box and the meta-data the update module reads are checked byte for byte.
//!
//! Needs `mender-artifact` (Debian package mender-artifact) and, for signing, `openssl`;
//! scripts/setup.sh installs both. Missing, they fail the tests, naming the fix.

mod common;
#[path = "common/fleet.rs"]
mod fleet;

use common::qvit;
use fleet::{crc_hex, need, run, text, tiny_bundle, tiny_variant, unpack_artifact};
use serde_json::Value;
use std::path::Path;

fn package(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["package"];
    all.extend_from_slice(args);
    qvit(&all)
}

/// `qvit package ARGS --json` that must succeed: its report.
fn package_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, stdout, err) = package(&all);
    assert!(ok, "{err}");
    serde_json::from_str(&stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn mender_artifact_carries_the_bundle_to_dest_for_each_device_type() {
    need("mender-artifact", "mender-artifact");
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("vit-w8a8.qvit");
    std::fs::copy(tiny_bundle(), &bundle).unwrap();
    let out = dir.path().join("fashion.mender");
    let report = package_json(&[
        s(&bundle),
        "--format",
        "mender",
        "--device-type",
        "raspberrypi4",
        "--device-type",
        "jetson-nano",
        "--name",
        "fashion",
        "-o",
        s(&out),
    ]);
    let name = format!("fashion-{}", crc_hex(&bundle));
    assert_eq!(report["artifact_name"], name.as_str());
    assert_eq!(report["installs"], "/var/lib/qvit/models/fashion.qvit");
    assert_eq!(report["payload_type"], "qvit");
    assert_eq!(report["signed"], false);
    assert_eq!(report["bytes"], std::fs::metadata(&out).unwrap().len());

    let v = run("mender-artifact", &["validate", s(&out)]);
    assert!(v.status.success(), "{}", text(&v));
    let read = text(&run("mender-artifact", &["read", s(&out)]));
    for want in [
        format!("Name: {name}"),
        "Compatible devices: '[raspberrypi4 jetson-nano]'".to_string(),
        "Type:   qvit".to_string(),
        format!("qvit-model.fashion.version: {name}"),
        "Clears Provides: [\"qvit-model.fashion.*\"]".to_string(),
    ] {
        assert!(read.contains(&want), "no {want:?} in:\n{read}");
    }

    // What the box receives: exactly the bundle, named after the model, and the meta-data
    // the update module reads.
    let unpacked = dir.path().join("unpacked");
    unpack_artifact(&out, &unpacked);
    let payload = std::fs::read_dir(unpacked.join("payload"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(payload, ["fashion.qvit"]);
    assert_eq!(
        std::fs::read(unpacked.join("payload/fashion.qvit")).unwrap(),
        std::fs::read(&bundle).unwrap()
    );
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(unpacked.join("header/headers/0000/meta-data")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["name"], "fashion");
    assert_eq!(meta["dest"], "/var/lib/qvit/models");
    assert_eq!(meta["bundle_crc32"], crc_hex(&bundle).as_str());

    // Defaults: the model is named after the file; a trailing slash on --dest is dropped; the
    // same bundle gets the same artifact name, a different one another.
    let other = dir.path().join("other.mender");
    let report = package_json(&[
        s(&bundle),
        "--format=mender",
        "--device-type=qemux86-64",
        "--dest=/opt/vision/models/",
        "-o",
        s(&other),
    ]);
    assert_eq!(report["installs"], "/opt/vision/models/vit-w8a8.qvit");
    assert_eq!(
        report["artifact_name"],
        format!("vit-w8a8-{}", crc_hex(&bundle)).as_str()
    );
    let variant = dir.path().join("vit-w8a8-v2.qvit");
    tiny_variant(&variant, "tiny-v2");
    assert_ne!(crc_hex(&variant), crc_hex(&bundle));
    let report = package_json(&[
        s(&variant),
        "--format=mender",
        "--device-type=qemux86-64",
        "-o",
        s(&other),
    ]);
    assert_eq!(
        report["artifact_name"],
        format!("vit-w8a8-v2-{}", crc_hex(&variant)).as_str()
    );
    assert_no_staging_left(dir.path());
}

/// No `.qvit-package-*` staging directory survives, whatever happened.
fn assert_no_staging_left(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".qvit-package-"))
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
}

#[test]
fn bad_bundles_names_paths_and_tools_fail_before_any_artifact_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.qvit");
    std::fs::copy(tiny_bundle(), &good).unwrap();
    let mut bytes = std::fs::read(&good).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let corrupt = dir.path().join("corrupt.qvit");
    std::fs::write(&corrupt, &bytes).unwrap();
    let out = dir.path().join("x.mender");
    let o = s(&out);
    // (args, what the error must say)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![s(&corrupt), "--device-type", "pi"],
            "corrupt.qvit is not a valid bundle",
        ),
        (vec!["missing.qvit", "--device-type", "pi"], "missing.qvit"),
        (
            vec![s(&good), "--device-type", "pi", "--name", "../evil"],
            "model name \"../evil\"",
        ),
        (
            vec![s(&good), "--device-type", "pi", "--name", ".hidden"],
            "not starting with '.'",
        ),
        (
            vec![s(&good), "--device-type", "pi", "--dest", "models"],
            "must be an absolute path",
        ),
        (
            vec![s(&good), "--device-type", "pi", "--dest", "/a/../etc"],
            "without '..'",
        ),
        (
            vec![s(&good), "--device-type", "pi", "--dest", "/a b"],
            "must be an absolute path",
        ),
        (
            vec![s(&good), "--device-type", "rasp pi"],
            "--device-type \"rasp pi\"",
        ),
        (
            vec![s(&good), "--device-type", "pi", "--artifact-name", "a\"b"],
            "--artifact-name",
        ),
        (
            vec![
                s(&good),
                "--device-type",
                "pi",
                "--mender-artifact",
                "/nonexistent/mender-artifact",
            ],
            "apt-get install mender-artifact",
        ),
        (vec![s(&good)], "--device-type <TYPE>"),
        (
            vec![s(&good), "--device-type", "pi", "--key", "/nonexistent.pem"],
            "signing key",
        ),
    ];
    for (args, want) in cases {
        let mut all = args.clone();
        all.extend(["--format", "mender", "-o", o]);
        let (ok, _, err) = package(&all);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: no {want:?} in: {err}");
        assert!(!out.exists(), "{args:?} left {o}");
    }
    // Outputs that cannot be written, or would replace the bundle.
    let missing_dir = dir.path().join("no/such/dir/x.mender");
    for (output, want) in [
        (s(&missing_dir), "does not exist"),
        (s(&good), "refusing to write"),
    ] {
        let args = [
            s(&good),
            "--format",
            "mender",
            "--device-type",
            "pi",
            "-o",
            output,
        ];
        let (ok, _, err) = package(&args);
        assert!(!ok && err.contains(want), "{output}: {err}");
    }
    assert_eq!(
        std::fs::read(&good).unwrap(),
        std::fs::read(tiny_bundle()).unwrap()
    );
    assert_no_staging_left(dir.path());
}

#[test]
fn signed_artifact_verifies_with_its_public_key_only() {
    need("mender-artifact", "mender-artifact");
    need("openssl", "openssl");
    let dir = tempfile::tempdir().unwrap();
    let key = |name: &str| {
        let private = dir.path().join(format!("{name}.key"));
        let public = dir.path().join(format!("{name}.pub"));
        let g = run(
            "openssl",
            &[
                "ecparam",
                "-genkey",
                "-name",
                "prime256v1",
                "-noout",
                "-out",
                s(&private),
            ],
        );
        assert!(g.status.success(), "{}", text(&g));
        let p = run(
            "openssl",
            &["ec", "-in", s(&private), "-pubout", "-out", s(&public)],
        );
        assert!(p.status.success(), "{}", text(&p));
        (private, public)
    };
    let (signing, verifying) = key("fleet");
    let (_, stranger) = key("stranger");
    let out = dir.path().join("signed.mender");
    let report = package_json(&[
        s(&tiny_bundle()),
        "--format",
        "mender",
        "--device-type",
        "raspberrypi4",
        "--key",
        s(&signing),
        "-o",
        s(&out),
    ]);
    assert_eq!(report["signed"], true);
    let good = run(
        "mender-artifact",
        &["validate", "-k", s(&verifying), s(&out)],
    );
    assert!(good.status.success(), "{}", text(&good));
    let bad = run(
        "mender-artifact",
        &["validate", "-k", s(&stranger), s(&out)],
    );
    assert!(
        !bad.status.success(),
        "a stranger's key verified it: {}",
        text(&bad)
    );
    let read = text(&run("mender-artifact", &["read", s(&out)]));
    assert!(read.contains("Signature: signed"), "{read}");
}
