//! How raw images become the model's input tensor. Recorded in the bundle, so `classify`,
//! `eval` and every later command feed the model exactly as it was calibrated.
//!
//! [`Preprocess::apply`] follows torchvision's PIL path: RGB (or PIL's ITU-R 601 luminance for
//! grayscale), shorter-side resize with a triangle (bilinear, antialiased) filter in 8-bit,
//! centre crop with the same rounding as `torchvision.transforms.functional.center_crop`, then
//! `(x / 255 - mean) / std` per channel.

use crate::{Error, Result, Tensor};
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Rgb};
use std::path::Path;

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

    /// Turns a decoded image into the model's input tensor (batch 1, [`Self::layout`]).
    pub fn apply(&self, img: &DynamicImage) -> Result<Tensor> {
        let c = self.channels();
        let [crop_h, crop_w] = self.crop;
        if crop_h == 0 || crop_w == 0 || self.mean.len() != c || self.std.len() != c {
            return Err(Error::BadInput(format!(
                "preprocessing {self:?} is inconsistent"
            )));
        }
        let elements = u64::from(crop_h) * u64::from(crop_w) * c as u64;
        if elements > crate::shape::MAX_ELEMENTS {
            return Err(Error::BadInput(format!(
                "crop {crop_h}x{crop_w} is too large"
            )));
        }
        if img.width() == 0 || img.height() == 0 {
            return Err(Error::BadInput("image is empty".into()));
        }
        let rgb = img.to_rgb8();
        let resized = match self.resize {
            None => resize(&rgb, crop_w, crop_h),
            Some(short) => {
                let (w, h) = shorter_side_to(rgb.width(), rgb.height(), short);
                resize(&rgb, w, h)
            }
        };
        let (w, h) = resized.dimensions();
        if w < crop_w || h < crop_h {
            return Err(Error::BadInput(format!(
                "image resized to {w}x{h} is smaller than the crop {crop_w}x{crop_h}"
            )));
        }
        // torchvision: int(round((h - crop_h) / 2.0)), Python rounding half to even.
        let top = (f64::from(h - crop_h) / 2.0).round_ties_even() as u32;
        let left = (f64::from(w - crop_w) / 2.0).round_ties_even() as u32;
        let (ch, cw) = (crop_h as usize, crop_w as usize);
        let mut data = vec![0.0f32; c * ch * cw];
        for y in 0..ch {
            for x in 0..cw {
                let px = resized.get_pixel(left + x as u32, top + y as u32).0;
                let luma = [pil_luma(px)];
                let values: &[u8] = if self.grayscale { &luma } else { &px };
                for (k, &v) in values.iter().enumerate() {
                    let index = match self.layout {
                        Layout::Nchw => (k * ch + y) * cw + x,
                        Layout::Nhwc => (y * cw + x) * c + k,
                    };
                    data[index] = (f32::from(v) / 255.0 - self.mean[k]) / self.std[k];
                }
            }
        }
        let shape = match self.layout {
            Layout::Nchw => vec![1, c, ch, cw],
            Layout::Nhwc => vec![1, ch, cw, c],
        };
        Tensor::new(shape, data)
    }
}

/// Size with the shorter side scaled to `short` and the longer side scaled by the same factor,
/// truncated (torchvision's `_compute_resized_output_size`).
fn shorter_side_to(w: u32, h: u32, short: u32) -> (u32, u32) {
    let scale = |long: u32, short_side: u32| {
        (u64::from(short) * u64::from(long) / u64::from(short_side)) as u32
    };
    if w <= h {
        (short, scale(h, w).max(1))
    } else {
        (scale(w, h).max(1), short)
    }
}

/// Bilinear (triangle filter) resize; the identity when the size already matches, so exact
/// pixel values survive.
fn resize(img: &ImageBuffer<Rgb<u8>, Vec<u8>>, w: u32, h: u32) -> ImageBuffer<Rgb<u8>, Vec<u8>> {
    if img.dimensions() == (w, h) {
        return img.clone();
    }
    imageops::resize(img, w, h, FilterType::Triangle)
}

/// PIL's `convert("L")`: ITU-R 601-2 luma in 16-bit fixed point, rounded.
fn pil_luma(rgb: [u8; 3]) -> u8 {
    let [r, g, b] = rgb.map(u32::from);
    ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) as u8
}

/// Decodes a PNG or JPEG file (format guessed from the content, not the extension).
pub fn load_image(path: impl AsRef<Path>) -> Result<DynamicImage> {
    let path = path.as_ref();
    let fail = |reason: String| Error::Image {
        path: path.display().to_string(),
        reason,
    };
    image::ImageReader::open(path)
        .map_err(|e| fail(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?
        .decode()
        .map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests;
