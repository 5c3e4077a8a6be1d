//! Colour maps for heatmaps.

/// Diverging blue–white–red map for signed relevance, linear in each channel like the
/// `bwr` map common in the LRP literature: -1 → pure blue, 0 → white, +1 → pure red.
/// Inputs are clamped to [-1, 1]; NaN maps to white, the "no evidence" colour.
/// Red rises and blue falls monotonically with `v`.
pub fn diverging(v: f32) -> [u8; 3] {
    let v = if v.is_nan() { 0.0 } else { v.clamp(-1.0, 1.0) };
    let fade = |t: f32| (255.0 * (1.0 - t)).round() as u8;
    if v < 0.0 {
        let c = fade(-v);
        [c, c, 255]
    } else {
        let c = fade(v);
        [255, c, c]
    }
}

/// Sequential black → red → yellow → white map ("hot") for non-negative data in [0, 1].
/// Chosen because every channel, and so brightness, increases monotonically, which keeps
/// the ordering readable in greyscale too. Inputs are clamped; NaN maps to black (0).
pub fn sequential(v: f32) -> [u8; 3] {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    let ramp = |start: f32| ((3.0 * v - start).clamp(0.0, 1.0) * 255.0).round() as u8;
    [ramp(0.0), ramp(1.0), ramp(2.0)]
}
