//! Models shipped as Mender artifacts, installed by the real Mender client (Debian
//! mender-client 3.4) in standalone mode through the repository's `qvit` update module
//! (device/mender/qvit, the file the .deb ships) and this build's qvit-run.
//!
//! The client runs without a server and without touching the machine: `--config`, `--data`
//! and the models directory are in a temporary sandbox, and the two paths the client cannot
//! be told about (/etc/mender, for artifact_info, and /usr/share/mender/modules/v3, where it
//! looks for update modules) are bind-mounted from the sandbox inside a private mount
//! namespace (`unshare --mount`) that ends with each command. That needs root (or
//! CAP_SYS_ADMIN); without it, or without mender/mender-artifact (scripts/setup.sh installs
//! them), the tests fail, naming the fix.

mod common;
#[path = "common/fleet.rs"]
mod fleet;

use fleet::{need, text, tiny_bundle, tiny_variant};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DEVICE_TYPE: &str = "qvit-test-box";

/// A Mender client sandbox: config, state, modules and the models directory.
struct Client {
    dir: tempfile::TempDir,
}

/// Mounts the sandbox's /etc/mender and module directory over the system's, then runs the
/// client with the sandbox's config and state. The mounts vanish with the namespace.
const IN_NAMESPACE: &str = r#"set -e
S=$1; shift
mount --bind "$S/etc" /etc/mender
mount --bind "$S/modules" /usr/share/mender/modules/v3
exec mender --no-syslog --log-level info --config "$S/etc/mender.conf" \
  --fallback-config "$S/etc/fallback.conf" --data "$S/data" "$@""#;

impl Client {
    /// A fresh sandbox; fails, naming the fix, if something the test needs is missing.
    fn new() -> Client {
        need("mender", "mender-client");
        need("mender-artifact", "mender-artifact");
        need("unshare", "util-linux");
        assert!(
            Path::new("/usr/share/mender/modules/v3").is_dir() && Path::new("/etc/mender").is_dir(),
            "/etc/mender or /usr/share/mender/modules/v3 is missing: reinstall mender-client"
        );
        assert!(
            runner_dir().join("qvit-run").is_file(),
            "no qvit-run beside qvit: cargo test --workspace, or cargo build -p qvit-device --bin qvit-run"
        );
        let probe = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "true"])
            .output();
        assert!(
            probe.is_ok_and(|o| o.status.success()),
            "cannot make a private mount namespace (unshare --mount): run the tests as root"
        );
        // /tmp rather than the target dir: the models path must be one the module accepts.
        let dir = tempfile::Builder::new()
            .prefix("qvit-mender-")
            .tempdir()
            .unwrap();
        let p = dir.path();
        for sub in ["etc", "modules", "data", "models"] {
            std::fs::create_dir(p.join(sub)).unwrap();
        }
        std::fs::write(p.join("etc/mender.conf"), "{}\n").unwrap();
        std::fs::write(p.join("etc/artifact_info"), "artifact_name=factory-image\n").unwrap();
        std::fs::write(
            p.join("data/device_type"),
            format!("device_type={DEVICE_TYPE}\n"),
        )
        .unwrap();
        let module = p.join("modules/qvit");
        std::fs::copy(common::repo().join("device/mender/qvit"), &module).unwrap();
        Client { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn models(&self) -> PathBuf {
        self.path().join("models")
    }

    /// `mender ARGS` in the sandbox, with this build's qvit-run first in PATH.
    fn mender(&self, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            runner_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                IN_NAMESPACE,
                "sh",
            ])
            .arg(self.path())
            .args(args)
            .env("PATH", path)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.mender(args);
        assert!(o.status.success(), "mender {args:?} failed: {}", text(&o));
        o
    }

    /// The installed artifact's name, as `mender show-artifact` prints it.
    fn current(&self) -> String {
        String::from_utf8_lossy(&self.ok(&["show-artifact"]).stdout)
            .trim()
            .to_string()
    }

    /// Names in the models directory, sorted.
    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.models())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.models().join(name)).unwrap()
    }
}

