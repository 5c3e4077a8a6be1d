//! What the `qvit deploy` tests share: throwaway SSH servers on 127.0.0.1 (OpenSSH's sshd with
//! or without SFTP, dropbear with or without it), a client config reaching them as `testbox`
//! (and `deadbox`, a closed port), the test bundle, a deploy directory, and runs of `qvit deploy`.
//! The "box" is this machine, so the x86_64 qvit-run is the matching runner and the deployed
//! files can be compared byte for byte.
//!
//! Needs /usr/sbin/sshd (openssh-server), /usr/sbin/dropbear (dropbear-bin), root for dropbear
//! (it runs in a private mount namespace, see `start_dropbear`) and target/debug/qvit-run;
//! scripts/setup.sh installs the packages. Without them a test prints SKIPPED, or fails when
//! `CI=true`.
#![allow(dead_code)] // Each test crate uses a different subset.

use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub const QVIT: &str = env!("CARGO_BIN_EXE_qvit");
pub const ALIAS: &str = "testbox";
pub const DEAD_ALIAS: &str = "deadbox";

pub use tempfile::TempDir;

/// A fresh directory under the cargo target's tmp dir, removed on drop.
pub fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("deploy-{tag}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a directory under the cargo target's tmp dir")
}

/// Which SSH server plays the box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// OpenSSH's sshd; `sftp: false` leaves out the `Subsystem sftp` line.
    OpenSsh { sftp: bool },
    /// dropbear; `sftp: false` makes its sftp-server unrunnable, as on images that lack it.
    Dropbear { sftp: bool },
}

/// A server on 127.0.0.1 plus a client config reaching it as `testbox`. Killed on drop.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub client_config: PathBuf,
    pub log: PathBuf,
    _dir: TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn keygen(path: &Path) -> Result<(), String> {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path))
    .map(drop)
}

fn user() -> Result<String, String> {
    run(Command::new("id").arg("-un"))
}

