//! Pixel primitives shared by the charts: clipped rectangles, thick segments, PNG output.
use anyhow::{Context, Result, ensure};
use image::{ImageFormat, Rgb, RgbImage};
use std::path::Path;

/// Largest chart side in pixels; bounds memory when callers pass absurd amounts of data.
pub const MAX_SIDE: u32 = 16_384;

pub(crate) const WHITE: [u8; 3] = [255, 255, 255];
pub(crate) const INK: [u8; 3] = [20, 20, 20];
pub(crate) const FRAME: [u8; 3] = [90, 90, 90];
pub(crate) const GRID: [u8; 3] = [225, 225, 225];

/// A white canvas, refusing sizes that would be empty or exceed [`MAX_SIDE`].
pub(crate) fn blank(w: i64, h: i64) -> Result<RgbImage> {
    let side = 1..=i64::from(MAX_SIDE);
    ensure!(
        side.contains(&w) && side.contains(&h),
        "chart would be {w}x{h} px; each side must be 1..={MAX_SIDE} (too much data for one chart?)"
    );
    // The range check above makes both casts lossless.
    Ok(RgbImage::from_pixel(w as u32, h as u32, Rgb(WHITE)))
}

/// Fills `[x, x+w) × [y, y+h)`, clipped to the image; work is bounded by the visible area.
pub(crate) fn fill_rect(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, color: [u8; 3]) {
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let (x0, x1) = (x.clamp(0, iw), x.saturating_add(w).clamp(0, iw));
    let (y0, y1) = (y.clamp(0, ih), y.saturating_add(h).clamp(0, ih));
    for py in y0..y1 {
        for px in x0..x1 {
            // Clamped to the image above, so the casts are lossless.
            img.put_pixel(px as u32, py as u32, Rgb(color));
        }
    }
}

/// Draws a segment `thick` pixels wide by stamping squares along it (good enough for 1–3 px).
pub(crate) fn segment(
    img: &mut RgbImage,
    a: (f64, f64),
    b: (f64, f64),
    thick: i64,
    color: [u8; 3],
) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    // Capped so a non-finite or off-canvas coordinate cannot turn into a near-endless loop.
    let steps = (dx.abs().max(dy.abs()).ceil() as i64).clamp(1, 4 * i64::from(MAX_SIDE));
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let (x, y) = (a.0 + t * dx, a.1 + t * dy);
        fill_rect(
            img,
            x.round() as i64 - thick / 2,
            y.round() as i64 - thick / 2,
            thick,
            thick,
            color,
        );
    }
}

/// Writes `img` as PNG whatever the file extension, since callers choose arbitrary names.
pub(crate) fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    img.save_with_format(path, ImageFormat::Png)
        .with_context(|| format!("writing PNG {}", path.display()))
}
