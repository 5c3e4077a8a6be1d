//! Horizontal bar chart: one row per bar, so long layer names stay readable.
use super::axis::{LEGEND_ROW, Legend, draw_header, format_value, group_color, nice_step, ticks};
use super::canvas::{FRAME, GRID, INK, blank, fill_rect, save_png};
use super::font::{GLYPH, draw_text, fit_text, text_width};
use anyhow::{Context, Result, bail, ensure};
use image::RgbImage;
use std::path::Path;

/// One bar of [`bar_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Text left of the bar (shortened with `..` past 28 characters).
    pub label: String,
    /// Length of the bar; must be finite. Negative values extend left of the zero axis.
    pub value: f64,
    /// Index into the `groups` slice; picks the colour ([`group_color`]).
    pub group: usize,
}

/// Most bars one chart accepts (14 px per row keeps the image under [`super::MAX_SIDE`]).
pub const MAX_BARS: usize = 1000;

const WIDTH: i64 = 960;
const MARGIN: i64 = 12;
const ROW_H: i64 = 14;
const BAR_H: i64 = 10;
const LABEL_PX: i64 = 28 * GLYPH;

/// Writes a horizontal bar chart PNG to `path`: one 14-px row per bar, label left of the bar,
/// value printed at the bar end, bars coloured by `group` with a legend of `groups` at the top,
/// `title` above. The image is 960 px wide and its height grows with the bar count.
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
    let labels: Vec<String> = bars
        .iter()
        .map(|b| fit_text(&b.label, LABEL_PX, 1))
        .collect();
    let values: Vec<String> = bars.iter().map(|b| format_value(b.value)).collect();
    let label_w = labels.iter().map(|l| text_width(l, 1)).max().unwrap_or(0) + 8;
    let value_w = values.iter().map(|v| text_width(v, 1)).max().unwrap_or(0) + 6;

    // The zero axis is always inside the range so every bar has a base to grow from.
    let lo = bars.iter().map(|b| b.value).fold(0.0, f64::min);
    let hi = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let (lo, hi) = if hi > lo { (lo, hi) } else { (0.0, 1.0) };
    ensure!(
        (hi - lo).is_finite(),
        "bar values span too wide a range ({lo:e} .. {hi:e})"
    );

    // Room for value labels on whichever side bars can end.
    let plot_l = MARGIN + label_w + if lo < 0.0 { value_w } else { 0 };
    let plot_r = WIDTH - MARGIN - if hi > 0.0 { value_w } else { 0 };
    let to_x = |v: f64| plot_l + ((v - lo) / (hi - lo) * (plot_r - plot_l) as f64).round() as i64;

    let legend = Legend::layout(groups, WIDTH - 2 * MARGIN);
    let legend_y = MARGIN + 2 * GLYPH + 8;
    let bars_y = legend_y + legend.rows * LEGEND_ROW + 6;
    let axis_y = bars_y + bars.len() as i64 * ROW_H;
    let mut img = blank(WIDTH, axis_y + 5 + GLYPH + MARGIN)?;

    draw_header(&mut img, title, &legend, WIDTH, MARGIN, legend_y);
    for t in ticks(lo, hi, nice_step(lo, hi, 6)) {
        let (x, label) = (to_x(t), format_value(t));
        fill_rect(&mut img, x, bars_y, 1, axis_y - bars_y, GRID);
        fill_rect(&mut img, x, axis_y, 1, 4, FRAME);
        // min-then-max rather than clamp: clamp panics if a label were wider than the chart.
        let lx = (x - text_width(&label, 1) / 2)
            .min(WIDTH - text_width(&label, 1))
            .max(0);
        draw_text(&mut img, lx, axis_y + 5, &label, 1, INK);
    }
    fill_rect(&mut img, plot_l, axis_y, plot_r - plot_l + 1, 1, FRAME);
    let x0 = to_x(0.0);
    fill_rect(&mut img, x0, bars_y, 1, axis_y - bars_y, FRAME);

    for (i, ((bar, label), value)) in bars.iter().zip(&labels).zip(&values).enumerate() {
        let row_y = bars_y + i as i64 * ROW_H;
        let x1 = to_x(bar.value);
        // A non-zero bar is at least 1 px so tiny values remain visible.
        let len = (x1 - x0).abs().max(i64::from(bar.value != 0.0));
        let left = if bar.value < 0.0 { x0 - len } else { x0 };
        let top = row_y + (ROW_H - BAR_H) / 2;
        fill_rect(&mut img, left, top, len, BAR_H, group_color(bar.group));
        let text_y = row_y + (ROW_H - GLYPH) / 2;
        draw_text(
            &mut img,
            MARGIN + label_w - 8 - text_width(label, 1),
            text_y,
            label,
            1,
            INK,
        );
        let vx = if bar.value < 0.0 {
            left - 3 - text_width(value, 1)
        } else {
            left + len + 3
        };
        draw_text(&mut img, vx, text_y, value, 1, INK);
    }
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
        let name = fit_text(&bar.label, 40 * GLYPH, 1);
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
