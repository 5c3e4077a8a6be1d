//! The Mender artifact: a module-image of payload type `qvit`, written by the real
//! `mender-artifact` tool so the format is exactly what Mender clients and servers read.

use super::{PackageOptions, PackageReport, Plan};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Payload type = name of the update module on the box (/usr/share/mender/modules/v3/qvit).
pub(super) const PAYLOAD_TYPE: &str = "qvit";

/// Provides are `qvit-model.NAME.version`: each model name is versioned on its own, and
/// installing one model never clears another's provides.
const SOFTWARE_FILESYSTEM: &str = "qvit-model";

/// Writes the artifact of `plan` to `args.output` (see the module doc of `package`).
pub(super) fn write(plan: &Plan, args: &PackageOptions) -> Result<PackageReport> {
    let out = &args.output;
    // Its existence was checked with the output path (`host::files::check_outputs`).
    let out_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Some(key) = &args.key
        && !key.is_file()
    {
        bail!("signing key {} does not exist", key.display());
    }
    // Staged beside the output: the payload can be a hard link of the bundle, and the final
    // rename cannot cross filesystems.
    let stage = tempfile::Builder::new()
        .prefix(".qvit-package-")
        .tempdir_in(out_dir)
        .with_context(|| format!("creating a staging directory in {}", out_dir.display()))?;
    // The payload's file name is what the update module installs: DEST/NAME.qvit.
    let payload = stage.path().join(format!("{}.qvit", plan.name));
    if std::fs::hard_link(&plan.bundle, &payload).is_err() {
        std::fs::copy(&plan.bundle, &payload)
            .with_context(|| format!("copying {}", plan.bundle.display()))?;
    }
    let meta = stage.path().join("meta-data.json");
    std::fs::write(&meta, meta_data(plan)?)
        .with_context(|| format!("writing {}", meta.display()))?;

    let staged_out = stage.path().join("artifact.mender");
    let mut cmd = Command::new(&args.mender_artifact);
    cmd.args(["write", "module-image", "--type", PAYLOAD_TYPE])
        .args(["--artifact-name", &plan.artifact_name]);
    for t in &plan.device_types {
        cmd.args(["--device-type", t]);
    }
    cmd.arg("--file")
        .arg(&payload)
        .arg("--meta-data")
        .arg(&meta)
        .args(["--software-filesystem", SOFTWARE_FILESYSTEM])
        .args(["--software-name", &plan.name])
        .arg("--output-path")
        .arg(&staged_out);
    if let Some(key) = &args.key {
        cmd.arg("--key").arg(key);
    }
    run_tool(cmd, &args.mender_artifact, "writing the artifact")?;

    // `validate` insists on the public key of a signed artifact, which qvit does not have;
    // `read` still parses every part of it.
    let mut check = Command::new(&args.mender_artifact);
    check
        .arg(if args.key.is_some() {
            "read"
        } else {
            "validate"
        })
        .arg(&staged_out);
    run_tool(check, &args.mender_artifact, "validating the artifact")?;

    // Flushed before the rename, so a crash never leaves a named but empty artifact.
    std::fs::File::open(&staged_out)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("flushing {}", staged_out.display()))?;
    std::fs::rename(&staged_out, out)
        .with_context(|| format!("moving the artifact to {}", out.display()))?;
    let bytes = std::fs::metadata(out)
        .with_context(|| format!("reading {}", out.display()))?
        .len();
    Ok(PackageReport {
        artifact: out.display().to_string(),
        bytes,
        artifact_name: plan.artifact_name.clone(),
        payload_type: PAYLOAD_TYPE.to_string(),
        device_types: plan.device_types.clone(),
        installs: format!("{}/{}.qvit", plan.dest.trim_end_matches('/'), plan.name),
        bundle_crc32: plan.crc32.clone(),
        signed: args.key.is_some(),
    })
}

/// The payload's meta-data: what the update module needs (name, dest) plus facts an operator
/// sees in `mender-artifact read` and the server UI. Values are restricted to characters the
/// module's shell parser reads exactly (see `check_name`, `check_dest`).
fn meta_data(plan: &Plan) -> Result<String> {
    let v = serde_json::json!({
        "name": plan.name,
        "dest": plan.dest,
        "bundle_crc32": plan.crc32,
        "format_version": plan.format_version,
    });
    Ok(serde_json::to_string_pretty(&v)?)
}

/// Runs one `mender-artifact` command with a spinner; its output is shown only on failure.
fn run_tool(mut cmd: Command, tool: &Path, what: &str) -> Result<Output> {
    let spinner = indicatif::ProgressBar::new_spinner().with_message(what.to_string());
    spinner.enable_steady_tick(Duration::from_millis(120));
    let out = cmd.output();
    spinner.finish_and_clear();
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} not found: install mender-artifact (Debian/Ubuntu: apt-get install mender-artifact) \
             or pass --mender-artifact PATH",
            tool.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("running {}", tool.display())),
    };
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let text = if text.is_empty() {
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        } else {
            text
        };
        bail!("{what} failed ({}, {}): {text}", tool.display(), out.status);
    }
    Ok(out)
}
