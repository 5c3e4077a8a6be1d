//! Heatmap over an image (relevance / attention maps) with a colour bar.
use super::axis::{clamp_i32, format_value};
use super::canvas::{INK, WHITE, draw_on, plotting};
use super::colormap::{diverging, sequential};
use super::text;
use anyhow::{Context, Result, bail, ensure};
use image::imageops::{self, FilterType};
use image::{ImageBuffer, Luma, Rgb, RgbImage};
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Width in pixels of the colour-bar strip [`overlay`] appends on the right: a 4 px gap,
/// a 12 px gradient, a 4 px gap and room for tick labels like `-1.23e-05`.
pub const COLORBAR_WIDTH: u32 = 96;

const BAR_X: i64 = 4;
const BAR_W: i64 = 12;
const LABEL_X: i64 = BAR_X + BAR_W + 4;
const LABEL_PX: u32 = 11;

/// Blends a heatmap over `img` and appends a colour bar.
///
/// `map` is row-major, `mw`×`mh`, any resolution; it is resized to the image with `image`'s
/// triangle filter (bilinear when enlarging: sample centres aligned, edges clamped). Each pixel becomes
/// `(1 - alpha) * image + alpha * colour`, so `alpha = 0` returns the image unchanged.
/// `signed`: [`diverging`] scaled by max |v| (0 is white; ticks ±max|v| and 0); otherwise
/// [`sequential`] over min..max (ticks min and max; a constant map is all the lowest colour).
///
/// The result is `img.width() + COLORBAR_WIDTH` wide and `img.height()` high; its left
/// `img.width()` columns are the blended image.
///
/// Errors: empty image or map, `map.len() != mw * mh`, a non-finite map value (NaN is not
/// guessed at), `alpha` outside [0, 1].
pub fn overlay(
    img: &RgbImage,
    map: &[f32],
    mw: usize,
    mh: usize,
    alpha: f32,
    signed: bool,
) -> Result<RgbImage> {
    let (w, h) = img.dimensions();
    ensure!(w > 0 && h > 0, "overlay: image is empty ({w}x{h})");
    ensure!(mw > 0 && mh > 0, "overlay: heatmap is empty ({mw}x{mh})");
    let cells = mw
        .checked_mul(mh)
        .context("overlay: heatmap size overflows")?;
    ensure!(
        map.len() == cells,
        "overlay: heatmap has {} values, {mw}x{mh} needs {cells}",
        map.len()
    );
    ensure!(
        (0.0..=1.0).contains(&alpha),
        "overlay: alpha {alpha} is not in [0, 1]"
    );
    if let Some(i) = map.iter().position(|v| !v.is_finite()) {
        bail!(
            "overlay: heatmap value at row {}, col {} is {}",
            i / mw,
            i % mw,
            map[i]
        );
    }
    let out_w = w
        .checked_add(COLORBAR_WIDTH)
        .context("overlay: image too wide")?;

    let scale = Scale::of(map, signed);
    let heat = resized(map, (mw, mh), (w, h), &scale)?;
    let mut out = RgbImage::from_pixel(out_w, h, Rgb([WHITE.0, WHITE.1, WHITE.2]));
    for (x, y, base) in img.enumerate_pixels() {
        let colour = scale.color(heat.get_pixel(x, y).0[0]);
        let base = base.0;
        let mix = |i: usize| {
            ((1.0 - alpha) * f32::from(base[i]) + alpha * f32::from(colour[i])).round() as u8
        };
        out.put_pixel(x, y, Rgb([mix(0), mix(1), mix(2)]));
    }
    colorbar(&mut out, i64::from(w), &scale)?;
    Ok(out)
}

/// How map values become colour-map inputs.
struct Scale {
    signed: bool,
    lo: f64,
    hi: f64,
}

impl Scale {
    fn of(map: &[f32], signed: bool) -> Self {
        let lo = map.iter().fold(f64::INFINITY, |a, &v| a.min(f64::from(v)));
        let hi = map
            .iter()
            .fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v)));
        if signed {
            let m = lo.abs().max(hi.abs());
            Scale {
                signed,
                lo: -m,
                hi: m,
            }
        } else {
            Scale { signed, lo, hi }
        }
    }

    /// Position in [0, 1] along the colour map (0 is -max|v| when signed); f64 so extreme
    /// f32 ranges cannot overflow.
    fn unit(&self, v: f32) -> f32 {
        let v = f64::from(v);
        match (self.signed, self.hi > self.lo) {
            (true, false) => 0.5,
            (false, false) => 0.0,
            (_, true) => ((v - self.lo) / (self.hi - self.lo)) as f32,
        }
    }

    /// The colour at position `t` in [0, 1].
    fn color(&self, t: f32) -> [u8; 3] {
        if self.signed {
            diverging(2.0 * t - 1.0)
        } else {
            sequential(t)
        }
    }
}

/// The map in colour-map positions, resized to `w`×`h` by `image`'s triangle filter: bilinear
/// with pixel centres aligned and edges clamped when enlarging, a weighted average of the
/// covered cells when shrinking. Positions are in [0, 1], which `image` keeps f32 pixels in.
fn resized(
    map: &[f32],
    (mw, mh): (usize, usize),
    (w, h): (u32, u32),
    scale: &Scale,
) -> Result<ImageBuffer<Luma<f32>, Vec<f32>>> {
    let side = |n: usize| u32::try_from(n).context("overlay: heatmap too large");
    let unit: Vec<f32> = map.iter().map(|&v| scale.unit(v)).collect();
    let unit = ImageBuffer::from_raw(side(mw)?, side(mh)?, unit)
        .context("overlay: heatmap size does not match its values")?;
    Ok(imageops::resize(&unit, w, h, FilterType::Triangle))
}

/// Vertical gradient (top = high end) right of column `x0`, with tick labels.
fn colorbar(out: &mut RgbImage, x0: i64, scale: &Scale) -> Result<()> {
    let h = out.height();
    for y in 0..h {
        let t = if h > 1 {
            1.0 - f64::from(y) / f64::from(h - 1)
        } else {
            1.0
        };
        let c = Rgb(scale.color(t as f32));
        for x in x0 + BAR_X..x0 + BAR_X + BAR_W {
            // x < x0 + COLORBAR_WIDTH = out.width(), so it fits in u32.
            out.put_pixel(x as u32, y, c);
        }
    }
    let style = text::style(LABEL_PX, INK);
    let room = i64::from(COLORBAR_WIDTH) - LABEL_X;
    let label = |v: f64| text::fit(&format_value(v), room, &style);
    let x = clamp_i32(x0 + LABEL_X);
    let h = i64::from(h);
    let line = i64::from(LABEL_PX) + 2;
    draw_on(out, |area| {
        let top = style.pos(Pos::new(HPos::Left, VPos::Top));
        let bottom = style.pos(Pos::new(HPos::Left, VPos::Bottom));
        let middle = style.pos(Pos::new(HPos::Left, VPos::Center));
        area.draw_text(&label(scale.hi), &top, (x, 0))
            .map_err(plotting)?;
        if h >= 2 * line {
            area.draw_text(&label(scale.lo), &bottom, (x, clamp_i32(h - 1)))
                .map_err(plotting)?;
        }
        if scale.signed && h >= 3 * line {
            area.draw_text("0", &middle, (x, clamp_i32(h / 2)))
                .map_err(plotting)?;
        }
        Ok(())
    })
}
