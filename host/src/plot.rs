//! Small PNG charts for the `qvit` CLI, drawn straight into `image` buffers.
//!
//! A plotting crate would dwarf the rest of the host tool for a handful of charts, so this module
//! keeps to filled rectangles, thick line segments and an 8×8 bitmap font (`font8x8`'s
//! public-domain glyphs). Bad input (NaN, empty data, absurd sizes) is an error, never a panic;
//! over-long labels are shortened with `..`.
mod axis;
mod bar;
mod canvas;
mod colormap;
mod font;
mod line;
mod overlay;

pub use axis::group_color;
pub use bar::{Bar, MAX_BARS, bar_chart, render_bar_chart};
pub use canvas::MAX_SIDE;
pub use colormap::{diverging, sequential};
pub use font::draw_text;
pub use line::{MAX_SERIES, Series, line_chart, render_line_chart};
pub use overlay::{COLORBAR_WIDTH, overlay};
