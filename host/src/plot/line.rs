//! Line chart of several series on shared axes (deletion/insertion curves and the like).
use super::axis::{
    Header, MARGIN, Swatch, axis_range, cartesian, clamp_i32, format_value, group_color,
};
use super::canvas::{FRAME, GRID, INK, blank, draw_on, plotting, rgb, save_png};
use super::text;
use anyhow::{Context, Result, bail, ensure};
use image::RgbImage;
use plotters::prelude::*;
use std::path::Path;

/// One named curve of [`line_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend entry (shortened with `…` past 260 px).
    pub name: String,
    /// (x, y) points, joined in the order given; all must be finite.
    pub points: Vec<(f64, f64)>,
}

/// Most series one chart accepts; beyond that colours repeat too often to tell curves apart.
pub const MAX_SERIES: usize = 32;

const WIDTH: i64 = 800;
const PLOT_H: i64 = 400;
const TICK_PX: u32 = 12;
const DESC_PX: u32 = 13;
/// Room under the plot for tick labels and the x-axis description.
const X_AXIS_H: i64 = 46;
/// Series with at most this many points also get a marker per point.
const MARKED_POINTS: usize = 40;

/// Writes a line chart PNG to `path`: every series in its palette colour ([`group_color`]),
/// shared axes with ticks and grid, `x_label` under the x axis, `y_label` rotated along the
/// y axis, a legend under `title`. Axis ranges cover all points, widened to whole tick steps.
/// The image is 800 px wide and about 520 px high (plus 20 px per extra legend row).
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
    let (xlo, xhi) = axis_range(all().map(|p| p.0)).context("x axis")?;
    let (ylo, yhi) = axis_range(all().map(|p| p.1)).context("y axis")?;
    let tick_style = text::style(TICK_PX, INK);
    let desc_style = text::style(DESC_PX, INK);
    let y_label_w = [ylo, yhi, (ylo + yhi) / 2.0]
        .iter()
        .map(|&v| text::width(&format_value(v), &tick_style))
        .max()
        .unwrap_or(0)
        + 12
        + i64::from(DESC_PX)
        + 8;

    let names: Vec<String> = series.iter().map(|s| s.name.clone()).collect();
    let header = Header::layout(title, &names, Swatch::Line, WIDTH - 2 * MARGIN);
    let top = MARGIN + header.height();
    let mut img = blank(WIDTH, top + PLOT_H + X_AXIS_H + MARGIN)?;
    let plot_w = WIDTH - 2 * MARGIN - y_label_w;
    let x_desc = text::fit(x_label, plot_w, &desc_style);
    let y_desc = text::fit(y_label, PLOT_H, &desc_style);
    draw_on(&mut img, |root| {
        header.draw(root, MARGIN, MARGIN)?;
        let (_, body) = root.split_vertically(clamp_i32(top));
        let mut chart = cartesian(&body, X_AXIS_H, y_label_w, xlo..xhi, ylo..yhi)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|v| format_value(*v))
            .y_label_formatter(&|v| format_value(*v))
            .x_desc(x_desc.as_str())
            .y_desc(y_desc.as_str())
            .label_style(tick_style.clone())
            .axis_desc_style(desc_style.clone())
            .axis_style(FRAME)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(plotting)?;
        for (i, s) in series.iter().enumerate() {
            let color = rgb(group_color(i));
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(plotting)?;
            if s.points.len() <= MARKED_POINTS {
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(plotting)?;
            }
        }
        // The frame on top, so curves along the range ends do not hide it.
        let frame = [(xlo, ylo), (xhi, ylo), (xhi, yhi), (xlo, yhi), (xlo, ylo)];
        chart
            .draw_series([PathElement::new(frame.to_vec(), FRAME)])
            .map_err(plotting)?;
        Ok(())
    })?;
    Ok(img)
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
            let name: String = s.name.chars().take(40).collect();
            bail!(
                "series {si} ({name:?}) point {pi} is not finite: {:?}",
                s.points[pi]
            );
        }
    }
    Ok(())
}