/// Where this build's binaries are: qvit, and qvit-run when the device crate was built too.
fn runner_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_qvit"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `qvit package` of `bundle` for the sandbox's device type and models directory.
fn package(bundle: &Path, out: &Path, models: &Path) -> String {
    let (ok, stdout, err) = common::qvit(&[
        "package",
        bundle.to_str().unwrap(),
        "--format",
        "mender",
        "--device-type",
        DEVICE_TYPE,
        "--name",
        "vit",
        "--dest",
        models.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    v["artifact_name"].as_str().unwrap().to_string()
}

#[test]
fn mender_installs_commits_and_rolls_back_qvit_models() {
    let client = Client::new();
    let work = tempfile::tempdir().unwrap();
    let w = |name: &str| work.path().join(name);
    std::fs::copy(tiny_bundle(), w("v1.qvit")).unwrap();
    tiny_variant(&w("v2.qvit"), "tiny-v2");
    let (v1, v2) = (
        std::fs::read(w("v1.qvit")).unwrap(),
        std::fs::read(w("v2.qvit")).unwrap(),
    );
    let a1 = package(&w("v1.qvit"), &w("v1.mender"), &client.models());
    let a2 = package(&w("v2.qvit"), &w("v2.mender"), &client.models());
    let m = |name: &str| w(name).to_str().unwrap().to_string();

    // First install: the bundle goes live; nothing to keep yet.
    assert_eq!(client.current(), "factory-image");
    client.ok(&["install", &m("v1.mender")]);
    assert_eq!(client.files(), ["vit.qvit"]);
    assert_eq!(client.read("vit.qvit"), v1);
    client.ok(&["commit"]);
    assert_eq!(client.current(), a1);
    assert_eq!(client.files(), ["vit.qvit"]);

    // An update rolled back before commit: the old bundle is back, byte for byte.
    client.ok(&["install", &m("v2.mender")]);
    assert_eq!(client.read("vit.qvit"), v2);
    client.ok(&["rollback"]);
    assert_eq!(client.read("vit.qvit"), v1);
    assert_eq!(client.files(), ["vit.qvit"]);
    assert_eq!(client.current(), a1);

    // An update committed: the replaced bundle is kept as .previous.
    client.ok(&["install", &m("v2.mender")]);
    client.ok(&["commit"]);
    assert_eq!(client.current(), a2);
    assert_eq!(client.files(), ["vit.qvit", "vit.qvit.previous"]);
    assert_eq!(client.read("vit.qvit"), v2);
    assert_eq!(client.read("vit.qvit.previous"), v1);

    // A bundle that does not load on the box (here: damaged, in an artifact made without
    // qvit's checks) never goes live: the install fails, Mender rolls back, nothing changed.
    let mut bad = v1.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    let stage = w("bad");
    std::fs::create_dir(&stage).unwrap();
    std::fs::write(stage.join("vit.qvit"), &bad).unwrap();
    let meta = stage.join("meta.json");
    std::fs::write(
        &meta,
        format!(
            "{{\"name\": \"vit\", \"dest\": \"{}\"}}",
            client.models().display()
        ),
    )
    .unwrap();
    let made = Command::new("mender-artifact")
        .args([
            "write",
            "module-image",
            "-T",
            "qvit",
            "-n",
            "vit-damaged",
            "-t",
            DEVICE_TYPE,
        ])
        .args([
            "--software-filesystem",
            "qvit-model",
            "--software-name",
            "vit",
        ])
        .arg("-f")
        .arg(stage.join("vit.qvit"))
        .arg("-m")
        .arg(&meta)
        .arg("-o")
        .arg(w("bad.mender"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let o = client.mender(&["install", &m("bad.mender")]);
    assert!(
        !o.status.success(),
        "damaged bundle installed: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("does not load or run on this box"),
        "{}",
        text(&o)
    );
    assert_eq!(client.current(), a2);
    assert_eq!(client.files(), ["vit.qvit", "vit.qvit.previous"]);
    assert_eq!(client.read("vit.qvit"), v2);
    assert_eq!(client.read("vit.qvit.previous"), v1);

    // A live bundle damaged between install and commit fails the commit check, and Mender
    // rolls back to the bundle it replaced.
    client.ok(&["install", &m("v1.mender")]);
    assert_eq!(client.read("vit.qvit"), v1);
    std::fs::write(client.models().join("vit.qvit"), &bad).unwrap();
    let o = client.mender(&["commit"]);
    assert!(
        !o.status.success(),
        "commit of a damaged bundle: {}",
        text(&o)
    );
    assert_eq!(client.read("vit.qvit"), v2);
    assert_eq!(client.read("vit.qvit.previous"), v1);
    assert_eq!(client.files(), ["vit.qvit", "vit.qvit.previous"]);
    assert_eq!(client.current(), a2);
}

#[test]
fn mender_refuses_an_artifact_for_another_device_type() {
    let client = Client::new();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("other.mender");
    let (ok, _, err) = common::qvit(&[
        "package",
        tiny_bundle().to_str().unwrap(),
        "--format",
        "mender",
        "--device-type",
        "some-other-board",
        "--dest",
        client.models().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let o = client.mender(&["install", out.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(DEVICE_TYPE), "{}", text(&o));
    assert!(client.files().is_empty(), "{:?}", client.files());
    assert_eq!(client.current(), "factory-image");
}
