//! Context-aware saliency (Goferman, Zelnik-Manor & Tal, TPAMI 2012) computed on a relevance map.
//!
//! This is the second step of Salient Relevance (SR) maps (Li, Tian, Mueller & Chen, arXiv
//! 1712.08268): LRP gives pixel relevance, which highlights scattered pixels; running
//! context-aware saliency on that map, with relevance values in place of CIELab colours,
//! turns it into *areas* around the foci of attention.
//!
//! Steps of [`salient_relevance`]:
//! 1. `|relevance|`, min-max normalised to [0, 1].
//! 2. Per scale `r`: resize to `round(r·w)×round(r·h)` with `image`'s triangle filter, which
//!    widens with the reduction so every pixel is averaged in (scales smaller than the patch are
//!    skipped), take `patch×patch` patches on a grid with 50 % overlap, and give each patch
//!    `S_i = 1 − exp(−(1/K)·Σ_k d(p_i, q_k))` over its K most similar patches, where
//!    `d = d_value / (1 + c·d_position)`. Patch values are averaged back onto the pixels they
//!    cover and bilinearly upsampled to `w×h`.
//! 3. Average over scales, normalise, and apply the immediate context: pixels above
//!    `foci_threshold` are foci and every pixel is scaled by `1 − d_foci` (Euclidean distance to
//!    the closest focus over the image diagonal).
//! 4. Optionally a Gaussian centre prior.
//!
//! Cost: the K-nearest search compares every patch with every other patch of its scale, so it is
//! `O(Σ_r P_r²·patch²)` time with `P_r ≈ (r·w/stride)·(r·h/stride)` patches, and
//! `O(P_r·patch²)` memory. At 224×224 with the defaults that is about 43 M patch pairs; the
//! pairs are spread over threads with rayon and the K smallest are found by partial selection
//! (`O(P_r)` per patch) instead of sorting.

use anyhow::{Context, Result, bail, ensure};
use image::imageops::{self, FilterType};
use image::{ImageBuffer, Luma};
use rayon::prelude::*;

/// Parameters of the context-aware saliency step, documented with their published defaults.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SaliencyParams {
    /// Patch side in pixels (published: 7).
    pub patch: usize,
    /// Relative scales R, each in (0, 1] (published: 100 %, 80 %, 50 %, 30 %).
    pub scales: Vec<f32>,
    /// K, the number of most similar patches a patch is compared with (published: 64).
    pub neighbours: usize,
    /// Position weight `c` in `d = d_value / (1 + c·d_position)`, finite and ≥ 0 (published: 3).
    pub c: f32,
    /// Normalised saliency above which a pixel is an attended focus (published: 0.8).
    pub foci_threshold: f32,
    /// Multiply by a Gaussian centre prior with σ = max(w,h)/3. Off by default: Goferman et al.
    /// use it only as an optional high-level factor, and an explanation should not favour the
    /// image centre over what the model actually used.
    pub centre_prior: bool,
}

impl Default for SaliencyParams {
    fn default() -> Self {
        Self {
            patch: 7,
            scales: vec![1.0, 0.8, 0.5, 0.3],
            neighbours: 64,
            c: 3.0,
            foci_threshold: 0.8,
            centre_prior: false,
        }
    }
}

/// SR map of a relevance map `map` (row-major, `w×h`, any finite real values); the output has
/// `w·h` values in [0, 1].
///
/// The map's absolute value is used, as in the SR authors' code (which saves `abs(R)` before the
/// saliency step): negative relevance is evidence the model weighed *against* the class, and
/// such a region is still a place the model attended to. A constant map gives all zeros.
///
/// Errors: `w·h ≠ map.len()`, an empty map, non-finite values, invalid parameters (see
/// [`SaliencyParams`]), or a patch larger than the map at every scale.
pub fn salient_relevance(map: &[f32], w: usize, h: usize, p: &SaliencyParams) -> Result<Vec<f32>> {
    validate(map, w, h, p)?;
    let mut relevance: Vec<f32> = map.iter().map(|v| v.abs()).collect();
    normalise(&mut relevance);

    let mut saliency = vec![0f32; w * h];
    let mut used_scales = 0usize;
    for &r in &p.scales {
        let sw = (r * w as f32).round() as usize;
        let sh = (r * h as f32).round() as usize;
        if sw < p.patch || sh < p.patch {
            continue;
        }
        let scaled = resample(&relevance, (w, h), (sw, sh))?;
        let at_scale = single_scale(&scaled, sw, sh, p);
        let full = resample(&at_scale, (sw, sh), (w, h))?;
        saliency.iter_mut().zip(&full).for_each(|(s, f)| *s += f);
        used_scales += 1;
    }
    ensure!(
        used_scales > 0,
        "saliency patch side {} is larger than the {w}×{h} map at every scale {:?}",
        p.patch,
        p.scales
    );
    normalise(&mut saliency);
    immediate_context(&mut saliency, w, h, p.foci_threshold);
    if p.centre_prior {
        centre_prior(&mut saliency, w, h);
        normalise(&mut saliency);
    }
    Ok(saliency)
}

