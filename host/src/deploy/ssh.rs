//! Runs the system's OpenSSH `ssh` and `scp` against one box. qvit stores no credentials: keys,
//! agents, jump hosts and aliases all come from the user's ssh setup (or `--ssh-config`).
//!
//! Files go up with `scp`, which speaks SFTP since OpenSSH 9.0. Boxes without an SFTP
//! subsystem (dropbear on Buildroot, OpenWrt or Yocto images; sshd without a `Subsystem sftp`
//! line) are recognised when that fails, and from then on get files streamed through a plain
//! ssh channel into `cat`, which needs nothing on the box but a POSIX shell.

use super::target::Target;
use anyhow::{Context, Result, bail};
use std::cell::Cell;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Options shared by every connection.
#[derive(Clone, Debug, Default)]
pub struct SshSetup {
    /// Passed as `-F FILE` to ssh and scp.
    pub config: Option<PathBuf>,
}

/// Options forced on top of the user's config. Boxes are handled in parallel without a
/// terminal, so a password or host-key prompt could never be answered (BatchMode); dead
/// links must end a deploy instead of hanging it (timeouts).
const FORCED: [&str; 4] = [
    "BatchMode=yes",
    "ConnectTimeout=15",
    "ServerAliveInterval=15",
    "ServerAliveCountMax=4",
];

/// How files reach a box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// `scp` (SFTP).
    Scp,
    /// `ssh BOX 'cat > FILE'` with the file on stdin: for boxes without SFTP.
    Stream,
}

/// One box reached through ssh/scp.
pub struct Remote<'a> {
    target: &'a Target,
    setup: &'a SshSetup,
    /// Settled by the first upload.
    transfer: Cell<Option<Transfer>>,
}

impl<'a> Remote<'a> {
    /// A handle on `target`; nothing connects until a command runs.
    pub fn new(target: &'a Target, setup: &'a SshSetup) -> Remote<'a> {
        Remote {
            target,
            setup,
            transfer: Cell::new(None),
        }
    }

    /// `ssh [options] -T -- DEST`, ready for a remote command.
    fn ssh(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.common_args());
        if let Some(p) = self.target.port {
            cmd.arg("-p").arg(p.to_string());
        }
        cmd.arg("-T");
        cmd
    }

    fn common_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(cfg) = &self.setup.config {
            args.push("-F".into());
            args.push(cfg.into());
        }
        for o in FORCED {
            args.push("-o".into());
            args.push(o.into());
        }
        args
    }

    /// Runs `script` with the login shell of the box and returns its output, whatever its exit
    /// status (ssh itself failing to connect exits 255).
    pub fn exec(&self, script: &str) -> Result<Output> {
        self.ssh()
            .arg("--")
            .arg(&self.target.dest)
            .arg(script)
            .stdin(Stdio::null())
            .output()
            .context("running ssh (is the OpenSSH client installed?)")
    }

    /// Runs `script` and fails, with its stderr, unless it exits 0. `what` names the step.
    pub fn run(&self, script: &str, what: &str) -> Result<String> {
        let out = self.exec(script)?;
        if !out.status.success() {
            bail!("{what} failed: {}", failure_text(&out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Copies `local` to `remote` (a path already checked by `shell::check_safe`) and says how.
    /// The first upload tries scp; if that fails on a box without SFTP, this and every later
    /// upload to the box are streamed through ssh instead.
    pub fn upload(&self, local: &Path, remote: &str) -> Result<Transfer> {
        if self.transfer.get() == Some(Transfer::Stream) {
            self.stream(local, remote)?;
            return Ok(Transfer::Stream);
        }
        match self.scp(local, remote) {
            Ok(()) => {
                self.transfer.set(Some(Transfer::Scp));
                Ok(Transfer::Scp)
            }
            Err(e) if self.transfer.get().is_some() || self.has_sftp() => Err(e),
            Err(scp) => {
                self.transfer.set(Some(Transfer::Stream));
                // The probe cannot tell a box without SFTP from one that stopped answering, so
                // a failure here reports both attempts.
                self.stream(local, remote).with_context(|| {
                    format!("{scp:#}; the box answered no SFTP, so it was tried through ssh")
                })?;
                Ok(Transfer::Stream)
            }
        }
    }

    fn scp(&self, local: &Path, remote: &str) -> Result<()> {
        let mut cmd = Command::new("scp");
        cmd.arg("-q").args(self.common_args());
        if let Some(p) = self.target.port {
            cmd.arg("-P").arg(p.to_string());
        }
        cmd.arg("--")
            .arg(local)
            .arg(format!("{}:{remote}", self.target.scp_dest));
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .context("running scp (is the OpenSSH client installed?)")?;
        if !out.status.success() {
            bail!(
                "copying {} to {remote} failed: {}",
                local.display(),
                failure_text(&out)
            );
        }
        Ok(())
    }

    /// `ssh BOX 'cat > REMOTE'` with `local` on stdin. The caller verifies the copy (cksum).
    fn stream(&self, local: &Path, remote: &str) -> Result<()> {
        let file =
            std::fs::File::open(local).with_context(|| format!("reading {}", local.display()))?;
        let out = self
            .ssh()
            .arg("--")
            .arg(&self.target.dest)
            .arg(format!("cat > {}", super::shell::quote(remote)))
            .stdin(file)
            .output()
            .context("running ssh (is the OpenSSH client installed?)")?;
        if !out.status.success() {
            bail!(
                "copying {} to {remote} through ssh failed: {}",
                local.display(),
                failure_text(&out)
            );
        }
        Ok(())
    }

    /// Whether the box answers on the SFTP subsystem: an `SSH_FXP_INIT` packet (version 3) must
    /// get an `SSH_FXP_VERSION` packet back. A missing subsystem (sshd says "subsystem request
    /// failed"; dropbear's shell says it cannot run sftp-server) gets no such answer.
    fn has_sftp(&self) -> bool {
        const INIT: [u8; 9] = [0, 0, 0, 5, 1, 0, 0, 0, 3];
        const VERSION: u8 = 2;
        let child = self
            .ssh()
            .arg("-s")
            .arg("--")
            .arg(&self.target.dest)
            .arg("sftp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            return false;
        };
        if let Some(mut stdin) = child.stdin.take() {
            // A box that closes the channel at once makes this write fail; the answer says.
            let _ = stdin.write_all(&INIT);
        }
        child
            .wait_with_output()
            .is_ok_and(|out| out.stdout.get(4) == Some(&VERSION))
    }
}

/// The useful part of a failed command's report: its last stderr lines (ssh's own warnings
/// such as "Permanently added … to the list of known hosts" dropped), or its exit status.
pub fn failure_text(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
    let status = match out.status.code() {
        Some(255) => "ssh could not connect or the connection broke (exit 255)".to_string(),
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_string(),
    };
    if tail.is_empty() {
        status
    } else {
        format!("{tail} ({status})")
    }
}
