//! Chart furniture shared by the bar and line charts: palette, ticks, number labels, legend.
use super::canvas::{INK, fill_rect};
use super::font::{GLYPH, draw_text, fit_text, text_width};
use image::RgbImage;

/// Eight well-separated colours (the usual "tab10" hues), cycled for more groups.
const PALETTE: [[u8; 3]; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
];

/// Colour of bar group / line series `index` (a fixed palette of 8, cycled).
pub fn group_color(index: usize) -> [u8; 3] {
    PALETTE[index % PALETTE.len()]
}

/// A 1-2-5 tick step giving roughly `target` intervals over `[lo, hi]` (`hi > lo`, finite span).
pub(crate) fn nice_step(lo: f64, hi: f64, target: u32) -> f64 {
    let raw = (hi - lo) / f64::from(target.max(1));
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let unit = if norm < 1.5 {
        1.0
    } else if norm < 3.0 {
        2.0
    } else if norm < 7.0 {
        5.0
    } else {
        10.0
    };
    unit * mag
}

/// Multiples of `step` within `[lo, hi]`, computed from integers so 0 is exactly 0.
pub(crate) fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    if !(step.is_finite() && step > 0.0) {
        return vec![lo, hi];
    }
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    // A nice step yields about ten ticks; the cap only guards against degenerate spans.
    (first..=last).take(64).map(|i| i as f64 * step).collect()
}

/// Compact label: about four significant digits, scientific outside [0.01, 1e6).
pub(crate) fn format_value(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".to_string();
    }
    if !(1e-2..1e6).contains(&a) {
        return format!("{v:.2e}");
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 4) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Draws the chart's title (scale 2, shortened to fit) at (`margin`, `margin`) and the legend at
/// (`margin`, `legend_y`) on an image `width` wide: the header both chart kinds share.
pub(crate) fn draw_header(
    img: &mut RgbImage,
    title: &str,
    legend: &Legend,
    width: i64,
    margin: i64,
    legend_y: i64,
) {
    draw_text(
        img,
        margin,
        margin,
        &fit_text(title, width - 2 * margin, 2),
        2,
        INK,
    );
    legend.draw(img, margin, legend_y);
}

const SWATCH: i64 = 10;
const LEGEND_NAME_PX: i64 = 24 * GLYPH;
/// Height of one legend row in pixels.
pub(crate) const LEGEND_ROW: i64 = 14;

/// Legend entries flowed left to right into rows `max_w` wide.
pub(crate) struct Legend {
    entries: Vec<(String, i64, i64)>,
    /// Number of rows used (0 for no entries).
    pub rows: i64,
}

impl Legend {
    pub(crate) fn layout(names: &[String], max_w: i64) -> Self {
        let (mut x, mut row) = (0, 0);
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            let name = fit_text(name, LEGEND_NAME_PX, 1);
            let w = SWATCH + 4 + text_width(&name, 1) + 14;
            if x > 0 && x + w > max_w {
                (x, row) = (0, row + 1);
            }
            entries.push((name, x, row));
            x += w;
        }
        let rows = if entries.is_empty() { 0 } else { row + 1 };
        Legend { entries, rows }
    }

    /// Draws entry `i` in `group_color(i)` with its top-left at (`x0`, `y0`).
    pub(crate) fn draw(&self, img: &mut RgbImage, x0: i64, y0: i64) {
        for (i, (name, x, row)) in self.entries.iter().enumerate() {
            let (x, y) = (x0 + x, y0 + row * LEGEND_ROW);
            fill_rect(img, x, y, SWATCH, SWATCH, group_color(i));
            draw_text(img, x + SWATCH + 4, y + 1, name, 1, INK);
        }
    }
}
