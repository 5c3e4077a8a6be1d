//! `qvit deploy` against a real OpenSSH server started by the test on 127.0.0.1 with a
//! throwaway host key, user key and port. The "box" is this machine, so the x86_64 qvit-run is
//! the matching runner and the deployed files can be compared byte for byte.
//!
//! Broken transfers come from scripts/ssh-test-scp.sh, linked as `scp` first in PATH: it cuts
//! or corrupts .qvit uploads like a bad link. After every failure the previously deployed
//! bundle and runner must be exactly what they were, with no temporaries left behind.
//!
//! Needs /usr/sbin/sshd (Debian openssh-server; scripts/setup.sh installs it) and
//! target/debug/qvit-run (built by `cargo test --workspace` or
//! `cargo build -p qvit-device --bin qvit-run`); without them the tests fail, naming the fix.

mod sshd;

use qvit_host::deploy::BoxBench;
use serde_json::Value;
use sshd::{ALIAS, DEAD_ALIAS, Sshd, TempDir, start_sshd, temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const QVIT: &str = env!("CARGO_BIN_EXE_qvit");

fn qvit_run() -> Option<PathBuf> {
    let p = Path::new(QVIT).with_file_name("qvit-run");
    p.is_file().then_some(p)
}

/// The test bundle, built once per test process with `qvit quantize --float` (written under a
/// private name, then renamed, so concurrent test processes never see a half-written file).
fn bundle() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let tmp_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = tmp_dir.join("deploy-fixture.qvit");
        let part = tmp_dir.join(format!("deploy-fixture-{}.qvit", std::process::id()));
        let status = Command::new(QVIT)
            .arg("quantize")
            .arg(root.join("models/fashion-vit/fashion_vit.onnx"))
            .args(["--float", "--preset", "fashion-mnist", "-o"])
            .arg(&part)
            .status()
            .unwrap();
        assert!(status.success(), "qvit quantize failed");
        std::fs::rename(&part, &out).unwrap();
        out
    })
}

/// Everything a test needs: a running sshd and the qvit-run to deploy. A missing prerequisite
/// fails the test with the command that provides it (a skipped deploy test would pass unrun).
fn setup() -> (Sshd, PathBuf) {
    let runner = qvit_run().unwrap_or_else(|| {
        panic!(
            "no qvit-run beside qvit ({}): run `cargo build -p qvit-device --bin qvit-run` \
             (`cargo test --workspace` builds it)",
            Path::new(QVIT).with_file_name("qvit-run").display()
        )
    });
    let sshd = start_sshd().unwrap_or_else(|why| panic!("cannot start the test sshd: {why}"));
    (sshd, runner)
}

/// A deploy directory on the "box" and a copy of the bundle named `m.qvit`.
struct Work {
    tmp: TempDir,
    bundle: PathBuf,
}

