//! The flags of `qvit deploy`.

use clap::Args;
use qvit_host::deploy::DeployOptions;
use std::path::PathBuf;

/// Arguments of `qvit deploy`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Each box gets DIR/qvit-run and DIR/<bundle name>. Both are uploaded under temporary names,
checked on the box (qvit-run --version, qvit-run info --verify), and only then renamed over the
old files, so a broken or interrupted transfer never replaces a working bundle.

ssh runs with your ~/.ssh/config, keys and agent (or --ssh-config), in BatchMode: set up key
login first (ssh-copy-id pi@raspberrypi.local). qvit stores no passwords.

Examples:
  qvit deploy vit.qvit pi@raspberrypi.local
  qvit deploy vit.qvit pi@10.0.0.7:2222 jetson --dir /opt/qvit --runner target/aarch64-unknown-linux-gnu/release/qvit-run
  qvit deploy vit.qvit @fleet.txt --bench --threads 4 --iters 100     # fleet.txt: one host per line, # comments
  qvit deploy vit.qvit @fleet.txt --bench --json --results lab-results > summary.json

With --bench, each box's `qvit-run bench --json` result (latency, peak RSS, tier, CPU, board) is
stored as RESULTS/<host>__<bundle>.json. The exit status is 0 only if every box succeeded.")]
pub struct DeployArgs {
    /// Bundle to deploy (.qvit).
    pub bundle: PathBuf,
    /// Boxes: `user@host[:port]`, a Host alias from the ssh config, or `@FILE` listing them.
    #[arg(required = true, value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Directory on the box; relative paths (and ~/…) are under the login's home.
    #[arg(long, value_name = "PATH", default_value = "qvit")]
    pub dir: String,
    /// qvit-run binary to install; must be built for the box's architecture
    /// [default: the qvit-run beside this qvit].
    #[arg(long, value_name = "PATH")]
    pub runner: Option<PathBuf>,
    /// Run `qvit-run bench --json` on each box and store the results.
    #[arg(long)]
    pub bench: bool,
    /// Threads for the benchmark.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "bench",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: u32,
    /// Timed iterations for the benchmark.
    #[arg(long, value_name = "N", default_value_t = 50, requires = "bench",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub iters: u32,
    /// Where benchmark results go, one JSON per box and bundle.
    #[arg(long, value_name = "DIR", default_value = "bench-results")]
    pub results: PathBuf,
    /// ssh config file, passed to ssh and scp as `-F FILE`.
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Print `{"boxes": [{"host", "ok", "error", "bench", …}]}` instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Boxes handled at once (each holds at most one ssh connection at a time).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: u32,
}

impl DeployArgs {
    /// The options these flags select.
    pub fn options(self) -> DeployOptions {
        DeployOptions {
            bundle: self.bundle,
            hosts: self.hosts,
            dir: self.dir,
            runner: self.runner,
            bench: self.bench,
            threads: self.threads,
            iters: self.iters,
            results: self.results,
            ssh_config: self.ssh_config,
            json: self.json,
            jobs: self.jobs,
        }
    }
}
