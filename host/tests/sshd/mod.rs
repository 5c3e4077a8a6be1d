//! A throwaway OpenSSH server on 127.0.0.1 for the `qvit deploy` tests: host key, user key,
//! port and client config made fresh, the server killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The client config's name for the server.
pub const ALIAS: &str = "testbox";
/// The client config's name for a closed port on the same host.
pub const DEAD_ALIAS: &str = "deadbox";

pub use tempfile::TempDir;

/// A fresh directory under the cargo target's tmp dir, removed on drop.
pub fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("deploy-{tag}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a directory under the cargo target's tmp dir")
}

/// An sshd on 127.0.0.1 plus a client config reaching it as `testbox` (and `deadbox`, a closed
/// port). Killed on drop.
pub struct Sshd {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// A client config reaching it as [`ALIAS`].
    pub client_config: PathBuf,
    /// Its log file.
    pub log: PathBuf,
    _dir: TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn keygen(path: &Path) -> Result<(), String> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .map_err(|e| format!("ssh-keygen: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Starts sshd, or says why it cannot.
pub fn start_sshd() -> Result<Sshd, String> {
    let sshd = ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("no sshd (apt-get install openssh-server; scripts/setup.sh does)")?;
    let user = String::from_utf8(
        Command::new("id")
            .arg("-un")
            .output()
            .map_err(|e| e.to_string())?
            .stdout,
    )
    .map_err(|e| e.to_string())?
    .trim()
    .to_string();
    let dir = temp_dir("sshd");
    let d = dir.path();
    keygen(&d.join("host_key"))?;
    keygen(&d.join("user_key"))?;
    std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).map_err(|e| e.to_string())?;
    // sshd refuses to start without its privilege-separation directory.
    std::fs::create_dir_all("/run/sshd").map_err(|e| format!("creating /run/sshd: {e}"))?;
    let log = d.join("sshd.log");
    for _attempt in 0..3 {
        let port = free_port();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 PidFile {pid}\nStrictModes no\nUsePAM no\nPermitRootLogin yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nAllowUsers {user}\nSubsystem sftp internal-sftp\n",
                hk = d.join("host_key").display(),
                ak = d.join("authorized_keys").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut child = Command::new(sshd)
            .arg("-D")
            .arg("-f")
            .arg(&config)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {sshd}: {e}"))?;
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
        "sshd did not start; its log: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    ))
}