impl Work {
    fn new(tag: &str) -> Work {
        let tmp = temp_dir(tag);
        let bundle = tmp.path().join("m.qvit");
        std::fs::copy(self::bundle(), &bundle).unwrap();
        Work { tmp, bundle }
    }
    fn remote_dir(&self) -> PathBuf {
        self.tmp.path().join("box")
    }
    fn results(&self) -> PathBuf {
        self.tmp.path().join("results")
    }
    /// Files in the deploy directory, sorted.
    fn remote_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.remote_dir())
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn deploy(sshd: &Sshd, work: &Work, extra: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(QVIT);
    cmd.arg("deploy")
        .arg(&work.bundle)
        .arg("--ssh-config")
        .arg(&sshd.client_config)
        .arg("--dir")
        .arg(work.remote_dir())
        .arg("--results")
        .arg(work.results())
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    eprintln!(
        "qvit deploy {extra:?}: {}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// PATH with scripts/ssh-test-scp.sh linked as `scp` in front.
fn broken_scp_path(work: &Work) -> String {
    let bin = work.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ssh-test-scp.sh");
    let _ = std::fs::remove_file(bin.join("scp"));
    std::os::unix::fs::symlink(script.canonicalize().unwrap(), bin.join("scp")).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

#[test]
fn deploys_verifies_and_benchmarks_many_boxes() {
    let (sshd, runner) = setup();
    let work = Work::new("many");
    // Three spellings of a box (alias, user@host:port from an @FILE) and one that is down.
    let list = work.tmp.path().join("fleet.txt");
    std::fs::write(
        &list,
        format!(
            "# lab\nroot@127.0.0.1:{}\n{DEAD_ALIAS}  # unplugged\n",
            sshd.port
        ),
    )
    .unwrap();
    let out = deploy(
        &sshd,
        &work,
        &[
            ALIAS,
            &format!("@{}", list.display()),
            "--bench",
            "--iters",
            "3",
            "--jobs",
            "2",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "one box is down: must fail");
    let v = json(&out);
    let boxes = v["boxes"].as_array().unwrap();
    let hosts: Vec<&str> = boxes.iter().map(|b| b["host"].as_str().unwrap()).collect();
    let port_host = format!("root@127.0.0.1:{}", sshd.port);
    assert_eq!(hosts, [ALIAS, port_host.as_str(), DEAD_ALIAS]);

    let dead = &boxes[2];
    assert_eq!(dead["ok"], false);
    assert!(dead["bench"].is_null());
    assert!(
        dead["error"].as_str().unwrap().contains("connect"),
        "{dead}"
    );

    let cpu = qvit_device::sysinfo::cpu_model();
    for b in &boxes[..2] {
        assert_eq!(b["ok"], true, "{b}");
        assert!(b["error"].is_null());
        assert_eq!(b["arch"], std::env::consts::ARCH);
        let bench: BoxBench = serde_json::from_value(b["bench"].clone()).unwrap();
        let lat = bench.run.latency_ms;
        assert!(
            0.0 < lat.min && lat.min <= lat.p50 && lat.p50 <= lat.p90,
            "{lat:?}"
        );
        assert_eq!(bench.run.iters, 3);
        assert_eq!(bench.run.cpu, cpu, "the box is this machine");
        assert_eq!(bench.host, b["host"].as_str().unwrap());
        // The stored result is the one in the summary.
        let file = PathBuf::from(b["results_file"].as_str().unwrap());
        assert_eq!(file.parent().unwrap(), work.results());
        assert!(
            file.file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with("__m.json")
        );
        let stored: BoxBench = serde_json::from_slice(&read(&file)).unwrap();
        assert_eq!(stored, bench);
    }
    assert_eq!(std::fs::read_dir(work.results()).unwrap().count(), 2);

    // Installed files are byte-identical to the local ones, and no temporaries remain.
    assert_eq!(work.remote_files(), ["m.qvit", "qvit-run"]);
    assert_eq!(read(&work.remote_dir().join("m.qvit")), read(&work.bundle));
    assert_eq!(read(&work.remote_dir().join("qvit-run")), read(&runner));
    drop(sshd);
}

#[test]
fn all_boxes_ok_exits_zero_with_a_table() {
    let (sshd, _runner) = setup();
    let work = Work::new("table");
    let out = deploy(&sshd, &work, &[ALIAS], &[]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    assert!(table.starts_with("host"), "{table}");
    let installed = work.remote_dir().join("m.qvit").display().to_string();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(ALIAS) && l.contains(" ok ") && l.ends_with(&installed)),
        "{table}"
    );
    assert!(table.contains("1 of 1 boxes ok"), "{table}");
    assert_eq!(work.remote_files(), ["m.qvit", "qvit-run"]);
    // No --bench: nothing stored.
    assert!(!work.results().exists());

    // Again with --bench and two threads: the table grows latency columns.
    let out = deploy(
        &sshd,
        &work,
        &[ALIAS, "--bench", "--iters", "2", "--threads", "2"],
        &[],
    );
    assert!(out.status.success());
    // The runner on the box is the same file: kept, not sent again.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("runner on the box is identical"), "{log}");
    assert!(!log.contains("uploading runner"), "{log}");
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    assert!(table.lines().next().unwrap().contains("p50 ms"), "{table}");
    let cpu = qvit_device::sysinfo::cpu_model();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(ALIAS) && l.ends_with(&cpu)),
        "{table}"
    );
    let stored: BoxBench =
        serde_json::from_slice(&read(&work.results().join(format!("{ALIAS}__m.json")))).unwrap();
    assert_eq!(stored.run.threads, 2);
    assert_eq!(stored.run.iters, 2);
}

/// Deploys once, then a second deploy with a different runner through a broken `scp`; checks
/// that the second one fails and changes nothing, then that a clean retry does replace both.
fn old_deployment_survives(mode: &str, expect_in_error: &str) {
    let (sshd, runner) = setup();
    let work = Work::new(mode);
    let first = deploy(&sshd, &work, &[ALIAS], &[]);
    assert!(first.status.success());
    let old_bundle = read(&work.remote_dir().join("m.qvit"));
    let old_runner = read(&work.remote_dir().join("qvit-run"));

    // A second runner that differs in bytes but still runs (an ELF ignores trailing data).
    let runner2 = work.tmp.path().join("qvit-run-2");
    let mut bytes = read(&runner);
    bytes.extend_from_slice(b"second build");
    std::fs::write(&runner2, &bytes).unwrap();
    std::fs::set_permissions(
        &runner2,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let runner2_arg = runner2.display().to_string();
    let path = broken_scp_path(&work);
    let broken = deploy(
        &sshd,
        &work,
        &[ALIAS, "--runner", &runner2_arg, "--json"],
        &[("PATH", path.clone()), ("QVIT_TEST_SCP_MODE", mode.into())],
    );
    assert_eq!(broken.status.code(), Some(2));
    let v = json(&broken);
    assert_eq!(v["boxes"][0]["ok"], false);
    let err = v["boxes"][0]["error"].as_str().unwrap();
    assert!(err.contains(expect_in_error), "error {err:?}");
    assert_eq!(read(&work.remote_dir().join("m.qvit")), old_bundle);
    assert_eq!(read(&work.remote_dir().join("qvit-run")), old_runner);
    assert_eq!(
        work.remote_files(),
        ["m.qvit", "qvit-run"],
        "temporaries left"
    );

    // The same broken PATH without a damage mode is a clean transfer: now both are replaced.
    let retry = deploy(
        &sshd,
        &work,
        &[ALIAS, "--runner", &runner2_arg],
        &[("PATH", path)],
    );
    assert!(retry.status.success());
    assert_eq!(read(&work.remote_dir().join("qvit-run")), bytes);
    assert_eq!(read(&work.remote_dir().join("m.qvit")), read(&work.bundle));
    assert_eq!(work.remote_files(), ["m.qvit", "qvit-run"]);
    let log = std::fs::read_to_string(&sshd.log).unwrap_or_default();
    assert!(log.contains("Accepted publickey"), "sshd log: {log}");
    drop(sshd);
}

#[test]
fn interrupted_transfer_keeps_the_old_bundle() {
    old_deployment_survives("truncate", "copying");
}

#[test]
fn short_transfer_is_caught_before_the_rename() {
    old_deployment_survives("short", "bytes");
}

#[test]
fn corrupted_transfer_fails_verification_and_keeps_the_old_bundle() {
    old_deployment_survives("corrupt", "verifying");
}

/// A runner whose ELF header says aarch64 is refused on this x86_64 box before anything is
/// uploaded. The fake is the real x86 runner with only e_machine changed, so the refusal can
/// only come from the header check (the file would otherwise run). A real aarch64 build is
/// tried as well when one exists.
#[test]
fn runner_for_another_architecture_is_refused() {
    let (sshd, runner) = setup();
    assert_eq!(std::env::consts::ARCH, "x86_64", "the test box is x86_64");
    let work = Work::new("arch");
    let fake = work.tmp.path().join("qvit-run-aarch64");
    let mut bytes = read(&runner);
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    std::fs::write(&fake, &bytes).unwrap();
    let mut runners = vec![fake];
    let real = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/aarch64-unknown-linux-gnu/debug/qvit-run");
    if real.is_file() {
        runners.push(real);
    } else {
        eprintln!("(no aarch64 qvit-run build; only the patched header is tried)");
    }
    for r in runners {
        let out = deploy(
            &sshd,
            &work,
            &[ALIAS, "--runner", &r.display().to_string(), "--json"],
            &[],
        );
        assert_eq!(out.status.code(), Some(2));
        let err = json(&out)["boxes"][0]["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            err.contains("built for aarch64") && err.contains("x86_64"),
            "{err}"
        );
        assert!(!work.remote_dir().exists(), "something was uploaded");
    }
}

#[test]
fn local_mistakes_fail_before_connecting() {
    let work = Work::new("local");
    let not_elf = work.tmp.path().join("qvit-run.sh");
    std::fs::write(&not_elf, "#!/bin/sh\necho qvit-run\n").unwrap();
    let broken_bundle = work.tmp.path().join("broken.qvit");
    let mut b = read(&work.bundle);
    b.truncate(b.len() / 2);
    std::fs::write(&broken_bundle, b).unwrap();
    let cases: [(Vec<String>, &str); 4] = [
        (
            vec![
                work.bundle.display().to_string(),
                "h".into(),
                "--runner".into(),
                not_elf.display().to_string(),
            ],
            "not an ELF",
        ),
        (
            vec![broken_bundle.display().to_string(), "h".into()],
            "not a valid bundle",
        ),
        (
            vec![
                work.bundle.display().to_string(),
                "h".into(),
                "--dir".into(),
                "a b".into(),
            ],
            "--dir",
        ),
        (
            vec![work.bundle.display().to_string(), "-oProxyCommand=x".into()],
            "",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(QVIT)
            .arg("deploy")
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("error") && err.contains(want),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn help_teaches_with_examples() {
    let out = Command::new(QVIT)
        .args(["deploy", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for want in [
        "Examples:",
        "qvit deploy vit.qvit pi@raspberrypi.local",
        "@fleet.txt",
        "--ssh-config",
        "--bench",
        "--results",
        "--runner",
    ] {
        assert!(help.contains(want), "missing {want:?} in:\n{help}");
    }
}
