//! Text for the charts: DejaVu Sans (embedded by the `dejavu` crate, so no system font is
//! needed), laid out and rasterised anti-aliased with `ab_glyph`: fractional advances, side
//! bearings and kerning, so letters sit where the font puts them. (plotters' own `ab_glyph`
//! path drops the side bearings and rounds every advance, which jumbles letter spacing.)
use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::style::{FontStyle, IntoFont, RGBColor, TextStyle};
use std::sync::OnceLock;

/// Regular and bold DejaVu Sans, parsed once.
fn faces() -> &'static (Option<FontRef<'static>>, Option<FontRef<'static>>) {
    static FACES: OnceLock<(Option<FontRef<'static>>, Option<FontRef<'static>>)> = OnceLock::new();
    FACES.get_or_init(|| {
        (
            FontRef::try_from_slice(dejavu::sans::regular()).ok(),
            FontRef::try_from_slice(dejavu::sans::bold()).ok(),
        )
    })
}

/// The face for a style: bold where asked for, regular otherwise. `None` only if the embedded
/// font failed to parse, which would be a broken build; text is then left out.
fn face(bold: bool) -> Option<&'static FontRef<'static>> {
    let (regular, heavy) = faces();
    if bold {
        heavy.as_ref().or(regular.as_ref())
    } else {
        regular.as_ref()
    }
}

/// Width and height in pixels of `text` set at `px` pixels: the advance of the whole line and
/// the font's ascent-to-descent height.
pub(crate) fn measure(text: &str, px: f64, bold: bool) -> (u32, u32) {
    let Some(font) = face(bold) else {
        return (0, 0);
    };
    let scaled = font.as_scaled(PxScale::from(px as f32));
    let (width, _) = layout(text, &scaled);
    let height = scaled.ascent() - scaled.descent();
    (width.ceil().max(0.0) as u32, height.ceil().max(0.0) as u32)
}

/// Rasterises `text` at `px` pixels with the top-left of its line box at (0, 0), calling
/// `put(x, y, coverage)` for every pixel a glyph touches (coverage in (0, 1]).
pub(crate) fn raster(text: &str, px: f64, bold: bool, mut put: impl FnMut(i32, i32, f32)) {
    let Some(font) = face(bold) else { return };
    let scaled = font.as_scaled(PxScale::from(px as f32));
    let baseline = scaled.ascent();
    let (_, glyphs) = layout(text, &scaled);
    for (id, x) in glyphs {
        let glyph = id.with_scale_and_position(scaled.scale(), point(x, baseline));
        if let Some(outline) = font.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            let (x0, y0) = (bounds.min.x as i32, bounds.min.y as i32);
            outline.draw(|gx, gy, c| {
                if c > 0.0 {
                    put(x0 + gx as i32, y0 + gy as i32, c.min(1.0));
                }
            });
        }
    }
}

/// Line width and each glyph with its pen position: advances plus kerning, kept fractional.
fn layout<F: Font>(
    text: &str,
    scaled: &ab_glyph::PxScaleFont<&F>,
) -> (f32, Vec<(ab_glyph::GlyphId, f32)>) {
    let mut caret = 0.0f32;
    let mut prev = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            continue;
        }
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            caret += scaled.kern(p, id);
        }
        glyphs.push((id, caret));
        caret += scaled.h_advance(id);
        prev = Some(id);
    }
    (caret, glyphs)
}

/// Regular text of `px` pixels in `color`.
pub(crate) fn style(px: u32, color: RGBColor) -> TextStyle<'static> {
    ("sans-serif", f64::from(px)).into_font().color(&color)
}

/// Bold text of `px` pixels in `color` (titles).
pub(crate) fn bold(px: u32, color: RGBColor) -> TextStyle<'static> {
    ("sans-serif", f64::from(px), FontStyle::Bold)
        .into_font()
        .color(&color)
}

/// Width in pixels of `text` in `style`.
pub(crate) fn width(text: &str, style: &TextStyle) -> i64 {
    let bold = matches!(style.font.get_style(), FontStyle::Bold);
    i64::from(measure(text, style.font.get_size(), bold).0)
}

/// `text` shortened with a trailing `…` so it fits in `max_px` pixels.
pub(crate) fn fit(text: &str, max_px: i64, style: &TextStyle) -> String {
    if max_px <= 0 {
        return String::new();
    }
    // No glyph is narrower than a pixel, so nothing past max_px characters can fit: measuring
    // stays cheap however long the input is.
    let limit = usize::try_from(max_px)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let chars: Vec<char> = text.chars().take(limit).collect();
    let whole: String = chars.iter().collect();
    if chars.len() < limit && width(&whole, style) <= max_px {
        return whole;
    }
    // The longest prefix that still fits with the ellipsis; width grows with the prefix.
    let shortened = |n: usize| chars[..n].iter().collect::<String>() + "…";
    let (mut lo, mut hi) = (0, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if width(&shortened(mid), style) <= max_px {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 && width("…", style) > max_px {
        return String::new();
    }
    shortened(lo)
}
