//! The deploy of one box: probe, upload to temporary names, verify on the box, rename into
//! place, optionally benchmark. Nothing at the final names changes until both the runner and
//! the bundle have been verified on the box, so an interrupted or corrupted transfer leaves the
//! previous deployment working.

use super::cksum;
use super::elf::{self, Arch};
use super::shell::{join, quote};
use super::ssh::{Remote, SshSetup, Transfer};
use super::target::Target;
use anyhow::{Context, Result, bail};
use qvit_device::bench_report::BenchReport;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Name of the runner on the box, inside the deploy directory.
pub const RUNNER_NAME: &str = "qvit-run";

/// What to deploy and how; the same for every box.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Local bundle.
    pub bundle: PathBuf,
    /// Its file name, also its name on the box (checked safe for remote paths).
    pub bundle_name: String,
    /// Local qvit-run to install.
    pub runner: PathBuf,
    /// The runner's architecture, from its ELF header.
    pub runner_arch: Arch,
    /// The runner's POSIX cksum (CRC, bytes): an identical runner on the box is kept.
    pub runner_cksum: (u32, u64),
    /// Deploy directory on the box (normalised by `shell::remote_dir`).
    pub dir: String,
    /// Benchmark after installing.
    pub bench: Option<BenchOptions>,
    /// Local directory for the benchmark JSON files.
    pub results: PathBuf,
    /// ssh/scp options.
    pub ssh: SshSetup,
}

/// Options of `qvit-run bench` on the box.
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    /// `--threads`.
    pub threads: u32,
    /// `--iters`.
    pub iters: u32,
}

/// The outcome for one box, as printed in the summary and in `--json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BoxReport {
    /// The box as given on the command line.
    pub host: String,
    /// Whether every step succeeded.
    pub ok: bool,
    /// What failed, if anything.
    pub error: Option<String>,
    /// `uname -m` of the box.
    pub arch: Option<String>,
    /// The board model from the device tree (Raspberry Pi, Jetson), when the box has one.
    pub board: Option<String>,
    /// The bundle's path on the box once installed.
    pub bundle: Option<String>,
    /// Where the benchmark result was stored locally.
    pub results_file: Option<String>,
    /// `qvit-run bench --json` output, with `host`, `arch` and `board` added.
    pub bench: Option<BoxBench>,
}

/// A box's benchmark as stored in `RESULTS/` and in `--json`: `qvit-run bench --json` output
/// with the box beside it, in one flat object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoxBench {
    /// The box as given on the command line.
    pub host: String,
    /// `uname -m` of the box.
    pub arch: String,
    /// The board model, when the box has a device tree.
    pub board: Option<String>,
    /// What `qvit-run bench --json` printed.
    #[serde(flatten)]
    pub run: BenchReport,
}

/// Deploys to one box; never fails as a whole, the failure is in the report.
pub fn deploy_box(plan: &Plan, target: &Target) -> BoxReport {
    let mut report = BoxReport {
        host: target.label.clone(),
        ..Default::default()
    };
    let log = |msg: &str| eprintln!("[{}] {msg}", target.label);
    match run_steps(plan, target, &mut report, &log) {
        Ok(()) => {
            report.ok = true;
            log("ok");
        }
        Err(e) => {
            let msg = format!("{e:#}");
            log(&format!("FAILED: {msg}"));
            report.error = Some(msg);
        }
    }
    report
}

