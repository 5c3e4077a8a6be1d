//! How raw images become the model's input tensor. Recorded in the bundle, so `classify`,
//! `eval` and every later command feed the model exactly as it was calibrated.
//!
//! [`Preprocess::apply`] follows torchvision's PIL path: RGB (or PIL's ITU-R 601 luminance for
//! grayscale), shorter-side resize with a triangle (bilinear, antialiased) filter in 8-bit,
//! centre crop with the same rounding as `torchvision.transforms.functional.center_crop`, then
//! `(x / 255 - mean) / std` per channel.

mod decode;

pub use decode::{decode_image, load_image};

use crate::{Error, Result, Tensor};
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Pixel};
use std::borrow::Cow;

/// Bounds on images and on what preprocessing may ask for, so neither a large photo nor a
/// bundle's recorded sizes can make a 1 GB board allocate beyond its memory.
pub mod limits {
    /// Largest `resize` (shorter side) or crop side. ViTs take 224 to 518 pixels.
    pub const MAX_PREPROCESS_SIDE: u32 = 4096;
    /// Largest side of an image that is decoded at all.
    pub const MAX_IMAGE_SIDE: u32 = 32768;
    /// Most memory a decoded image may take: 192 MiB, 64 megapixels of RGB.
    pub const MAX_DECODE_BYTES: u64 = 192 << 20;
    /// Largest image file read.
    pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;
    /// Most memory the resize may take for its output and for its intermediate (16 bytes a
    /// pixel, source width × output height): reached only by extreme aspect ratios.
    pub const MAX_RESAMPLE_BYTES: u64 = 256 << 20;
}

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

    /// Checks the settings on their own: sizes within [`limits::MAX_PREPROCESS_SIDE`], a resize
    /// no smaller than the crop, one finite mean and positive std per channel. The reason is
    /// returned for the caller to wrap (a bad bundle, a bad flag).
    pub fn check(&self) -> std::result::Result<(), String> {
        let c = self.channels();
        let [crop_h, crop_w] = self.crop;
        let max = limits::MAX_PREPROCESS_SIDE;
        if crop_h == 0 || crop_w == 0 {
            return Err(format!("crop {crop_h}x{crop_w} is empty"));
        }
        if crop_h > max || crop_w > max {
            return Err(format!(
                "crop {crop_h}x{crop_w} is larger than {max} pixels a side"
            ));
        }
        if let Some(r) = self.resize {
            if r > max {
                return Err(format!("resize {r} is larger than {max} pixels"));
            }
            if r < crop_h.max(crop_w) {
                return Err(format!(
                    "resize {r} is smaller than the crop {crop_h}x{crop_w}"
                ));
            }
        }
        if self.mean.len() != c || self.std.len() != c {
            return Err(format!(
                "{c} channel(s) need {c} mean and std values, got {} and {}",
                self.mean.len(),
                self.std.len()
            ));
        }
        if !self.mean.iter().all(|m| m.is_finite())
            || !self.std.iter().all(|s| s.is_finite() && *s > 0.0)
        {
            return Err(format!(
                "mean {:?} must be finite and std {:?} finite and positive",
                self.mean, self.std
            ));
        }
        Ok(())
    }

    /// Turns a decoded image into the model's input tensor (batch 1, [`Self::layout`]).
    pub fn apply(&self, img: &DynamicImage) -> Result<Tensor> {
        self.check()
            .map_err(|e| Error::BadInput(format!("preprocessing: {e}")))?;
        let c = self.channels();
        let [crop_h, crop_w] = self.crop;
        let (w, h) = (img.width(), img.height());
        if w == 0 || h == 0 {
            return Err(Error::BadInput("image is empty".into()));
        }
        let (rw, rh) = match self.resize {
            None => (crop_w, crop_h),
            Some(short) => shorter_side_to(w, h, short),
        };
        check_resample(w, h, rw, rh)?;
        // A grey image is resized as is: every channel of its RGB form would get the same
        // arithmetic, and PIL's luma of (v, v, v) is v, so the result is identical at a third
        // of the memory. RGB is borrowed; other kinds are converted.
        let resized: Box<dyn Fn(u32, u32) -> [u8; 3]> = match img {
            DynamicImage::ImageLuma8(g) => {
                let r = resize(g, rw, rh);
                Box::new(move |x, y| [r.get_pixel(x, y).0[0]; 3])
            }
            _ => {
                let rgb = match img {
                    DynamicImage::ImageRgb8(rgb) => Cow::Borrowed(rgb),
                    other => Cow::Owned(other.to_rgb8()),
                };
                let r = resize(&rgb, rw, rh);
                Box::new(move |x, y| r.get_pixel(x, y).0)
            }
        };
        if rw < crop_w || rh < crop_h {
            return Err(Error::BadInput(format!(
                "image resized to {rw}x{rh} is smaller than the crop {crop_w}x{crop_h}"
            )));
        }
        // torchvision: int(round((h - crop_h) / 2.0)), Python rounding half to even.
        let top = (f64::from(rh - crop_h) / 2.0).round_ties_even() as u32;
        let left = (f64::from(rw - crop_w) / 2.0).round_ties_even() as u32;
        let (ch, cw) = (crop_h as usize, crop_w as usize);
        let mut data = vec![0.0f32; c * ch * cw];
        for y in 0..ch {
            for x in 0..cw {
                let px = resized(left + x as u32, top + y as u32);
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

/// Refuses a resize whose output (3 bytes a pixel) or intermediate (16 bytes a pixel, source
/// width × output height) would exceed [`limits::MAX_RESAMPLE_BYTES`]: a 1×20000 strip resized
/// to a shorter side of 256 would be 256×5120000 pixels.
fn check_resample(w: u32, h: u32, rw: u32, rh: u32) -> Result<()> {
    let out = 3 * u64::from(rw) * u64::from(rh);
    let intermediate = 16 * u64::from(w) * u64::from(rh);
    let limit = limits::MAX_RESAMPLE_BYTES;
    if out.max(intermediate) > limit {
        return Err(Error::TooLarge {
            what: format!(
                "memory to resize the {w}x{h} image to {rw}x{rh} (bytes; crop the image to a \
                 less extreme aspect ratio first)"
            ),
            found: out.max(intermediate),
            limit,
        });
    }
    Ok(())
}

/// Size with the shorter side scaled to `short` and the longer side scaled by the same factor,
/// truncated (torchvision's `_compute_resized_output_size`).
fn shorter_side_to(w: u32, h: u32, short: u32) -> (u32, u32) {
    // Saturates instead of wrapping; check_resample refuses such sizes anyway.
    let scale = |long: u32, short_side: u32| {
        let x = u64::from(short) * u64::from(long) / u64::from(short_side);
        u32::try_from(x).unwrap_or(u32::MAX)
    };
    if w <= h {
        (short, scale(h, w).max(1))
    } else {
        (scale(w, h).max(1), short)
    }
}

/// Bilinear (triangle filter) resize; the identity when the size already matches, so exact
/// pixel values survive.
fn resize<P: Pixel<Subpixel = u8> + 'static>(
    img: &ImageBuffer<P, Vec<u8>>,
    w: u32,
    h: u32,
) -> ImageBuffer<P, Vec<u8>> {
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

#[cfg(test)]
mod tests;
