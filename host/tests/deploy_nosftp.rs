//! `qvit deploy` to boxes whose SSH server has no SFTP subsystem, so OpenSSH's `scp` (SFTP
//! since 9.0) cannot copy to them: a real dropbear (as on Buildroot, OpenWrt and Yocto images)
//! and an OpenSSH sshd without a `Subsystem sftp` line, both on 127.0.0.1 (`deploy_util`).
//! Uploads must switch to a plain ssh channel on their own and stay as safe as with scp:
//! temporary names, a checksum of each copy on the box, then the rename.
//!
//! Damaged streams come from scripts/ssh-test-stream.sh, linked as `ssh` first in PATH.

mod deploy_util;

use deploy_util::*;

const NO_SFTP_LOG: &str = "the box has no SFTP";

/// Deploys with a benchmark; the files on the box are the local ones and no temporary is left.
/// Returns deploy's log.
fn deploy_and_check(test: &str, server: Server) -> Option<String> {
    let (sshd, runner) = setup_with(test, server)?;
    let work = Work::new("nosftp");
    let out = deploy(
        &sshd,
        &work,
        &[ALIAS, "--bench", "--iters", "2", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{server:?}");
    let v = json(&out);
    let b = &v["boxes"][0];
    assert_eq!(b["ok"], true, "{b}");
    assert_eq!(b["bench"]["iters"], 2, "{b}");
    work.assert_installed(&read(&work.bundle), &read(&runner));

    // A new runner and the same bundle again: both installed over the old ones.
    let (runner2, bytes) = work.second_runner(&runner);
    let again = deploy(
        &sshd,
        &work,
        &[ALIAS, "--runner", &runner2.display().to_string()],
        &[],
    );
    assert!(again.status.success(), "{server:?}");
    work.assert_installed(&read(&work.bundle), &bytes);
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn deploys_to_openssh_without_sftp() {
    let test = "deploys_to_openssh_without_sftp";
    if let Some(log) = deploy_and_check(test, Server::OpenSsh { sftp: false }) {
        assert!(log.contains(NO_SFTP_LOG), "{log}");
    }
}

#[test]
fn deploys_to_dropbear_without_sftp() {
    let test = "deploys_to_dropbear_without_sftp";
    if let Some(log) = deploy_and_check(test, Server::Dropbear { sftp: false }) {
        assert!(log.contains(NO_SFTP_LOG), "{log}");
    }
}

/// dropbear with its SFTP server (Debian's links OpenSSH's): scp works and is kept.
#[test]
fn deploys_to_dropbear_with_sftp_through_scp() {
    let test = "deploys_to_dropbear_with_sftp_through_scp";
    if !std::path::Path::new("/usr/lib/sftp-server").exists() {
        unavailable(
            test,
            "no /usr/lib/sftp-server (openssh-sftp-server) for dropbear",
        );
        return;
    }
    if let Some(log) = deploy_and_check(test, Server::Dropbear { sftp: true }) {
        assert!(!log.contains(NO_SFTP_LOG), "{log}");
    }
}

/// A damaged stream to a box without SFTP fails the deploy before the rename: the previous
/// deployment stays byte for byte, with no temporary left beside it.
fn damaged_stream_keeps_the_old_deployment(test: &str, mode: &str, expect_in_error: &str) {
    let Some((sshd, runner)) = setup_with(test, Server::OpenSsh { sftp: false }) else {
        return;
    };
    let work = Work::new(mode);
    assert!(deploy(&sshd, &work, &[ALIAS], &[]).status.success());
    let (old_bundle, old_runner) = work.installed();
    // The new bundle differs from the installed one: the same model, renamed inside.
    let bundle = qvit_device::bundle::Bundle::read_file(&work.bundle).unwrap();
    let renamed = qvit_device::bundle::Bundle {
        header: qvit_device::bundle::Header {
            model_name: "second".into(),
            ..bundle.header
        },
        graph: bundle.graph,
    };
    renamed.write_file(&work.bundle).unwrap();
    assert_ne!(read(&work.bundle), old_bundle);

    let (runner2, _) = work.second_runner(&runner);
    let path = path_with_stand_in(&work, "ssh-test-stream.sh", "ssh");
    let out = deploy(
        &sshd,
        &work,
        &[ALIAS, "--runner", &runner2.display().to_string(), "--json"],
        &[("PATH", path), ("QVIT_TEST_SSH_MODE", mode.into())],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = json(&out)["boxes"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains(expect_in_error), "error {err:?}");
    work.assert_installed(&old_bundle, &old_runner);
}

#[test]
fn cut_stream_keeps_the_old_deployment() {
    damaged_stream_keeps_the_old_deployment(
        "cut_stream_keeps_the_old_deployment",
        "truncate",
        "through ssh",
    );
}

#[test]
fn short_stream_is_caught_by_the_checksum() {
    damaged_stream_keeps_the_old_deployment(
        "short_stream_is_caught_by_the_checksum",
        "short",
        "bytes",
    );
}

#[test]
fn corrupted_stream_is_caught_by_the_checksum() {
    damaged_stream_keeps_the_old_deployment(
        "corrupted_stream_is_caught_by_the_checksum",
        "corrupt",
        "verifying the upload",
    );
}
