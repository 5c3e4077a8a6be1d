//! Line chart of several series on shared axes (deletion/insertion curves and the like).
use super::axis::{LEGEND_ROW, Legend, draw_header, format_value, group_color, nice_step, ticks};
use super::canvas::{FRAME, GRID, INK, blank, fill_rect, save_png, segment};
use super::font::{GLYPH, draw_text, draw_text_up, fit_text, text_width};
use anyhow::{Context, Result, bail, ensure};
use image::RgbImage;
use std::path::Path;

/// One named curve of [`line_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend entry (shortened with `..` past 24 characters).
    pub name: String,
    /// (x, y) points, joined in the order given; all must be finite.
    pub points: Vec<(f64, f64)>,
}

/// Most series one chart accepts; beyond that colours repeat too often to tell curves apart.
pub const MAX_SERIES: usize = 32;

const WIDTH: i64 = 800;
const MARGIN: i64 = 12;
const PLOT_H: i64 = 400;
/// Series with at most this many points also get a marker per point.
const MARKED_POINTS: usize = 40;

/// Writes a line chart PNG to `path`: every series in its palette colour ([`group_color`]),
/// shared axes with ticks and grid, `x_label` under the x axis, `y_label` rotated along the
/// y axis, a legend under `title`. Axis ranges cover all points, widened to whole tick steps.
/// The image is 800 px wide and about 500 px high (plus 14 px per extra legend row).
///
/// Errors: no series, more than [`MAX_SERIES`], no points at all, a non-finite coordinate
/// (NaN is never dropped silently), or a failed write. A series without points is legend only.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let img = render_line_chart(title, x_label, y_label, series)
        .with_context(|| format!("drawing line chart {}", path.display()))?;
    save_png(&img, path)
}

/// Draws the chart of [`line_chart`] in memory instead of writing it.
pub fn render_line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<RgbImage> {
    check(series)?;
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let (xlo, xhi, xstep) = axis_range(all().map(|p| p.0)).context("x axis")?;
    let (ylo, yhi, ystep) = axis_range(all().map(|p| p.1)).context("y axis")?;
    let yticks = ticks(ylo, yhi, ystep);
    let ylabels: Vec<String> = yticks.iter().map(|&t| format_value(t)).collect();
    let ytick_w = ylabels.iter().map(|l| text_width(l, 1)).max().unwrap_or(0);

    let names: Vec<String> = series.iter().map(|s| s.name.clone()).collect();
    let legend = Legend::layout(&names, WIDTH - 2 * MARGIN);
    let legend_y = MARGIN + 2 * GLYPH + 8;
    let top = legend_y + legend.rows * LEGEND_ROW + 8;
    let bottom = top + PLOT_H;
    let left = MARGIN + GLYPH + 6 + ytick_w + 6;
    let right = WIDTH - MARGIN - GLYPH;
    let mut img = blank(WIDTH, bottom + 6 + GLYPH + 6 + GLYPH + MARGIN)?;
    let to_px = |(x, y): (f64, f64)| {
        let fx = (x - xlo) / (xhi - xlo);
        let fy = (y - ylo) / (yhi - ylo);
        (
            left as f64 + fx * (right - left) as f64,
            bottom as f64 - fy * PLOT_H as f64,
        )
    };

    draw_header(&mut img, title, &legend, WIDTH, MARGIN, legend_y);
    for (t, label) in yticks.iter().zip(&ylabels) {
        let y = to_px((xlo, *t)).1.round() as i64;
        fill_rect(&mut img, left, y, right - left, 1, GRID);
        let lx = left - 6 - text_width(label, 1);
        draw_text(&mut img, lx, y - GLYPH / 2, label, 1, INK);
    }
    for t in ticks(xlo, xhi, xstep) {
        let x = to_px((t, ylo)).0.round() as i64;
        fill_rect(&mut img, x, top, 1, PLOT_H, GRID);
        let label = format_value(t);
        draw_text(
            &mut img,
            x - text_width(&label, 1) / 2,
            bottom + 6,
            &label,
            1,
            INK,
        );
    }
    frame(&mut img, left, top, right, bottom);

    let x_label = fit_text(x_label, right - left, 1);
    let xl = (left + right) / 2 - text_width(&x_label, 1) / 2;
    draw_text(&mut img, xl, bottom + 6 + GLYPH + 6, &x_label, 1, INK);
    let y_label = fit_text(y_label, PLOT_H, 1);
    draw_text_up(
        &mut img,
        MARGIN,
        top + PLOT_H / 2 + text_width(&y_label, 1) / 2,
        &y_label,
        INK,
    );

    for (i, s) in series.iter().enumerate() {
        let color = group_color(i);
        let px: Vec<(f64, f64)> = s.points.iter().map(|&p| to_px(p)).collect();
        for w in px.windows(2) {
            segment(&mut img, w[0], w[1], 2, color);
        }
        if px.len() <= MARKED_POINTS {
            for &(x, y) in &px {
                fill_rect(
                    &mut img,
                    x.round() as i64 - 2,
                    y.round() as i64 - 2,
                    5,
                    5,
                    color,
                );
            }
        }
    }
    Ok(img)
}

/// Data range widened to whole multiples of a nice tick step; a flat range is padded by
/// 10 % of its value (at least 0.5) so the line sits mid-plot.
fn axis_range(values: impl Iterator<Item = f64>) -> Result<(f64, f64, f64)> {
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
    Ok((lo, hi, step))
}

fn frame(img: &mut RgbImage, left: i64, top: i64, right: i64, bottom: i64) {
    fill_rect(img, left, top, right - left + 1, 1, FRAME);
    fill_rect(img, left, bottom, right - left + 1, 1, FRAME);
    fill_rect(img, left, top, 1, bottom - top + 1, FRAME);
    fill_rect(img, right, top, 1, bottom - top + 1, FRAME);
}

fn check(series: &[Series]) -> Result<()> {
    ensure!(!series.is_empty(), "no series to plot");
    ensure!(
        series.len() <= MAX_SERIES,
        "{} series exceed the limit of {MAX_SERIES}",
        series.len()
    );
    ensure!(
        series.iter().any(|s| !s.points.is_empty()),
        "no points to plot"
    );
    for (si, s) in series.iter().enumerate() {
        if let Some(pi) = s
            .points
            .iter()
            .position(|p| !(p.0.is_finite() && p.1.is_finite()))
        {
            let name = fit_text(&s.name, 40 * GLYPH, 1);
            bail!(
                "series {si} ({name:?}) point {pi} is not finite: {:?}",
                s.points[pi]
            );
        }
    }
    Ok(())
}
