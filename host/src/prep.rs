//! Preprocessing options shared by `quantize` and `eval`: a named preset or explicit flags.

use anyhow::{Result, bail, ensure};
use clap::{Args, ValueEnum};
use qvit_device::{Layout, Preprocess};

/// Named preprocessing presets.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Preset {
    /// ImageNet: resize shorter side to 256/224 of the crop, centre crop, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    Imagenet,
    /// MNIST: 28×28 grayscale, mean 0.1307, std 0.3081.
    Mnist,
    /// Fashion-MNIST: 28×28 grayscale, mean 0.2860, std 0.3530.
    FashionMnist,
    /// Pixels scaled to [0, 1], nothing else.
    Unit,
}

/// How images become the model's input (torchvision order: resize, centre crop, scale to [0, 1], normalise).
#[derive(Args, Clone, Debug, Default)]
pub struct PrepArgs {
    /// Preprocessing preset; flags below override its fields.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Per-channel mean on pixels scaled to [0,1], e.g. 0.485,0.456,0.406.
    #[arg(long, value_delimiter = ',')]
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
    /// Whether any option was given.
    pub fn given(&self) -> bool {
        self.preset.is_some()
            || self.mean.is_some()
            || self.std.is_some()
            || self.resize.is_some()
            || self.crop.is_some()
            || self.grayscale
    }

    /// The preprocessing for a model with NCHW input `shape`; `None` when nothing was given
    /// and the input is not an image.
    pub fn resolve(&self, shape: &[usize]) -> Result<Preprocess> {
        let [_, c, h, w] = shape else {
            bail!("image preprocessing needs an NCHW input, the model takes {shape:?}");
        };
        let (c, h, w) = (*c, *h as u32, *w as u32);
        let mut p = match self.preset {
            Some(Preset::Imagenet) => Preprocess::imagenet(h),
            Some(Preset::Mnist) => Preprocess::mnist(),
            Some(Preset::FashionMnist) => Preprocess {
                mean: vec![0.2860],
                std: vec![0.3530],
                ..Preprocess::mnist()
            },
            Some(Preset::Unit) | None => Preprocess {
                resize: None,
                crop: [h, w],
                mean: vec![0.0; c],
                std: vec![1.0; c],
                grayscale: c == 1,
                layout: Layout::Nchw,
            },
        };
        if self.preset.is_some() && p.crop != [h, w] {
            p.resize = p.resize.map(|r| r * h / p.crop[0].max(1));
            p.crop = [h, w];
        }
        if let Some(m) = &self.mean {
            p.mean = m.clone();
        }
        if let Some(s) = &self.std {
            p.std = s.clone();
        }
        if self.resize.is_some() {
            p.resize = self.resize;
        }
        if let Some(cr) = &self.crop {
            p.crop = match cr.as_slice() {
                [s] => [*s, *s],
                [a, b] => [*a, *b],
                _ => bail!("--crop takes SIZE or HEIGHT,WIDTH"),
            };
        }
        if self.grayscale {
            p.grayscale = true;
        }
        ensure!(
            p.crop == [h, w],
            "crop {:?} does not match the model's input {h}×{w}",
            p.crop
        );
        ensure!(
            p.channels() == c,
            "the model takes {c} channels; preprocessing gives {}",
            p.channels()
        );
        ensure!(
            p.mean.len() == c && p.std.len() == c,
            "--mean and --std need {c} values each"
        );
        ensure!(
            p.std.iter().all(|s| *s > 0.0 && s.is_finite()),
            "--std values must be positive"
        );
        Ok(p)
    }
}
