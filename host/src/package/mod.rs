//! `qvit package`: a bundle in the form fleet tools deliver. Today: a Mender artifact for the
//! `qvit` update module that the qvit-run Debian package installs on the box.
//!
//! Everything local is checked before the artifact tool runs: the bundle decodes (checksum,
//! structure), and the name, directory and device types are values the update module accepts.
//! The artifact is written beside the output under a temporary name, validated with
//! `mender-artifact validate`, and only then renamed to the output path.

mod mender;

use anyhow::{Context, Result, ensure};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where the update module puts models unless `--dest` says otherwise.
pub const DEFAULT_DEST: &str = "/var/lib/qvit/models";

/// Package formats `qvit package` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A Mender artifact (module-image, type `qvit`), installed by the update module in the
    /// qvit-run Debian package.
    Mender,
}

/// What `qvit package` makes (the command line's flags of the same names).
#[derive(Debug, Clone)]
pub struct PackageOptions {
    /// Bundle to ship (.qvit).
    pub bundle: PathBuf,
    /// Package format.
    pub format: Format,
    /// Mender device types the artifact may install on.
    pub device_types: Vec<String>,
    /// Model name on the box (default: the bundle's file stem); the bundle becomes
    /// DEST/NAME.qvit.
    pub name: Option<String>,
    /// Absolute directory on the box.
    pub dest: String,
    /// Where to write the package.
    pub output: PathBuf,
    /// Artifact name (default: NAME-CRC).
    pub artifact_name: Option<String>,
    /// Private key (PEM) to sign the artifact with.
    pub key: Option<PathBuf>,
    /// The mender-artifact program.
    pub mender_artifact: PathBuf,
}

/// What `qvit package` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PackageReport {
    /// The artifact file.
    pub artifact: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The Mender artifact name (what `mender show-artifact` prints once installed).
    pub artifact_name: String,
    /// Payload type, the name of the update module that installs it.
    pub payload_type: String,
    /// Device types the artifact installs on.
    pub device_types: Vec<String>,
    /// The model's path on the box.
    pub installs: String,
    /// The bundle's CRC-32 (its trailing checksum), hex.
    pub bundle_crc32: String,
    /// Whether the artifact is signed.
    pub signed: bool,
}

/// The checked values of a package, ready for a format writer.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub bundle: PathBuf,
    pub name: String,
    pub dest: String,
    pub device_types: Vec<String>,
    pub artifact_name: String,
    pub crc32: String,
    pub format_version: u32,
}

/// Writes the package `opts` describes and says what it wrote.
pub fn package(opts: &PackageOptions) -> Result<PackageReport> {
    let plan = plan(opts)?;
    match opts.format {
        Format::Mender => mender::write(&plan, opts),
    }
}

/// Checks the bundle and every value that ends up on the box.
fn plan(args: &PackageOptions) -> Result<Plan> {
    let path = &args.bundle;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, stats) = qvit_device::bundle::Bundle::decode_with_stats(&bytes)
        .with_context(|| format!("{} is not a valid bundle; not packaging it", path.display()))?;
    // A decoded bundle ends with its verified little-endian CRC-32.
    let tail: [u8; 4] = bytes
        .len()
        .checked_sub(4)
        .and_then(|start| bytes[start..].try_into().ok())
        .context("bundle shorter than its checksum")?;
    let crc32 = format!("{:08x}", u32::from_le_bytes(tail));

    let name = match &args.name {
        Some(n) => n.clone(),
        None => default_name(path)?,
    };
    check_name(&name)?;
    let dest = check_dest(&args.dest)?;
    ensure!(
        !args.device_types.is_empty(),
        "give at least one --device-type"
    );
    for t in &args.device_types {
        check_token("--device-type", t)?;
    }
    let artifact_name = args
        .artifact_name
        .clone()
        .unwrap_or_else(|| format!("{name}-{crc32}"));
    check_token("--artifact-name", &artifact_name)?;
    let mut inputs = vec![path.as_path()];
    inputs.extend(args.key.as_deref());
    crate::files::check_outputs(&inputs, &[args.output.as_path()])?;
    Ok(Plan {
        bundle: path.clone(),
        name,
        dest,
        device_types: args.device_types.clone(),
        artifact_name,
        crc32,
        format_version: stats.format_version,
    })
}

fn default_name(bundle: &Path) -> Result<String> {
    let stem = bundle
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    check_name(&stem).with_context(|| {
        format!(
            "cannot name the model after {}; pass --name",
            bundle.display()
        )
    })?;
    Ok(stem)
}

/// A model name the update module accepts: a plain file name, no hidden files.
fn check_name(name: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._+-".contains(c);
    ensure!(
        !name.is_empty() && name.len() <= 128 && !name.starts_with('.') && name.chars().all(ok),
        "model name {name:?} must be 1 to 128 letters, digits, '.', '_', '+' or '-', not starting with '.'"
    );
    Ok(())
}

/// An absolute directory the update module accepts, without a trailing slash.
fn check_dest(dest: &str) -> Result<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._+-/".contains(c);
    ensure!(
        dest.starts_with('/') && dest.chars().all(ok) && !dest.contains(".."),
        "--dest {dest:?} must be an absolute path of letters, digits, '.', '_', '+', '-' and '/', without '..'"
    );
    let trimmed = dest.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_string())
}

/// A device type or artifact name: printable, no spaces or quotes (Mender compares them as
/// exact strings, and a space is almost always a mistake).
fn check_token(what: &str, value: &str) -> Result<()> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || "\"'\\".contains(c);
    ensure!(
        !value.is_empty() && value.len() <= 256 && !value.chars().any(bad),
        "{what} {value:?} must be 1 to 256 characters without spaces, quotes or backslashes"
    );
    Ok(())
}