fn run_steps(
    plan: &Plan,
    target: &Target,
    report: &mut BoxReport,
    log: &dyn Fn(&str),
) -> Result<()> {
    let remote = Remote::new(target, &plan.ssh);
    log("connecting");
    let probe = remote.run(
        "echo \"qvit-arch=$(uname -m)\"; \
         printf 'qvit-board=%s\\n' \"$( { tr -d '\\000' < /proc/device-tree/model; } 2>/dev/null)\"",
        "probing the box (uname -m)",
    )?;
    let (machine, board) = parse_probe(&probe);
    report.arch = Some(machine.clone());
    report.board = board;
    let box_arch = elf::uname_arch(&machine);
    if box_arch != Some(plan.runner_arch) {
        let hint = match box_arch.and_then(Arch::rust_target) {
            Some(t) => format!(
                "build qvit-run for it (cargo build --release --target {t} -p qvit-device --bin qvit-run) \
                 and pass it with --runner"
            ),
            None => "qvit-run has no build for this architecture".to_string(),
        };
        bail!(
            "the runner {} is built for {} but the box is {}; {hint}",
            plan.runner.display(),
            plan.runner_arch,
            if machine.is_empty() {
                "of unknown architecture"
            } else {
                &machine
            },
        );
    }

    let dir = &plan.dir;
    let suffix = temp_suffix();
    let runner_tmp = join(dir, &format!(".{RUNNER_NAME}{suffix}"));
    let bundle_tmp = join(dir, &format!(".{}{suffix}", plan.bundle_name));
    let runner_final = join(dir, RUNNER_NAME);
    let bundle_final = join(dir, &plan.bundle_name);

    // Temporaries left by a deploy killed a day or more ago are removed on the way; the
    // installed runner's cksum tells whether it needs replacing.
    let installed = remote.run(
        &format!(
            "mkdir -p -- {d} && {{ find {d} -maxdepth 1 -type f -name '.*.part-*' -mmin +1440 \
             -exec rm -f -- {{}} + 2>/dev/null || true; }} && {{ cksum < {r} 2>/dev/null || true; }}",
            d = quote(dir),
            r = quote(&runner_final)
        ),
        &format!("creating {dir} on the box"),
    )?;
    let new_runner = cksum::parse(&installed) != Some(plan.runner_cksum);
    if !new_runner {
        log("runner on the box is identical (cksum); keeping it");
    }
    let runner_tmp = new_runner.then_some(runner_tmp);

    let staged = stage(
        plan,
        &remote,
        runner_tmp.as_deref(),
        &runner_final,
        &bundle_tmp,
        log,
    );
    if let Err(e) = staged {
        // Best effort: the temporaries never shadow the installed files either way.
        let _ = remote.exec(&format!(
            "rm -f -- {} {}",
            quote(runner_tmp.as_deref().unwrap_or(&bundle_tmp)),
            quote(&bundle_tmp)
        ));
        return Err(e);
    }

    log("installing (atomic rename)");
    let runner_mv = runner_tmp.as_ref().map_or(String::new(), |t| {
        format!("mv -f -- {} {} && ", quote(t), quote(&runner_final))
    });
    remote.run(
        &format!(
            "{runner_mv}mv -f -- {} {}",
            quote(&bundle_tmp),
            quote(&bundle_final)
        ),
        "renaming into place",
    )?;
    report.bundle = Some(bundle_final.clone());

    if let Some(b) = plan.bench {
        log(&format!(
            "benchmarking ({} threads, {} iterations)",
            b.threads, b.iters
        ));
        let out = remote.run(
            &format!(
                "{} bench {} --json --threads {} --iters {}",
                quote(&runner_final),
                quote(&bundle_final),
                b.threads,
                b.iters
            ),
            "qvit-run bench",
        )?;
        let bench = BoxBench {
            host: target.label.clone(),
            arch: machine.clone(),
            board: report.board.clone(),
            run: parse_json_object(&out)?,
        };
        let file = write_result(plan, target, &bench)?;
        log(&format!("bench result in {}", file.display()));
        report.results_file = Some(file.display().to_string());
        report.bench = Some(bench);
    }
    Ok(())
}

/// Uploads the runner (when `runner_tmp` is given) and the bundle to their temporary names
/// and verifies both on the box: each copy's cksum against the local file's, then the runner
/// by starting it and the bundle by loading it with the runner that will run it.
fn stage(
    plan: &Plan,
    remote: &Remote,
    runner_tmp: Option<&str>,
    runner_installed: &str,
    bundle_tmp: &str,
    log: &dyn Fn(&str),
) -> Result<()> {
    if let Some(runner_tmp) = runner_tmp {
        log(&format!("uploading runner {}", plan.runner.display()));
        upload_verified(remote, &plan.runner, runner_tmp, plan.runner_cksum, log)?;
        let version = remote.run(
            &format!("chmod 755 {t} && {t} --version", t = quote(runner_tmp)),
            "starting the uploaded qvit-run",
        )?;
        if !version.starts_with("qvit-run") {
            bail!(
                "the uploaded runner does not identify as qvit-run (it printed {:?})",
                first_line(&version)
            );
        }
    }
    let runner = runner_tmp.unwrap_or(runner_installed);

    let bundle_cksum = cksum::file_cksum(&plan.bundle)?;
    log(&format!("uploading bundle ({} bytes)", bundle_cksum.1));
    upload_verified(remote, &plan.bundle, bundle_tmp, bundle_cksum, log)?;
    log("verifying bundle on the box (qvit-run info --verify)");
    remote.run(
        &format!(
            "{r} info --verify {b} > /dev/null",
            b = quote(bundle_tmp),
            r = quote(runner)
        ),
        "verifying the uploaded bundle",
    )?;
    Ok(())
}

