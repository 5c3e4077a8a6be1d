//! `qvit deploy`: copy a bundle and qvit-run to ARM boards over SSH, verify, benchmark.
//!
//! Each box: `uname -m` against the runner's ELF machine, upload of runner and bundle to
//! temporary names in the deploy directory, `qvit-run --version` and `qvit-run info --verify`
//! on the box, then `mv -f` into place (atomic within one directory), then optionally
//! `qvit-run bench --json`. Boxes run in parallel, at most `--jobs` at a time.

mod cksum;
mod elf;
mod shell;
mod ssh;
mod steps;
mod summary;
mod target;

pub use steps::{BoxBench, BoxReport};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// What `qvit deploy` does (the command line's flags of the same names).
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Bundle to deploy (.qvit).
    pub bundle: PathBuf,
    /// Boxes: `user@host[:port]`, a Host alias from the ssh config, or `@FILE` listing them.
    pub hosts: Vec<String>,
    /// Directory on the box; relative paths (and ~/…) are under the login's home.
    pub dir: String,
    /// qvit-run binary to install (default: the qvit-run beside this qvit).
    pub runner: Option<PathBuf>,
    /// Run `qvit-run bench --json` on each box and store the results.
    pub bench: bool,
    /// Threads for the benchmark.
    pub threads: u32,
    /// Timed iterations for the benchmark.
    pub iters: u32,
    /// Where benchmark results go, one JSON per box and bundle.
    pub results: PathBuf,
    /// ssh config file, passed to ssh and scp as `-F FILE`.
    pub ssh_config: Option<PathBuf>,
    /// Print JSON instead of a table.
    pub json: bool,
    /// Boxes handled at once.
    pub jobs: u32,
}

/// Runs `qvit deploy`: fails (after printing the summary) unless every box succeeded.
pub fn run(args: DeployOptions) -> Result<()> {
    let plan = plan(&args)?;
    let targets = target::expand(&args.hosts)?;
    if plan.bench.is_some() {
        check_results(&args, &plan, &targets)?;
    }
    let reports = run_all(&targets, args.jobs as usize, |t| {
        steps::deploy_box(&plan, t)
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary::json(&reports))?
        );
    } else {
        print!("{}", summary::table(&reports, args.bench));
    }
    let failed = reports.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        bail!("{failed} of {} boxes failed", reports.len());
    }
    Ok(())
}

/// Checks everything local before any connection: the bundle loads, the runner is an ELF file.
fn plan(args: &DeployOptions) -> Result<steps::Plan> {
    qvit_device::bundle::Bundle::read_file(&args.bundle).with_context(|| {
        format!(
            "{} is not a valid bundle; not deploying it",
            args.bundle.display()
        )
    })?;
    let bundle_name = args
        .bundle
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("the bundle path has no file name")?;
    shell::check_safe(&bundle_name, "bundle name")?;
    if bundle_name == steps::RUNNER_NAME {
        bail!("the bundle may not be named {bundle_name:?}: the runner has that name on the box");
    }
    let runner = match &args.runner {
        Some(r) => r.clone(),
        None => default_runner()?,
    };
    let runner_arch = elf::file_arch(&runner)?;
    let runner_cksum = cksum::file_cksum(&runner)?;
    if let Some(cfg) = &args.ssh_config
        && !cfg.is_file()
    {
        bail!("--ssh-config {}: no such file", cfg.display());
    }
    Ok(steps::Plan {
        bundle: args.bundle.clone(),
        bundle_name,
        runner,
        runner_arch,
        runner_cksum,
        dir: shell::remote_dir(&args.dir)?,
        bench: args.bench.then_some(steps::BenchOptions {
            threads: args.threads,
            iters: args.iters,
        }),
        results: args.results.clone(),
        ssh: ssh::SshSetup {
            config: args.ssh_config.clone(),
        },
    })
}

/// Refuses, before any connection, a `--results` that cannot hold the result files (a file, or
/// under a file) and result files that would replace an input (the bundle, the runner, the ssh
/// config, a host list), so a finished benchmark is never lost to a bad path.
fn check_results(
    args: &DeployOptions,
    plan: &steps::Plan,
    targets: &[target::Target],
) -> Result<()> {
    let results = &args.results;
    if let Some(existing) = results.ancestors().find(|a| a.exists())
        && !existing.is_dir()
    {
        bail!(
            "--results {}: {} is a file; --results names the folder that receives one JSON \
             file per box: give a folder path",
            results.display(),
            existing.display()
        );
    }
    if !results.is_dir() {
        return Ok(()); // created on the first result; nothing in it can be an input yet
    }
    let mut inputs: Vec<&Path> = vec![&plan.bundle, &plan.runner];
    inputs.extend(args.ssh_config.as_deref());
    inputs.extend(
        args.hosts
            .iter()
            .filter_map(|h| h.strip_prefix('@'))
            .map(Path::new),
    );
    let outputs: Vec<PathBuf> = targets
        .iter()
        .map(|t| steps::result_path(plan, t))
        .collect();
    let outputs: Vec<&Path> = outputs.iter().map(PathBuf::as_path).collect();
    crate::files::check_outputs(&inputs, &outputs)
}

/// `qvit-run` in the directory of the running `qvit`.
fn default_runner() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the qvit executable")?;
    let runner = exe
        .parent()
        .unwrap_or(Path::new("."))
        .join(steps::RUNNER_NAME);
    if !runner.is_file() {
        bail!(
            "no qvit-run beside qvit ({}); build it (cargo build --release -p qvit-device --bin qvit-run) \
             or pass --runner",
            runner.display()
        );
    }
    Ok(runner)
}

/// Runs `deploy` for every target with at most `jobs` in flight; reports in input order.
///
/// A pool of its own with `jobs` threads bounds the boxes handled at once (the global pool
/// has one thread a core, unrelated to how many ssh sessions are wanted); one box per task,
/// so a slow box does not hold back the ones queued behind it.
fn run_all(
    targets: &[target::Target],
    jobs: usize,
    deploy: impl Fn(&target::Target) -> BoxReport + Sync,
) -> Result<Vec<BoxReport>> {
    let threads = jobs.clamp(1, targets.len().max(1));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("qvit-deploy-{i}"))
        .build()
        .with_context(|| format!("starting {threads} deploy threads"))?;
    Ok(pool.install(|| targets.par_iter().with_max_len(1).map(&deploy).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Never more than `jobs` boxes at once, every box once, reports in input order.
    #[test]
    fn pool_is_bounded_and_keeps_order() {
        let targets: Vec<_> = (0..12)
            .map(|i| target::parse_target(&format!("pi@box{i}")).unwrap())
            .collect();
        for jobs in [1, 3, 64] {
            let in_flight = AtomicUsize::new(0);
            let peak = AtomicUsize::new(0);
            let reports = run_all(&targets, jobs, |t| {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                in_flight.fetch_sub(1, Ordering::SeqCst);
                BoxReport {
                    host: t.label.clone(),
                    ok: t.label.ends_with('3'),
                    ..Default::default()
                }
            })
            .unwrap();
            let hosts: Vec<_> = reports.iter().map(|r| r.host.clone()).collect();
            let want: Vec<_> = targets.iter().map(|t| t.label.clone()).collect();
            assert_eq!(hosts, want);
            assert_eq!(reports.iter().filter(|r| r.ok).count(), 1);
            let p = peak.load(Ordering::SeqCst);
            assert!(
                p >= 1 && p <= jobs.min(targets.len()),
                "jobs {jobs}: peak {p}"
            );
        }
    }
}
