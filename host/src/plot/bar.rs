//! Horizontal bar chart: one row per bar, so long layer names stay readable.
use super::axis::{
    Header, MARGIN, Swatch, cartesian, clamp_i32, format_value, group_color, widest,
};
use super::canvas::{FRAME, GRID, INK, blank, draw_on, plotting, rgb, save_png};
use super::text;
use anyhow::{Context, Result, bail, ensure};
use image::RgbImage;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One bar of [`bar_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Text left of the bar (shortened with `…` past 300 px).
    pub label: String,
    /// Length of the bar; must be finite. Negative values extend left of the zero axis.
    pub value: f64,
    /// Index into the `groups` slice; picks the colour ([`group_color`]).
    pub group: usize,
}

/// Most bars one chart accepts (18 px per row keeps the image under [`super::MAX_SIDE`]).
pub const MAX_BARS: usize = 800;

const WIDTH: i64 = 960;
/// Pixels per bar row; the image height grows by exactly this per bar.
const ROW_H: i64 = 18;
const BAR_GAP: u32 = 3;
const LABEL_PX: u32 = 12;
const LABEL_MAX: i64 = 300;
const X_AXIS_H: i64 = 30;

/// Writes a horizontal bar chart PNG to `path`: one 18-px row per bar, label left of the bar,
/// value printed at the bar end, bars coloured by `group` with a legend of `groups` under
/// `title`, and a value axis with ticks and grid below. The image is 960 px wide and its
/// height grows linearly with the bar count.
///
/// Errors: no bars, more than [`MAX_BARS`], a non-finite value (NaN is never plotted silently),
/// a group index without a name in `groups`, or a failed write.
pub fn bar_chart(path: &Path, title: &str, bars: &[Bar], groups: &[String]) -> Result<()> {
    let img = render_bar_chart(title, bars, groups)
        .with_context(|| format!("drawing bar chart {}", path.display()))?;
    save_png(&img, path)
}

/// Draws the chart of [`bar_chart`] in memory instead of writing it.
pub fn render_bar_chart(title: &str, bars: &[Bar], groups: &[String]) -> Result<RgbImage> {
    check(bars, groups)?;
    let n = bars.len();
    let label_style = text::style(LABEL_PX, INK);
    let labels: Vec<String> = bars
        .iter()
        .map(|b| text::fit(&b.label, LABEL_MAX, &label_style))
        .collect();
    let values: Vec<String> = bars.iter().map(|b| format_value(b.value)).collect();
    let label_w = widest(&labels, &label_style) + 10;
    let value_w = widest(&values, &label_style) + 8;

    // The zero axis is always inside the range so every bar has a base to grow from.
    let lo = bars.iter().map(|b| b.value).fold(0.0, f64::min);
    let hi = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let (lo, hi) = if hi > lo { (lo, hi) } else { (0.0, 1.0) };
    ensure!(
        (hi - lo).is_finite(),
        "bar values span too wide a range ({lo:e} .. {hi:e})"
    );
    // Widen the axis so value labels fit beside the longest bars on either side.
    let plot_w = WIDTH - 2 * MARGIN - label_w;
    let pad_l = if lo < 0.0 { value_w } else { 0 };
    let pad_r = if hi > 0.0 { value_w } else { 0 };
    let usable = (plot_w - pad_l - pad_r).max(1) as f64;
    let per_px = (hi - lo) / usable;
    let (x_lo, x_hi) = (lo - pad_l as f64 * per_px, hi + pad_r as f64 * per_px);

    let header = Header::layout(title, groups, Swatch::Box, WIDTH - 2 * MARGIN);
    let top = MARGIN + header.height();
    let mut img = blank(WIDTH, top + n as i64 * ROW_H + X_AXIS_H + MARGIN)?;
    draw_on(&mut img, |root| {
        header.draw(root, MARGIN, MARGIN)?;
        let (_, body) = root.split_vertically(clamp_i32(top));
        // Rows sit at y = 0 (last bar) .. n-1 (first bar), so the first bar is at the top and
        // every integer tick is a row centre.
        let mut chart = cartesian(&body, X_AXIS_H, label_w, x_lo..x_hi, -0.5..n as f64 - 0.5)?;
        let row_label = |y: &f64| {
            let r = y.round();
            if (y - r).abs() > 1e-6 || r < 0.0 || r >= n as f64 {
                return String::new();
            }
            labels[n - 1 - r as usize].clone()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_labels(8)
            .y_labels(n)
            .x_label_formatter(&|v| format_value(*v))
            .y_label_formatter(&row_label)
            .label_style(label_style.clone())
            .axis_style(FRAME)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(plotting)?;
        chart
            .draw_series([PathElement::new(
                vec![(0.0, -0.5), (0.0, n as f64 - 0.5)],
                FRAME,
            )])
            .map_err(plotting)?;
        let row_of = |i: usize| (n - 1 - i) as f64;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let y = row_of(i);
                let mut r = Rectangle::new(
                    [(0.0, y - 0.5), (b.value, y + 0.5)],
                    rgb(group_color(b.group)).filled(),
                );
                r.set_margin(BAR_GAP, BAR_GAP, 0, 0);
                r
            }))
            .map_err(plotting)?;
        let (left, right) = (
            label_style.pos(Pos::new(HPos::Right, VPos::Center)),
            label_style.pos(Pos::new(HPos::Left, VPos::Center)),
        );
        chart
            .draw_series(bars.iter().zip(&values).enumerate().map(|(i, (b, v))| {
                let (dx, style) = if b.value < 0.0 {
                    (-4, &left)
                } else {
                    (4, &right)
                };
                EmptyElement::at((b.value, row_of(i))) + Text::new(v.clone(), (dx, 0), style)
            }))
            .map_err(plotting)?;
        Ok(())
    })?;
    Ok(img)
}

fn check(bars: &[Bar], groups: &[String]) -> Result<()> {
    ensure!(!bars.is_empty(), "no bars to plot");
    ensure!(
        bars.len() <= MAX_BARS,
        "{} bars exceed the limit of {MAX_BARS}",
        bars.len()
    );
    for (i, bar) in bars.iter().enumerate() {
        let name: String = bar.label.chars().take(40).collect();
        if !bar.value.is_finite() {
            bail!("bar {i} ({name:?}) has non-finite value {}", bar.value);
        }
        if bar.group >= groups.len() {
            bail!(
                "bar {i} ({name:?}) has group {} but only {} group names",
                bar.group,
                groups.len()
            );
        }
    }
    Ok(())
}
