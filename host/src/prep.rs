//! Preprocessing options shared by every command that reads images: a named preset, fields that
//! override it, and their resolution against the model's input shape.

use anyhow::{Result, bail, ensure};
use qvit_device::{Layout, Preprocess};

/// Named preprocessing presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// ImageNet: resize the shorter side to 256/224 of the crop, centre crop, ImageNet mean and std.
    Imagenet,
    /// MNIST: 28×28 grayscale, mean 0.1307, std 0.3081.
    Mnist,
    /// Fashion-MNIST: 28×28 grayscale, mean 0.2860, std 0.3530.
    FashionMnist,
    /// Pixels scaled to [0, 1], nothing else.
    Unit,
}

/// How images become the model's input (torchvision order: resize, centre crop, scale to [0, 1],
/// normalise): a preset whose fields the others override.
#[derive(Clone, Debug, Default)]
pub struct PrepOptions {
    /// Preprocessing preset.
    pub preset: Option<Preset>,
    /// Per-channel mean on pixels scaled to [0, 1].
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation.
    pub std: Option<Vec<f32>>,
    /// Shorter image side after resizing, before cropping.
    pub resize: Option<u32>,
    /// Centre crop size: one value (square) or height and width.
    pub crop: Option<Vec<u32>>,
    /// Convert images to one gray channel.
    pub grayscale: bool,
}

impl PrepOptions {
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
