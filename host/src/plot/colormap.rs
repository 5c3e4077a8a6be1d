//! Colour maps for heatmaps, from `colorous` (d3-scale-chromatic's tables): both keep
//! perceived lightness ordered, so the maps read correctly in greyscale and for colour-blind
//! viewers, unlike the linear bwr / hot ramps.

/// Diverging map for signed relevance: ColorBrewer RdBu, blue for -1 (against the target),
/// a near-white light grey for 0 (no evidence), red for +1 (for it). Lightness rises from -1
/// to 0 and falls from 0 to +1. Inputs are clamped to [-1, 1]; NaN maps to the 0 colour.
pub fn diverging(v: f32) -> [u8; 3] {
    let v = if v.is_nan() { 0.0 } else { v.clamp(-1.0, 1.0) };
    // RdBu runs from red at 0 to blue at 1.
    let c = colorous::RED_BLUE.eval_continuous(f64::from((1.0 - v) / 2.0));
    [c.r, c.g, c.b]
}

/// Sequential map for non-negative data in [0, 1]: inferno, near black at 0 through purple,
/// red and orange to pale yellow at 1, with lightness rising evenly. Inputs are clamped; NaN
/// maps to the 0 colour.
pub fn sequential(v: f32) -> [u8; 3] {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    let c = colorous::INFERNO.eval_continuous(f64::from(v));
    [c.r, c.g, c.b]
}
