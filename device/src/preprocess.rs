//! How raw images become the model's input tensor. Recorded in the bundle, so `classify`,
//! `eval` and every later command feed the model exactly as it was calibrated.

/// Image preprocessing, in torchvision's order: decode → (grayscale) → resize → centre crop →
/// scale to [0, 1] → normalise per channel with `mean`/`std` → lay out as `layout`.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// Resize so the shorter side is this many pixels (bilinear), before the crop.
    /// `None` resizes straight to the crop size.
    pub resize: Option<u32>,
    /// Centre crop `[height, width]`; this is the model's spatial input size.
    pub crop: [u32; 2],
    /// Per-channel mean subtracted after scaling pixels to [0, 1].
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after the mean.
    pub std: Vec<f32>,
    /// Convert to one luminance channel first.
    pub grayscale: bool,
    /// Memory layout of the input tensor.
    pub layout: Layout,
}

/// Memory layout of an image tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `[batch, channels, height, width]`, PyTorch's layout.
    Nchw,
    /// `[batch, height, width, channels]`.
    Nhwc,
}

impl Preprocess {
    /// ImageNet preset: resize 256 (for a 224 crop, scaled for other sizes), centre crop, ImageNet
    /// mean/std, RGB, NCHW.
    pub fn imagenet(size: u32) -> Self {
        Preprocess {
            resize: Some(size * 256 / 224),
            crop: [size, size],
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
            grayscale: false,
            layout: Layout::Nchw,
        }
    }

    /// MNIST preset: 28×28 grayscale, mean 0.1307, std 0.3081.
    pub fn mnist() -> Self {
        Preprocess {
            resize: None,
            crop: [28, 28],
            mean: vec![0.1307],
            std: vec![0.3081],
            grayscale: true,
            layout: Layout::Nchw,
        }
    }

    /// Number of channels the model sees.
    pub fn channels(&self) -> usize {
        if self.grayscale { 1 } else { 3 }
    }
}
