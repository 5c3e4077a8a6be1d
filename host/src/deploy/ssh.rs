//! Runs the system's OpenSSH `ssh` and `scp` against one box. qvit stores no credentials: keys,
//! agents, jump hosts and aliases all come from the user's ssh setup (or `--ssh-config`).

use super::target::Target;
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
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

/// One box reached through ssh/scp.
pub struct Remote<'a> {
    target: &'a Target,
    setup: &'a SshSetup,
}

impl<'a> Remote<'a> {
    /// A handle on `target`; nothing connects until a command runs.
    pub fn new(target: &'a Target, setup: &'a SshSetup) -> Remote<'a> {
        Remote { target, setup }
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
        let mut cmd = Command::new("ssh");
        cmd.args(self.common_args());
        if let Some(p) = self.target.port {
            cmd.arg("-p").arg(p.to_string());
        }
        cmd.arg("-T").arg("--").arg(&self.target.dest).arg(script);
        cmd.stdin(Stdio::null())
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

    /// Copies `local` to `remote` (a path already checked by `shell::check_safe`).
    pub fn upload(&self, local: &Path, remote: &str) -> Result<()> {
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