fn validate(map: &[f32], w: usize, h: usize, p: &SaliencyParams) -> Result<()> {
    ensure!(w > 0 && h > 0, "relevance map size {w}×{h} is empty");
    ensure!(
        w.checked_mul(h) == Some(map.len()),
        "relevance map has {} values, expected {w}×{h}",
        map.len()
    );
    if let Some(i) = map.iter().position(|v| !v.is_finite()) {
        bail!("relevance map value {} at index {i} is not finite", map[i]);
    }
    ensure!(p.patch > 0, "saliency patch side must be positive");
    ensure!(!p.scales.is_empty(), "saliency needs at least one scale");
    if let Some(r) = p.scales.iter().find(|r| !(**r > 0.0 && **r <= 1.0)) {
        bail!("saliency scale {r} is not in (0, 1]");
    }
    ensure!(p.neighbours > 0, "saliency needs K ≥ 1 neighbours");
    ensure!(
        p.c.is_finite() && p.c >= 0.0,
        "saliency position weight c = {} must be finite and ≥ 0",
        p.c
    );
    ensure!(
        p.foci_threshold.is_finite(),
        "saliency foci threshold {} is not finite",
        p.foci_threshold
    );
    Ok(())
}

/// Min-max normalisation to [0, 1]; a constant input becomes all zeros (nothing stands out).
fn normalise(v: &mut [f32]) {
    let (lo, hi) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    let range = hi - lo;
    if range > 0.0 {
        v.iter_mut().for_each(|x| *x = (*x - lo) / range);
    } else {
        v.iter_mut().for_each(|x| *x = 0.0);
    }
}

/// Resizes a row-major map with values in [0, 1] (the range `image` keeps f32 pixels in) with
/// `image`'s triangle filter. Enlarging, it is bilinear with pixel centres aligned and edges
/// clamped. Shrinking, the filter widens by the reduction factor, so each output pixel is a
/// weighted average of all the source pixels under it: a single bright pixel keeps its
/// relevance mass instead of falling between samples.
fn resample(src: &[f32], (sw, sh): (usize, usize), (dw, dh): (usize, usize)) -> Result<Vec<f32>> {
    let side = |n: usize| u32::try_from(n).with_context(|| format!("map side {n} is too large"));
    let img: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_raw(side(sw)?, side(sh)?, src.to_vec())
            .context("map size does not match its values")?;
    Ok(imageops::resize(&img, side(dw)?, side(dh)?, FilterType::Triangle).into_raw())
}

/// Patch origins along one axis: every `stride` pixels, plus a last patch flush with the edge so
/// that every pixel is covered.
fn grid(len: usize, patch: usize, stride: usize) -> Vec<usize> {
    let mut origins: Vec<usize> = (0..=len - patch).step_by(stride).collect();
    if origins.last() != Some(&(len - patch)) {
        origins.push(len - patch);
    }
    origins
}

/// Features are padded to a multiple of this so the distance loop vectorises.
const LANES: usize = 8;

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    // Independent accumulators: a single running f32 sum cannot be reordered into SIMD lanes.
    let mut acc = [0f32; LANES];
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for l in 0..LANES {
            let d = ca[l] - cb[l];
            acc[l] += d * d;
        }
    }
    acc.iter().sum()
}

