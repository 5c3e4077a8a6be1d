//! Text with the 8×8 basic-Latin glyphs of `font8x8`, magnified by an integer factor.
use super::canvas::fill_rect;
use font8x8::legacy::BASIC_LEGACY;
use image::RgbImage;

/// Glyph cell side in font pixels; every character advances by this times the scale.
pub(crate) const GLYPH: i64 = 8;

/// Rows of the glyph for `c`, bit 0 = leftmost pixel. Control characters are blank and
/// anything outside printable ASCII shows as `?`, so the width of a string is its char count.
fn glyph(c: char) -> [u8; 8] {
    match c {
        ' '..='~' => BASIC_LEGACY[c as usize],
        c if c.is_control() => [0; 8],
        _ => BASIC_LEGACY[usize::from(b'?')],
    }
}

/// Draws `text` with its top-left corner at (`x`, `y`); each font pixel becomes a
/// `scale`×`scale` square. Clipped to the image (coordinates may be negative or past the edge);
/// scale 0 draws nothing. No line breaks: `\n` and other control characters are blank cells.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: u32, color: [u8; 3]) {
    let s = i64::from(scale);
    let advance = GLYPH * s;
    if s == 0 || y >= i64::from(img.height()) || y.saturating_add(advance) <= 0 {
        return;
    }
    let mut cx = x;
    for c in text.chars() {
        // Everything after this is off the right edge: stop, so huge strings cost nothing.
        if cx >= i64::from(img.width()) {
            break;
        }
        let next = cx.saturating_add(advance);
        if next > 0 {
            for (row, bits) in (0..).zip(glyph(c)) {
                for col in 0..GLYPH {
                    if bits >> col & 1 == 1 {
                        fill_rect(img, cx + col * s, y + row * s, s, s, color);
                    }
                }
            }
        }
        cx = next;
    }
}

/// Draws `text` rotated a quarter turn anticlockwise (reading bottom to top) with the bottom of
/// its first character at `y_bottom`: the usual orientation for a y-axis label.
pub(crate) fn draw_text_up(img: &mut RgbImage, x: i64, y_bottom: i64, text: &str, color: [u8; 3]) {
    let mut top = y_bottom;
    for c in text.chars() {
        top = top.saturating_sub(GLYPH);
        if top.saturating_add(GLYPH) <= 0 {
            break;
        }
        for (row, bits) in (0..).zip(glyph(c)) {
            for col in 0..GLYPH {
                if bits >> col & 1 == 1 {
                    // Glyph right → image up, glyph down → image right.
                    fill_rect(img, x + row, top + (GLYPH - 1 - col), 1, 1, color);
                }
            }
        }
    }
}

/// Width in pixels of `text` at `scale`.
pub(crate) fn text_width(text: &str, scale: u32) -> i64 {
    (text.chars().count() as i64).saturating_mul(GLYPH * i64::from(scale))
}

/// `text` shortened with a trailing `..` so it fits in `max_px` pixels at `scale`.
pub(crate) fn fit_text(text: &str, max_px: i64, scale: u32) -> String {
    let max_chars = usize::try_from(max_px / (GLYPH * i64::from(scale.max(1)))).unwrap_or(0);
    if text.chars().nth(max_chars).is_none() {
        return text.to_string();
    }
    if max_chars < 3 {
        return text.chars().take(max_chars).collect();
    }
    let mut short: String = text.chars().take(max_chars - 2).collect();
    short.push_str("..");
    short
}
