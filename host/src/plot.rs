//! PNG charts for the `qvit` CLI: bar and line charts drawn with `plotters` (axes, ticks,
//! grid, legend; DejaVu Sans text, anti-aliased, embedded so no system font is needed) and
//! relevance heatmaps blended over images with a perceptual colour map and a colour bar.
//! Bad input (NaN, empty data, absurd sizes) is an error, never a panic; over-long labels are
//! shortened with `…`.
mod axis;
mod bar;
mod canvas;
mod colormap;
mod line;
mod overlay;
mod text;

pub use axis::group_color;
pub use bar::{Bar, MAX_BARS, bar_chart, render_bar_chart};
pub use canvas::{MAX_SIDE, save_png};
pub use colormap::{diverging, sequential};
pub use line::{MAX_SERIES, Series, line_chart, render_line_chart};
pub use overlay::{COLORBAR_WIDTH, overlay};