/// Single-scale saliency of an `sw×sh` map with values in [0, 1], as a per-pixel map.
fn single_scale(img: &[f32], sw: usize, sh: usize, p: &SaliencyParams) -> Vec<f32> {
    let side = p.patch;
    let stride = (side / 2).max(1);
    let (xs, ys) = (grid(sw, side, stride), grid(sh, side, stride));
    let dim = (side * side).next_multiple_of(LANES);
    let origins: Vec<(usize, usize)> = ys
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
        .collect();
    let n = origins.len();
    let mut features = vec![0f32; n * dim];
    for (f, &(x0, y0)) in features.chunks_exact_mut(dim).zip(&origins) {
        for dy in 0..side {
            let row = &img[(y0 + dy) * sw + x0..][..side];
            f[dy * side..][..side].copy_from_slice(row);
        }
    }
    // Values are in [0,1], so the RMS difference ||a−b||/side is in [0,1] and does not depend on
    // the patch size; positions are normalised by the larger side of this scale.
    let value_norm = 1.0 / side as f32;
    let position_norm = 1.0 / sw.max(sh) as f32;
    let k = p.neighbours.min(n - 1);
    let patch_saliency: Vec<f32> = (0..n)
        .into_par_iter()
        .map_init(
            || Vec::with_capacity(n),
            |d: &mut Vec<f32>, i| {
                if k == 0 {
                    return 0.0; // a lone patch has nothing to differ from
                }
                let fi = &features[i * dim..][..dim];
                let (xi, yi) = origins[i];
                d.clear();
                for (j, (fj, &(xj, yj))) in features.chunks_exact(dim).zip(&origins).enumerate() {
                    if j == i {
                        continue;
                    }
                    let value = squared_distance(fi, fj).sqrt() * value_norm;
                    let (dx, dy) = (xi as f32 - xj as f32, yi as f32 - yj as f32);
                    let position = (dx * dx + dy * dy).sqrt() * position_norm;
                    d.push(value / (1.0 + p.c * position));
                }
                d.select_nth_unstable_by(k - 1, f32::total_cmp);
                let mean = d[..k].iter().sum::<f32>() / k as f32;
                1.0 - (-mean).exp()
            },
        )
        .collect();

    // Each pixel averages the saliency of the overlapping patches that cover it.
    let mut sum = vec![0f32; sw * sh];
    let mut count = vec![0u32; sw * sh];
    for (&s, &(x0, y0)) in patch_saliency.iter().zip(&origins) {
        for y in y0..y0 + side {
            for x in x0..x0 + side {
                sum[y * sw + x] += s;
                count[y * sw + x] += 1;
            }
        }
    }
    sum.iter()
        .zip(&count)
        .map(|(s, &c)| s / c.max(1) as f32)
        .collect()
}

/// Goferman's immediate context: pixels near the attended foci keep their saliency, distant
/// ones are attenuated by `1 − d_foci`. Skipped when no pixel exceeds the threshold.
fn immediate_context(s: &mut [f32], w: usize, h: usize, threshold: f32) {
    let foci: Vec<bool> = s.iter().map(|&v| v > threshold).collect();
    if !foci.contains(&true) {
        return;
    }
    let d2 = squared_distance_to_foci(&foci, w, h);
    // The diagonal bounds any distance, so the weight stays in [0,1].
    let diagonal = ((w * w + h * h) as f64).sqrt();
    for (v, d2) in s.iter_mut().zip(d2) {
        *v *= (1.0 - d2.sqrt() / diagonal).max(0.0) as f32;
    }
    normalise(s);
}

/// Exact squared Euclidean distance transform (Felzenszwalb & Huttenlocher's separable lower
/// envelope of parabolas): `O(w·h)` instead of comparing every pixel with every focus.
fn squared_distance_to_foci(foci: &[bool], w: usize, h: usize) -> Vec<f64> {
    // Large but finite, so that differences of two "far" values stay finite.
    const FAR: f64 = 1e20;
    let mut grid: Vec<f64> = foci.iter().map(|&f| if f { 0.0 } else { FAR }).collect();
    let mut line = Vec::new();
    let mut out = Vec::new();
    for x in 0..w {
        line.clear();
        line.extend((0..h).map(|y| grid[y * w + x]));
        lower_envelope(&line, &mut out);
        (0..h).for_each(|y| grid[y * w + x] = out[y]);
    }
    for y in 0..h {
        lower_envelope(&grid[y * w..][..w], &mut out);
        grid[y * w..][..w].copy_from_slice(&out);
    }
    grid
}

