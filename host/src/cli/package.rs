//! The flags of `qvit package` and its output.

use anyhow::Result;
use clap::{Args, ValueEnum};
use qvit_host::package::{DEFAULT_DEST, Format, PackageOptions, package};
use std::path::PathBuf;

/// Package format on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A Mender artifact (module-image, type `qvit`), installed by the update module in the
    /// qvit-run Debian package.
    Mender,
}

/// Arguments of `qvit package`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
The artifact carries the bundle as NAME.qvit and installs it on the box as DEST/NAME.qvit
through the `qvit` Mender update module, which the qvit-run Debian package installs (see the
README's Fleets section). The module checks the bundle on the box (qvit-run info --verify and a
smoke inference) before it replaces the live one, keeps the replaced bundle as
DEST/NAME.qvit.previous and restores it on a failed or rolled-back deployment.

The artifact name defaults to NAME-CRC, CRC the bundle's own CRC-32, so the same bundle always
gets the same name and Mender sees a new bundle as a new version. Needs `mender-artifact`
(Debian/Ubuntu: apt-get install mender-artifact).

Examples:
  qvit package vit.qvit --format mender --device-type raspberrypi4 -o vit.mender
  qvit package vit-w4a4.qvit --format mender --device-type raspberrypi4 --device-type jetson-nano \\
      --name vit --dest /opt/vision/models --key artifact-signing.key -o vit-w4a4.mender
  mender-artifact read vit.mender          # what is inside
  mender install vit.mender                # on a box running the Mender client standalone")]
pub struct PackageArgs {
    /// Bundle to ship (.qvit).
    pub bundle: PathBuf,
    /// Package format.
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// Mender device type the artifact may install on, as in the box's
    /// /var/lib/mender/device_type (repeat for several).
    #[arg(long = "device-type", value_name = "TYPE", required = true)]
    pub device_types: Vec<String>,
    /// Model name on the box: the bundle becomes DEST/NAME.qvit [default: the bundle's file
    /// name without .qvit]. Letters, digits and . _ + - only.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Absolute directory on the box. Letters, digits and . _ + - / only.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DEST)]
    pub dest: String,
    /// Where to write the artifact (.mender).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Mender artifact name [default: NAME-CRC].
    #[arg(long, value_name = "NAME")]
    pub artifact_name: Option<String>,
    /// Sign the artifact with this private key (PEM; RSA or ECDSA P-256), for boxes whose
    /// mender.conf sets ArtifactVerifyKey.
    #[arg(long, value_name = "PEM")]
    pub key: Option<PathBuf>,
    /// The mender-artifact program.
    #[arg(long, value_name = "PATH", default_value = "mender-artifact")]
    pub mender_artifact: PathBuf,
    /// Print a JSON summary instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

impl PackageArgs {
    /// The options these flags select.
    pub fn options(self) -> PackageOptions {
        PackageOptions {
            bundle: self.bundle,
            format: match self.format {
                FormatArg::Mender => Format::Mender,
            },
            device_types: self.device_types,
            name: self.name,
            dest: self.dest,
            output: self.output,
            artifact_name: self.artifact_name,
            key: self.key,
            mender_artifact: self.mender_artifact,
        }
    }
}

/// Runs `qvit package`: writes the package, then a sentence (or JSON) about it.
pub fn run(args: PackageArgs) -> Result<()> {
    let json = args.json;
    let report = package(&args.options())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "wrote {} ({} bytes): Mender artifact {}, type {}, for {}; installs {} \
             (the box needs the qvit-run package and the Mender client){}",
            report.artifact,
            report.bytes,
            report.artifact_name,
            report.payload_type,
            report.device_types.join(", "),
            report.installs,
            if report.signed { "; signed" } else { "" }
        );
    }
    Ok(())
}