/// Uploads `local` to `remote_path` and fails unless the box's `cksum` of the copy (CRC and
/// size) is the local file's `want`.
fn upload_verified(
    remote: &Remote,
    local: &Path,
    remote_path: &str,
    want: (u32, u64),
    log: &dyn Fn(&str),
) -> Result<()> {
    if remote.upload(local, remote_path)? == Transfer::Stream {
        log("  (the box has no SFTP: sent through an ssh channel)");
    }
    let out = remote.run(
        &format!("cksum < {}", quote(remote_path)),
        "checking the upload (cksum)",
    )?;
    let got = out.lines().rev().find_map(cksum::parse);
    if got != Some(want) {
        let seen = got.map_or_else(
            || format!("cksum printed {:?}", first_line(&out)),
            |(crc, n)| format!("received {n} of {} bytes, cksum {crc}", want.1),
        );
        bail!(
            "verifying the upload of {} failed: {seen}, expected cksum {}; the transfer was damaged",
            local.display(),
            want.0
        );
    }
    Ok(())
}

/// A suffix no other deploy (this process, another process, another host) picks at once.
fn temp_suffix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        ".part-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `uname -m` and the device-tree board model from the probe's marked lines (marked, because
/// a chatty login script may print before them).
fn parse_probe(out: &str) -> (String, Option<String>) {
    let field = |key: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    (
        field("qvit-arch=").unwrap_or_default(),
        field("qvit-board="),
    )
}

/// The JSON object in `out`, skipping anything a login script printed before it.
fn parse_json_object<T: DeserializeOwned>(out: &str) -> Result<T> {
    let start = out
        .find("\n{")
        .map(|i| i + 1)
        .or_else(|| out.starts_with('{').then_some(0));
    let text = start.map_or(out, |i| &out[i..]);
    serde_json::from_str(text).with_context(|| {
        format!(
            "qvit-run bench printed no JSON qvit can read (is the runner from this qvit's \
             version?): {:?}",
            first_line(out)
        )
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// File-name-safe form of a host label or bundle stem.
pub fn file_stem(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where the benchmark result of `target` goes: `RESULTS/<host>__<bundle stem>.json`.
pub fn result_path(plan: &Plan, target: &Target) -> PathBuf {
    let stem = Path::new(&plan.bundle_name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    plan.results.join(format!(
        "{}__{}.json",
        file_stem(&target.label),
        file_stem(&stem)
    ))
}

/// `RESULTS/<host>__<bundle>.json`: one file per box and bundle, replaced whole
/// ([`crate::files::write`]: written beside it, flushed, renamed).
fn write_result(plan: &Plan, target: &Target, bench: &BoxBench) -> Result<PathBuf> {
    std::fs::create_dir_all(&plan.results)
        .with_context(|| format!("creating {}", plan.results.display()))?;
    let path = result_path(plan, target);
    let text = serde_json::to_string_pretty(bench)? + "\n";
    crate::files::write(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_file_names_are_plain() {
        assert_eq!(file_stem("pi@10.0.0.7:2222"), "pi_10.0.0.7_2222");
        assert_eq!(file_stem("root@[::1]"), "root____1_");
        assert_eq!(file_stem("jetson-1"), "jetson-1");
    }

    #[test]
    fn probe_output_with_and_without_a_board() {
        let pi = "Welcome!\nqvit-arch=aarch64\nqvit-board=Raspberry Pi 4 Model B Rev 1.4\n";
        assert_eq!(
            parse_probe(pi),
            (
                "aarch64".into(),
                Some("Raspberry Pi 4 Model B Rev 1.4".into())
            )
        );
        assert_eq!(
            parse_probe("qvit-arch=x86_64\nqvit-board=\n"),
            ("x86_64".into(), None)
        );
        assert_eq!(parse_probe("sh: uname: not found\n"), (String::new(), None));
    }

    #[test]
    fn bench_json_after_login_chatter() {
        let v: serde_json::Value =
            parse_json_object("motd line\n{\n  \"latency_ms\": {\"p50\": 1.5}\n}\n").unwrap();
        assert_eq!(v["latency_ms"]["p50"], 1.5);
        assert!(parse_json_object::<serde_json::Value>("{\"a\": 1}").is_ok());
        assert!(parse_json_object::<serde_json::Value>("error: no bundle\n").is_err());
        // A runner whose JSON lacks the fields this qvit reads is an error, not blank columns.
        assert!(parse_json_object::<BenchReport>("{\"latency_ms\": {\"p50\": 1.5}}").is_err());
    }

    #[test]
    fn temp_suffixes_differ() {
        let a = temp_suffix();
        let b = temp_suffix();
        assert_ne!(a, b);
        assert!(a.starts_with(".part-"));
    }
}