/// One-dimensional pass: `out[q] = min_p (q − p)² + f[p]`.
fn lower_envelope(f: &[f64], out: &mut Vec<f64>) {
    let n = f.len();
    let mut v = vec![0usize; n]; // parabola vertices of the envelope
    let mut z = vec![0f64; n + 1]; // boundaries between consecutive parabolas
    let meet = |q: usize, p: usize| {
        let (qf, pf) = (q as f64, p as f64);
        ((f[q] + qf * qf) - (f[p] + pf * pf)) / (2.0 * (qf - pf))
    };
    let mut k = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for q in 1..n {
        let mut s = meet(q, v[k]);
        while s <= z[k] {
            k -= 1;
            s = meet(q, v[k]);
        }
        k += 1;
        v[k] = q;
        z[k] = s;
        z[k + 1] = f64::INFINITY;
    }
    out.clear();
    k = 0;
    for q in 0..n {
        while z[k + 1] < q as f64 {
            k += 1;
        }
        let d = q as f64 - v[k] as f64;
        out.push(d * d + f[v[k]]);
    }
}

/// Gaussian centre prior with σ = max(w,h)/3, so the image corners keep roughly a third of
/// their weight on a square image.
fn centre_prior(s: &mut [f32], w: usize, h: usize) {
    let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    let sigma = w.max(h) as f32 / 3.0;
    for (i, v) in s.iter_mut().enumerate() {
        let (dx, dy) = ((i % w) as f32 - cx, (i / w) as f32 - cy);
        *v *= (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The distance transform against brute force on a small irregular set of foci.
    #[test]
    fn distance_transform_matches_brute_force() {
        let (w, h) = (13, 9);
        let foci: Vec<bool> = (0..w * h).map(|i| i % 17 == 3 || i == 50).collect();
        let fast = squared_distance_to_foci(&foci, w, h);
        for (i, &d) in fast.iter().enumerate() {
            let brute = (0..w * h)
                .filter(|&j| foci[j])
                .map(|j| {
                    let (dx, dy) = (
                        (i % w) as f64 - (j % w) as f64,
                        (i / w) as f64 - (j / w) as f64,
                    );
                    dx * dx + dy * dy
                })
                .fold(f64::INFINITY, f64::min);
            assert_eq!(d, brute, "pixel {i}");
        }
    }

    /// Enlarging is bilinear interpolation in closed form: pixel centres aligned
    /// (`u = (x + 0.5)·src/dst − 0.5`), clamped at the borders, separable.
    #[test]
    fn enlarging_is_bilinear() {
        let (sw, sh, dw, dh) = (5, 4, 13, 11);
        let src: Vec<f32> = (0..sw * sh)
            .map(|i| ((i * 37) % 11) as f32 / 10.0)
            .collect();
        let got = resample(&src, (sw, sh), (dw, dh)).unwrap();
        let want = crate::fixtures::bilinear_reference(&src, (sw, sh), (dw, dh));
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!((f64::from(g) - w).abs() < 1e-5, "pixel {i}: {g} vs {w}");
        }
    }

    /// Shrinking averages every source pixel in: a constant map stays constant, the mean stays
    /// close, and a single bright pixel off the border keeps about its mass instead of falling
    /// between samples (on the border the triangle is cut and its weight drops to about half).
    #[test]
    fn shrinking_keeps_the_relevance_mass() {
        let (w, h) = (23, 17);
        let flat = resample(&[0.25; 23 * 17], (w, h), (7, 5)).unwrap();
        assert!(flat.iter().all(|v| (v - 0.25).abs() < 1e-6), "{flat:?}");
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
        let dst = resample(&src, (w, h), (7, 5)).unwrap();
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean(&src) - mean(&dst)).abs() < 0.02 * mean(&src));
        for at in [w * 8 + 11, w * 3 + 4, w * 12 + 17, w * 5 + 9] {
            let mut spike = vec![0.0; w * h];
            spike[at] = 1.0;
            let small = resample(&spike, (w, h), (7, 5)).unwrap();
            let mass = small.iter().sum::<f32>() * (w * h) as f32 / 35.0;
            assert!((0.75..1.33).contains(&mass), "spike at {at}: mass {mass}");
        }
    }

    /// The grid covers every pixel and keeps 50 % overlap.
    #[test]
    fn grid_covers_the_axis() {
        assert_eq!(grid(16, 7, 3), vec![0, 3, 6, 9]);
        assert_eq!(grid(7, 7, 3), vec![0]);
        assert_eq!(grid(5, 1, 1), vec![0, 1, 2, 3, 4]);
    }
}
