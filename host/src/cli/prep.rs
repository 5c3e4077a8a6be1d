//! The preprocessing flags of every command that reads images.

use clap::{Args, ValueEnum};
use qvit_host::prep::{PrepOptions, Preset};

/// Named preprocessing presets.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PresetArg {
    /// ImageNet: resize shorter side to 256/224 of the crop, centre crop, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    Imagenet,
    /// MNIST: 28×28 grayscale, mean 0.1307, std 0.3081.
    Mnist,
    /// Fashion-MNIST: 28×28 grayscale, mean 0.2860, std 0.3530.
    FashionMnist,
    /// Pixels scaled to [0, 1], nothing else.
    Unit,
    /// No normalisation, said explicitly: pixels scaled to [0, 1] as they are (as `unit`).
    None,
}

/// How images become the model's input (torchvision order: resize, centre crop, scale to [0, 1], normalise).
#[derive(Args, Clone, Debug, Default)]
pub struct PrepArgs {
    /// Preprocessing preset; flags below override its fields.
    #[arg(long, value_enum)]
    pub preset: Option<PresetArg>,
    /// Per-channel mean on pixels scaled to [0,1], e.g. 0.485,0.456,0.406.
    #[arg(long, value_delimiter = ',')]
    #[allow(rustdoc::broken_intra_doc_links)] // "[0,1]" is help text, not a link
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation, e.g. 0.229,0.224,0.225.
    #[arg(long, value_delimiter = ',')]
    pub std: Option<Vec<f32>>,
    /// Resize the shorter image side to this many pixels before cropping.
    #[arg(long)]
    pub resize: Option<u32>,
    /// Centre crop size, HEIGHT or HEIGHT,WIDTH (default: the model's input size).
    #[arg(long, value_delimiter = ',')]
    pub crop: Option<Vec<u32>>,
    /// Convert images to one gray channel.
    #[arg(long)]
    pub grayscale: bool,
}

impl PrepArgs {
    /// The options these flags select.
    pub fn options(&self) -> PrepOptions {
        PrepOptions {
            preset: self.preset.map(|p| match p {
                PresetArg::Imagenet => Preset::Imagenet,
                PresetArg::Mnist => Preset::Mnist,
                PresetArg::FashionMnist => Preset::FashionMnist,
                PresetArg::Unit | PresetArg::None => Preset::Unit,
            }),
            mean: self.mean.clone(),
            std: self.std.clone(),
            resize: self.resize,
            crop: self.crop.clone(),
            grayscale: self.grayscale,
        }
    }
}
