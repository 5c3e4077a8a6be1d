//! Preprocessing options shared by every command that reads images: a named preset, fields that
//! override it, and their resolution against the model's input shape.

use anyhow::{Context, Result, bail, ensure};
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

/// Why an ONNX model cannot be fed without preprocessing flags; shared by every command.
pub const MISSING: &str = "an ONNX model records no preprocessing, and guessing it gives wrong \
results without a word: say how images become its input with --preset \
imagenet|mnist|fashion-mnist|unit, with --mean M,.. --std S,.. (on pixels scaled to [0, 1]), or \
with --preset none for pixels in [0, 1] as they are (a bundle from `qvit quantize` records its \
preprocessing)";

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

    /// Whether the normalisation is stated: a preset, or both `mean` and `std`.
    pub fn normalisation_given(&self) -> bool {
        self.preset.is_some() || (self.mean.is_some() && self.std.is_some())
    }

    /// The preprocessing for a model with NCHW input `shape`. Fails unless a preset or both
    /// `mean` and `std` are given ([`MISSING`]), and when the result breaks the device's bounds
    /// ([`Preprocess::check`]).
    pub fn resolve(&self, shape: &[usize]) -> Result<Preprocess> {
        if !self.normalisation_given() {
            if self.mean.is_some() != self.std.is_some() {
                bail!("--mean and --std go together: give both (or a --preset)");
            }
            bail!("{MISSING}");
        }
        let (c, h, w) = nchw(shape)?;
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
        self.overrides(p, shape)
    }

    /// The preprocessing of a bundle that recorded `recorded`, with these options applied: a
    /// preset replaces it, single fields override it. A bundle without preprocessing needs a
    /// full statement, as an ONNX model does.
    pub fn resolve_over(
        &self,
        recorded: Option<&Preprocess>,
        shape: &[usize],
    ) -> Result<Preprocess> {
        match recorded {
            Some(r) if self.preset.is_none() => self.overrides(r.clone(), shape),
            _ => self.resolve(shape),
        }
    }

    /// `p` with the single fields given here applied, checked against the model's input.
    fn overrides(&self, mut p: Preprocess, shape: &[usize]) -> Result<Preprocess> {
        let (c, h, w) = nchw(shape)?;
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
            "crop {}x{} does not match the model's input {h}x{w}; give --crop {h},{w} or leave it out",
            p.crop[0],
            p.crop[1]
        );
        ensure!(
            p.channels() == c,
            "the model takes {c} channels; preprocessing gives {}{}",
            p.channels(),
            if c == 1 { " (add --grayscale)" } else { "" }
        );
        ensure!(
            p.mean.len() == c && p.std.len() == c,
            "--mean and --std need {c} values each, one per channel"
        );
        ensure!(
            p.std.iter().all(|s| *s > 0.0 && s.is_finite()),
            "--std values must be positive and finite, got {:?}",
            p.std
        );
        ensure!(
            p.mean.iter().all(|m| m.is_finite()),
            "--mean values must be finite, got {:?}",
            p.mean
        );
        if let Err(why) = p.check() {
            bail!("preprocessing: {why}; adjust --resize or --crop");
        }
        Ok(p)
    }
}

/// Channels, height and width of an NCHW image input.
fn nchw(shape: &[usize]) -> Result<(usize, u32, u32)> {
    let [_, c, h, w] = shape else {
        bail!("image preprocessing needs an NCHW input, the model takes {shape:?}");
    };
    let side = |d: usize| {
        u32::try_from(d)
            .ok()
            .filter(|&s| s <= qvit_device::preprocess::limits::MAX_PREPROCESS_SIDE)
            .with_context(|| {
                format!(
                    "the model's input {shape:?} is larger than {} pixels a side; images \
                     cannot be preprocessed to it",
                    qvit_device::preprocess::limits::MAX_PREPROCESS_SIDE
                )
            })
    };
    Ok((*c, side(*h)?, side(*w)?))
}
