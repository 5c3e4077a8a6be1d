//! Relevance maps of one image: pixel relevance (summed over colour channels), its Salient
//! Relevance map, the patch-level map, and what the model saw, as an RGB image to draw them over.

use super::saliency::{SaliencyParams, salient_relevance};
use crate::lrp::{Lrp, Relevance, Seed};
use anyhow::{Result, ensure};
use image::RgbImage;
use qvit_device::{Graph, Layout, Op, Preprocess, Tensor};

/// A row-major 2-D map.
#[derive(Clone, Debug, PartialEq)]
pub struct Map {
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
    /// `w·h` values.
    pub data: Vec<f32>,
}

/// Pixel relevance of an image tensor's relevance (`[1, C, H, W]` or `[1, H, W, C]`), summed over
/// channels: a pixel's relevance is what all its colour values contributed.
pub fn pixel_map(rel: &Tensor, layout: Layout) -> Result<Map> {
    ensure!(
        rel.shape.len() == 4 && rel.shape[0] == 1,
        "expected one image, got {:?}",
        rel.shape
    );
    let (c, h, w) = match layout {
        Layout::Nchw => (rel.shape[1], rel.shape[2], rel.shape[3]),
        Layout::Nhwc => (rel.shape[3], rel.shape[1], rel.shape[2]),
    };
    let mut data = vec![0.0f32; h * w];
    for (i, &v) in rel.data.iter().enumerate() {
        let pixel = match layout {
            Layout::Nchw => i % (h * w),
            Layout::Nhwc => i / c,
        };
        data[pixel] += v;
    }
    Ok(Map { w, h, data })
}

/// Sums of `p×p` cells (the ViT's patches; ragged edge cells are partial).
pub fn patch_map(m: &Map, p: usize) -> Map {
    let p = p.max(1);
    let (pw, ph) = (m.w.div_ceil(p), m.h.div_ceil(p));
    let mut data = vec![0.0f32; pw * ph];
    for y in 0..m.h {
        for x in 0..m.w {
            data[(y / p) * pw + x / p] += m.data[y * m.w + x];
        }
    }
    Map { w: pw, h: ph, data }
}

/// The patch size of a ViT: the stride of its first convolution, or, in a graph whose patch
/// embedding became a Linear, `√(K/C)` of the first Linear's input width `K`.
pub fn patch_size(g: &Graph, channels: usize) -> Option<usize> {
    for n in &g.nodes {
        match &n.op {
            Op::Conv2d { strides, .. } => return Some(strides[0]),
            Op::Linear | Op::QLinear { .. } => {
                let k = *g.shape(n.inputs[0]).last()?;
                let p = ((k / channels.max(1)) as f64).sqrt().round() as usize;
                return (p * p * channels == k).then_some(p);
            }
            _ => {}
        }
    }
    None
}

/// The preprocessed input as the model sees it (after resize and crop), mapped back to 8-bit
/// RGB through the normalisation.
pub fn display_image(x: &Tensor, pre: &Preprocess) -> Result<RgbImage> {
    let c = pre.channels();
    let [h, w] = pre.crop.map(|v| v as usize);
    ensure!(
        x.data.len() == c * h * w,
        "input does not match the preprocessing"
    );
    let mut img = RgbImage::new(w as u32, h as u32);
    for y in 0..h {
        for xx in 0..w {
            let mut px = [0u8; 3];
            for (k, out) in px.iter_mut().enumerate() {
                let ch = k.min(c - 1);
                let i = match pre.layout {
                    Layout::Nchw => (ch * h + y) * w + xx,
                    Layout::Nhwc => (y * w + xx) * c + ch,
                };
                let v = x.data[i] * pre.std[ch] + pre.mean[ch];
                *out = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
            img.put_pixel(xx as u32, y as u32, image::Rgb(px));
        }
    }
    Ok(img)
}

/// Spearman rank correlation (ties get their mean rank); 0 when either side is constant.
pub fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len().min(rb.len()) as f64;
    let mean = (n - 1.0) / 2.0;
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - mean) * (y - mean);
        va += (x - mean).powi(2);
        vb += (y - mean).powi(2);
    }
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

fn ranks(v: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            r[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

/// Upscales `img` by an integer factor (nearest neighbour, so pixels stay visible as blocks).
pub fn upscale(img: &RgbImage, s: u32) -> RgbImage {
    if s <= 1 {
        return img.clone();
    }
    image::imageops::resize(
        img,
        img.width() * s,
        img.height() * s,
        image::imageops::FilterType::Nearest,
    )
}

/// Relevance maps of one input.
pub struct Maps {
    /// The relevance pass.
    pub relevance: Relevance,
    /// Pixel relevance.
    pub pixel: Map,
    /// Salient Relevance (when asked for).
    pub sr: Option<Map>,
}

/// Relevance (and SR) maps of `x`.
pub fn maps(
    lrp: &mut Lrp,
    x: &Tensor,
    seed: Seed,
    pre: &Preprocess,
    sr: Option<&SaliencyParams>,
) -> Result<Maps> {
    let relevance = lrp.run(x, seed)?;
    let pixel = pixel_map(&relevance.input, pre.layout)?;
    // SR runs on the positive evidence: the SR authors' z⁺ rule gives (almost) only positive
    // relevance, and negative relevance marks what speaks *against* the target, which is not
    // where the model's attention for it lies.
    let sr = match sr {
        Some(p) => {
            let positive: Vec<f32> = pixel.data.iter().map(|v| v.max(0.0)).collect();
            Some(Map {
                w: pixel.w,
                h: pixel.h,
                data: salient_relevance(&positive, pixel.w, pixel.h, p)?,
            })
        }
        None => None,
    };
    Ok(Maps {
        relevance,
        pixel,
        sr,
    })
}
