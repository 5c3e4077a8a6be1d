//! The pixel buffer charts are drawn into, and PNG output.
//!
//! Charts are drawn by plotters on [`Canvas`]: its bitmap backend for shapes, and this crate's
//! text renderer (see `text`) for every string plotters lays out or draws, axis labels included.
use super::text;
use anyhow::{Context, Result, anyhow, ensure};
use image::{ImageFormat, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, IntoDrawingArea};
use plotters::style::RGBColor;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontStyle,
};
use std::path::Path;

/// Largest chart side in pixels; bounds memory when callers pass absurd amounts of data.
pub const MAX_SIDE: u32 = 16_384;

pub(crate) const WHITE: RGBColor = RGBColor(255, 255, 255);
pub(crate) const INK: RGBColor = RGBColor(20, 20, 20);
pub(crate) const FRAME: RGBColor = RGBColor(90, 90, 90);
pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);

/// The drawing area charts draw on.
pub(crate) type Area<'a> = DrawingArea<Canvas<'a>, Shift>;

/// A white canvas, refusing sizes that would be empty or exceed [`MAX_SIDE`].
pub(crate) fn blank(w: i64, h: i64) -> Result<RgbImage> {
    let side = 1..=i64::from(MAX_SIDE);
    ensure!(
        side.contains(&w) && side.contains(&h),
        "chart would be {w}x{h} px; each side must be 1..={MAX_SIDE} (too much data for one chart?)"
    );
    // The range check above makes both casts lossless.
    Ok(RgbImage::from_pixel(
        w as u32,
        h as u32,
        image::Rgb([WHITE.0, WHITE.1, WHITE.2]),
    ))
}

/// Runs `draw` on a plotters drawing area over `img`'s pixels (RGB8, the layout both share).
pub(crate) fn draw_on(img: &mut RgbImage, draw: impl FnOnce(&Area) -> Result<()>) -> Result<()> {
    let size = img.dimensions();
    let root = Canvas(BitMapBackend::with_buffer(img, size)).into_drawing_area();
    draw(&root)?;
    root.present().map_err(plotting)
}

/// Turns a plotters error (not `Send` in general) into an error message.
pub(crate) fn plotting(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plotting: {e}")
}

/// Writes `img` as PNG whatever the file extension, since callers choose arbitrary names;
/// atomically ([`crate::files::write`]), so a failed write leaves any old file whole.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, ImageFormat::Png)
        .with_context(|| format!("encoding PNG {}", path.display()))?;
    crate::files::write(path, bytes.get_ref()).context("writing PNG")
}

/// `[r, g, b]` as a plotters colour.
pub(crate) fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// plotters' bitmap backend with text measured and drawn by [`text`].
pub(crate) struct Canvas<'a>(BitMapBackend<'a>);

type Drawn<'a> = Result<(), DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>;

impl<'a> DrawingBackend for Canvas<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Drawn<'a> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Drawn<'a> {
        self.0.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Drawn<'a> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Drawn<'a> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Drawn<'a> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Drawn<'a> {
        self.0.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Drawn<'a> {
        self.0.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Drawn<'a> {
        self.0.fill_polygon(vert, style)
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, (w, h): (u32, u32), src: &[u8]) -> Drawn<'a> {
        self.0.blit_bitmap(pos, (w, h), src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        Ok(text::measure(text, style.size(), is_bold(style)))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Drawn<'a> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let bold = is_bold(style);
        let (w, h) = text::measure(text, style.size(), bold);
        let (w, h) = (
            i32::try_from(w).unwrap_or(i32::MAX),
            i32::try_from(h).unwrap_or(i32::MAX),
        );
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -w / 2,
            HPos::Right => -w,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let turn = style.transform();
        let (iw, ih) = self.get_size();
        let (iw, ih) = (i64::from(iw), i64::from(ih));
        let mut result = Ok(());
        text::raster(text, style.size(), bold, |x, y, coverage| {
            let (x, y) = turn.transform(x.saturating_add(dx), y.saturating_add(dy));
            let (x, y) = (
                i64::from(pos.0) + i64::from(x),
                i64::from(pos.1) + i64::from(y),
            );
            if result.is_ok() && (0..iw).contains(&x) && (0..ih).contains(&y) {
                let ink = BackendColor {
                    alpha: color.alpha * f64::from(coverage),
                    rgb: color.rgb,
                };
                // In the image, so both fit in i32.
                result = self.0.draw_pixel((x as i32, y as i32), ink);
            }
        });
        result
    }
}

fn is_bold<S: BackendTextStyle>(style: &S) -> bool {
    matches!(style.style(), FontStyle::Bold)
}
