//! What the bar and line charts share: palette, number labels, axis ranges, and the header
//! (title and legend) drawn above the plot.
use super::canvas::{Area, Canvas, INK, plotting, rgb};
use super::text;
use anyhow::{Result, ensure};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// Colour of bar group / line series `index`: d3's category10 (matplotlib's tab10), cycled.
pub fn group_color(index: usize) -> [u8; 3] {
    let c = colorous::CATEGORY10[index % colorous::CATEGORY10.len()];
    [c.r, c.g, c.b]
}

/// Space around a chart, in pixels.
pub(crate) const MARGIN: i64 = 12;

/// A plot over f64 data ranges.
pub(crate) type Chart<'a, 'b> =
    ChartContext<'a, Canvas<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The plot in `body` over the ranges `x` and `y`: [`MARGIN`] from the sides and the bottom,
/// with `x_axis_h` pixels under it for the x axis and `y_axis_w` left of it for the y axis.
pub(crate) fn cartesian<'a, 'b>(
    body: &'a Area<'b>,
    x_axis_h: i64,
    y_axis_w: i64,
    x: Range<f64>,
    y: Range<f64>,
) -> Result<Chart<'a, 'b>> {
    ChartBuilder::on(body)
        .margin_left(clamp_i32(MARGIN))
        .margin_right(clamp_i32(MARGIN))
        .margin_bottom(clamp_i32(MARGIN))
        .x_label_area_size(clamp_i32(x_axis_h))
        .y_label_area_size(clamp_i32(y_axis_w))
        .build_cartesian_2d(x, y)
        .map_err(plotting)
}

/// Width in pixels of the widest of `texts` in `style`.
pub(crate) fn widest<'t>(texts: impl IntoIterator<Item = &'t String>, style: &TextStyle) -> i64 {
    texts
        .into_iter()
        .map(|t| text::width(t, style))
        .max()
        .unwrap_or(0)
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

/// Data range widened to whole multiples of a nice tick step; a flat range is padded by
/// 10 % of its value (at least 0.5) so the data sits mid-plot.
pub(crate) fn axis_range(values: impl Iterator<Item = f64>) -> Result<(f64, f64)> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = (lo.abs() * 0.1).max(0.5);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - pad, hi + pad)
    };
    let step = nice_step(lo, hi, 5);
    let (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    ensure!(
        (hi - lo).is_finite() && hi > lo && step > 0.0,
        "data range {lo:e} .. {hi:e} cannot be drawn"
    );
    Ok((lo, hi))
}

/// Compact label: about four significant digits, scientific outside [0.01, 1e6).
pub(crate) fn format_value(v: f64) -> String {
    let a = v.abs();
    // Tick positions computed in floating point can land a hair off zero.
    if a < 1e-12 {
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

/// Pixel sizes of the header.
const TITLE_PX: u32 = 18;
const LEGEND_PX: u32 = 13;
const SWATCH: i64 = 12;
const LEGEND_NAME_MAX: i64 = 260;
/// Height of one legend row in pixels.
pub(crate) const LEGEND_ROW: i64 = 20;
/// Height of the title line.
pub(crate) const TITLE_ROW: i64 = 28;

/// How a legend entry shows its series.
#[derive(Clone, Copy)]
pub(crate) enum Swatch {
    /// A filled square (bars).
    Box,
    /// A short thick line with a dot (line series).
    Line,
}

/// The title and a legend flowed left to right into rows `max_w` wide.
pub(crate) struct Header {
    title: String,
    entries: Vec<(String, i64, i64)>,
    swatch: Swatch,
    /// Rows of legend entries (0 for none).
    pub rows: i64,
}

impl Header {
    pub(crate) fn layout(title: &str, names: &[String], swatch: Swatch, max_w: i64) -> Self {
        let name_style = text::style(LEGEND_PX, INK);
        let (mut x, mut row) = (0, 0);
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            let name = text::fit(name, LEGEND_NAME_MAX, &name_style);
            let w = SWATCH + 6 + text::width(&name, &name_style) + 18;
            if x > 0 && x + w > max_w {
                (x, row) = (0, row + 1);
            }
            entries.push((name, x, row));
            x += w;
        }
        let rows = if entries.is_empty() { 0 } else { row + 1 };
        Header {
            title: text::fit(title, max_w, &text::bold(TITLE_PX, INK)),
            entries,
            swatch,
            rows,
        }
    }

    /// Height the header takes.
    pub(crate) fn height(&self) -> i64 {
        TITLE_ROW + self.rows * LEGEND_ROW + 6
    }

    /// Draws the title at (`x0`, `y0`) and entry `i` of the legend in `group_color(i)` below.
    pub(crate) fn draw(&self, area: &Area, x0: i64, y0: i64) -> Result<()> {
        let at = |x: i64, y: i64| (clamp_i32(x), clamp_i32(y));
        area.draw_text(&self.title, &text::bold(TITLE_PX, INK), at(x0, y0))
            .map_err(plotting)?;
        let name_style = text::style(LEGEND_PX, INK).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, (name, x, row)) in self.entries.iter().enumerate() {
            let color = rgb(group_color(i));
            let (x, mid) = (x0 + x, y0 + TITLE_ROW + row * LEGEND_ROW + LEGEND_ROW / 2);
            match self.swatch {
                Swatch::Box => area.draw(&Rectangle::new(
                    [at(x, mid - SWATCH / 2), at(x + SWATCH, mid + SWATCH / 2)],
                    color.filled(),
                )),
                Swatch::Line => area
                    .draw(&PathElement::new(
                        vec![at(x - 2, mid), at(x + SWATCH + 2, mid)],
                        color.stroke_width(2),
                    ))
                    .and_then(|_| {
                        area.draw(&Circle::new(at(x + SWATCH / 2, mid), 3, color.filled()))
                    }),
            }
            .map_err(plotting)?;
            area.draw_text(name, &name_style, at(x + SWATCH + 6, mid))
                .map_err(plotting)?;
        }
        Ok(())
    }
}

/// A pixel coordinate for plotters; charts are at most `MAX_SIDE` wide, so only absurd
/// offsets are clamped.
pub(crate) fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}