/// Starts `server`, or says why it cannot.
pub fn start(server: Server) -> Result<Sshd, String> {
    let user = user()?;
    let dir = temp_dir("sshd");
    let d = dir.path();
    keygen(&d.join("user_key"))?;
    let log = d.join("sshd.log");
    for _attempt in 0..3 {
        let port = free_port();
        let mut child = match server {
            Server::OpenSsh { sftp } => start_openssh(d, port, &user, sftp, &log)?,
            Server::Dropbear { sftp } => start_dropbear(d, port, sftp, &log)?,
        };
        let mut up = false;
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !up {
            let _ = child.kill();
            let _ = child.wait();
            continue;
        }
        let client_config = d.join("ssh_config");
        std::fs::write(
            &client_config,
            format!(
                "Host {ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n\
                 Host {DEAD_ALIAS}\n  HostName 127.0.0.1\n  Port {dead}\n\
                 Host *\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n\
                 StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n\
                 LogLevel ERROR\n",
                dead = free_port(),
                key = d.join("user_key").display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        return Ok(Sshd {
            child,
            port,
            client_config,
            log,
            _dir: dir,
        });
    }
    Err(format!(
        "{server:?} did not start; its log: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    ))
}

fn start_openssh(d: &Path, port: u16, user: &str, sftp: bool, log: &Path) -> Result<Child, String> {
    let sshd = ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("no sshd (apt-get install openssh-server; scripts/setup.sh does)")?;
    if !d.join("host_key").exists() {
        keygen(&d.join("host_key"))?;
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys"))
            .map_err(|e| e.to_string())?;
    }
    // sshd refuses to start without its privilege-separation directory.
    std::fs::create_dir_all("/run/sshd").map_err(|e| format!("creating /run/sshd: {e}"))?;
    let config = d.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             PidFile {pid}\nStrictModes no\nUsePAM no\nPermitRootLogin yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nAllowUsers {user}\n{subsystem}",
            hk = d.join("host_key").display(),
            ak = d.join("authorized_keys").display(),
            pid = d.join("sshd.pid").display(),
            subsystem = if sftp {
                "Subsystem sftp internal-sftp\n"
            } else {
                ""
            },
        ),
    )
    .map_err(|e| e.to_string())?;
    Command::new(sshd)
        .arg("-D")
        .arg("-f")
        .arg(&config)
        .arg("-E")
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {sshd}: {e}"))
}

/// Where Debian's dropbear runs its SFTP server from (compiled in).
const DROPBEAR_SFTP_SERVER: &str = "/usr/lib/sftp-server";

/// dropbear reads keys only from `~/.ssh/authorized_keys` of the login's home in
/// /etc/passwd, and runs the SFTP server from a fixed path. So it runs in a private mount
/// namespace (`unshare -m`, root only) where a scratch directory is mounted over the home, and
/// for `sftp: false` a non-executable file over the SFTP server: nothing outside the namespace
/// changes.
fn start_dropbear(d: &Path, port: u16, sftp: bool, log: &Path) -> Result<Child, String> {
    let dropbear = ["/usr/sbin/dropbear", "/usr/local/sbin/dropbear"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("no dropbear (apt-get install dropbear-bin; scripts/setup.sh does)")?;
    if run(Command::new("id").arg("-u"))? != "0" {
        return Err("dropbear tests need root (a private mount namespace)".into());
    }
    let home = run(Command::new("sh").args(["-c", "getent passwd \"$(id -u)\" | cut -d: -f6"]))?;
    if Path::new(env!("CARGO_TARGET_TMPDIR")).starts_with(&home) {
        return Err(format!(
            "the test directories are under {home}, which the dropbear test hides"
        ));
    }
    let fake_home = d.join("home");
    if !fake_home.exists() {
        let ssh_dir = fake_home.join(".ssh");
        std::fs::create_dir_all(&ssh_dir).map_err(|e| e.to_string())?;
        std::fs::copy(d.join("user_key.pub"), ssh_dir.join("authorized_keys"))
            .map_err(|e| e.to_string())?;
        run(Command::new("chmod").args(["700"]).arg(&ssh_dir))?;
        run(Command::new("dropbearkey")
            .args(["-t", "ed25519", "-f"])
            .arg(d.join("dropbear_host_key")))?;
        std::fs::write(d.join("no-sftp-server"), "").map_err(|e| e.to_string())?;
    }
    let hide_sftp = !sftp && Path::new(DROPBEAR_SFTP_SERVER).exists();
    let script = "mount --bind \"$1\" \"$2\" && \
                  { [ -z \"$3\" ] || mount --bind \"$3\" \"$4\"; } && \
                  exec \"$5\" -F -E -s -m -r \"$6\" -p \"127.0.0.1:$7\" -P \"$8\"";
    let log_file = std::fs::File::create(log).map_err(|e| e.to_string())?;
    Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&fake_home)
        .arg(&home)
        .arg(if hide_sftp {
            d.join("no-sftp-server")
        } else {
            PathBuf::new()
        })
        .arg(DROPBEAR_SFTP_SERVER)
        .arg(dropbear)
        .arg(d.join("dropbear_host_key"))
        .arg(port.to_string())
        .arg(d.join("dropbear.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("starting dropbear through unshare: {e}"))
}

/// A missing prerequisite: SKIPPED locally, a failure under `CI=true`.
pub fn unavailable(test: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {why} (CI=true: prerequisites must be installed; run scripts/setup.sh)");
    }
    eprintln!("SKIPPED {test}: {why}");
}

pub fn qvit_run() -> Option<PathBuf> {
    let p = Path::new(QVIT).with_file_name("qvit-run");
    p.is_file().then_some(p)
}

/// The test bundle, built once per test process with `qvit quantize --float` (written under a
/// private name, then renamed, so concurrent test processes never see a half-written file).
pub fn bundle() -> &'static Path {
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

/// A running `server` and the runner to deploy, or None after saying why not.
pub fn setup_with(test: &str, server: Server) -> Option<(Sshd, PathBuf)> {
    let Some(runner) = qvit_run() else {
        unavailable(
            test,
            "no qvit-run beside qvit (cargo build -p qvit-device --bin qvit-run)",
        );
        return None;
    };
    match start(server) {
        Ok(s) => Some((s, runner)),
        Err(why) => {
            unavailable(test, &why);
            None
        }
    }
}

/// [`setup_with`] an OpenSSH server with SFTP.
pub fn setup(test: &str) -> Option<(Sshd, PathBuf)> {
    setup_with(test, Server::OpenSsh { sftp: true })
}

/// A deploy directory on the "box" and a copy of the bundle named `m.qvit`.
pub struct Work {
    pub tmp: TempDir,
    pub bundle: PathBuf,
}

impl Work {
    pub fn new(tag: &str) -> Work {
        let tmp = temp_dir(tag);
        let bundle = tmp.path().join("m.qvit");
        std::fs::copy(self::bundle(), &bundle).unwrap();
        Work { tmp, bundle }
    }
    pub fn remote_dir(&self) -> PathBuf {
        self.tmp.path().join("box")
    }
    pub fn results(&self) -> PathBuf {
        self.tmp.path().join("results")
    }
    /// Files in the deploy directory, sorted.
    pub fn remote_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.remote_dir())
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
    /// The installed bundle and runner.
    pub fn installed(&self) -> (Vec<u8>, Vec<u8>) {
        (
            read(&self.remote_dir().join("m.qvit")),
            read(&self.remote_dir().join("qvit-run")),
        )
    }
    /// The box holds exactly `bundle` and `runner`, and no temporary beside them.
    pub fn assert_installed(&self, bundle: &[u8], runner: &[u8]) {
        let (b, r) = self.installed();
        assert!(b == bundle, "the installed bundle differs");
        assert!(r == runner, "the installed runner differs");
        assert_eq!(
            self.remote_files(),
            ["m.qvit", "qvit-run"],
            "temporaries left"
        );
    }
    /// A second runner that differs in bytes but still runs (an ELF ignores trailing data).
    pub fn second_runner(&self, runner: &Path) -> (PathBuf, Vec<u8>) {
        let path = self.tmp.path().join("qvit-run-2");
        let mut bytes = read(runner);
        bytes.extend_from_slice(b"second build");
        std::fs::write(&path, &bytes).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        (path, bytes)
    }
}

pub fn deploy(sshd: &Sshd, work: &Work, extra: &[&str], env: &[(&str, String)]) -> Output {
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

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// PATH with `scripts/SCRIPT` linked as `name` in front (a stand-in that damages transfers).
pub fn path_with_stand_in(work: &Work, script: &str, name: &str) -> String {
    let bin = work.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(script);
    let _ = std::fs::remove_file(bin.join(name));
    std::os::unix::fs::symlink(script.canonicalize().unwrap(), bin.join(name)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}
