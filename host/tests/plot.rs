//! Properties of the PNG charts, colour maps, heatmap overlay and chart text.
use image::{Rgb, RgbImage};
use qvit_host::fixtures::bilinear_reference;
use qvit_host::plot::{
    Bar, COLORBAR_WIDTH, MAX_BARS, Series, bar_chart, diverging, group_color, line_chart, overlay,
    render_bar_chart, render_line_chart, sequential,
};
use std::path::PathBuf;

fn out_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("plot-{name}.png"))
}

fn bars(n: usize) -> Vec<Bar> {
    (0..n)
        .map(|i| Bar {
            label: format!("blocks.{i}.mlp.fc1"),
            value: i as f64 * 0.37 - 3.0,
            group: i % 3,
        })
        .collect()
}

fn groups() -> Vec<String> {
    ["w4a8", "w8a8", "float"].map(String::from).to_vec()
}

fn count(img: &RgbImage, color: [u8; 3]) -> usize {
    img.pixels().filter(|p| p.0 == color).count()
}

/// (x, y) of every pixel of `color`.
fn where_is(img: &RgbImage, color: [u8; 3]) -> Vec<(u32, u32)> {
    img.enumerate_pixels()
        .filter(|(_, _, p)| p.0 == color)
        .map(|(x, y, _)| (x, y))
        .collect()
}

#[test]
fn bar_chart_png_decodes_and_grows_linearly_with_bar_count() {
    let mut heights = Vec::new();
    for n in [1, 2, 50, 100] {
        let path = out_path(&format!("bars-{n}"));
        bar_chart(&path, "Relevance per layer", &bars(n), &groups()).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.width(), 960);
        heights.push(i64::from(img.height()));
    }
    let row = heights[1] - heights[0];
    assert!(
        row >= 10,
        "a row must be tall enough for 8 px text, got {row}"
    );
    assert_eq!(heights[2] - heights[0], 49 * row);
    assert_eq!(heights[3] - heights[0], 99 * row);
}

#[test]
fn larger_bar_paints_more_of_its_colour_and_negative_bars_go_left() {
    let gs = ["a".to_string(), "b".to_string()];
    let pair = |big: f64| {
        vec![
            Bar {
                label: "big".into(),
                value: big,
                group: 0,
            },
            Bar {
                label: "small".into(),
                value: 2.0,
                group: 1,
            },
        ]
    };
    for big in [10.0, -10.0] {
        let img = render_bar_chart("t", &pair(big), &gs).unwrap();
        let (c0, c1) = (count(&img, group_color(0)), count(&img, group_color(1)));
        assert!(c0 > 3 * c1, "value {big}: {c0} px vs {c1} px for value 2");
    }
    // Rows holding only one colour are bar rows (legend swatches share a row).
    let img = render_bar_chart("t", &pair(-10.0), &gs).unwrap();
    let (p0, p1) = (
        where_is(&img, group_color(0)),
        where_is(&img, group_color(1)),
    );
    let only = |p: &[(u32, u32)], other: &[(u32, u32)]| -> Vec<u32> {
        p.iter()
            .filter(|(_, y)| !other.iter().any(|o| o.1 == *y))
            .map(|q| q.0)
            .collect()
    };
    let neg_right = only(&p0, &p1).into_iter().max().unwrap();
    let pos_left = only(&p1, &p0).into_iter().min().unwrap();
    assert!(
        neg_right <= pos_left,
        "negative bar reaches x={neg_right}, positive starts at {pos_left}"
    );
}

#[test]
fn bar_chart_rejects_bad_input_without_panicking() {
    let gs = groups();
    let mut nan = bars(5);
    nan[3].value = f64::NAN;
    let err = render_bar_chart("t", &nan, &gs).unwrap_err();
    assert!(format!("{err:#}").contains("bar 3"), "{err:#}");
    let mut inf = bars(2);
    inf[0].value = f64::INFINITY;
    assert!(render_bar_chart("t", &inf, &gs).is_err());
    let mut bad_group = bars(2);
    bad_group[1].group = 7;
    assert!(render_bar_chart("t", &bad_group, &gs).is_err());
    assert!(render_bar_chart("t", &[], &gs).is_err());
    assert!(render_bar_chart("t", &bars(MAX_BARS + 1), &gs).is_err());
    let extreme = [
        Bar {
            label: "x".into(),
            value: f64::MAX,
            group: 0,
        },
        Bar {
            label: "y".into(),
            value: -f64::MAX,
            group: 1,
        },
    ];
    assert!(render_bar_chart("t", &extreme, &gs).is_err());
    let err = bar_chart(&out_path("no-dir/x/y"), "t", &bars(1), &gs).unwrap_err();
    assert!(format!("{err:#}").contains("writing PNG"), "{err:#}");
}

#[test]
fn huge_labels_are_shortened_not_fatal() {
    let long = "L".repeat(200_000);
    let b = [Bar {
        label: long.clone(),
        value: 1.0,
        group: 0,
    }];
    let img = render_bar_chart(&long, &b, std::slice::from_ref(&long)).unwrap();
    assert_eq!(img.width(), 960);
    let s = [Series {
        name: long.clone(),
        points: vec![(0.0, 0.0), (1.0, 1.0)],
    }];
    line_chart(&out_path("long-labels"), &long, &long, &long, &s).unwrap();
}

fn curve(name: &str, f: impl Fn(f64) -> f64) -> Series {
    Series {
        name: name.into(),
        points: (0..=20)
            .map(|i| i as f64 / 20.0)
            .map(|x| (x, f(x)))
            .collect(),
    }
}

#[test]
fn line_chart_draws_each_series_at_its_height() {
    let path = out_path("lines");
    let high = curve("insertion", |_| 1.0);
    let low = curve("deletion", |_| 0.0);
    line_chart(
        &path,
        "Deletion / insertion",
        "fraction of pixels",
        "p(class)",
        &[high, low],
    )
    .unwrap();
    let img = image::open(&path).unwrap().to_rgb8();
    assert_eq!(img.width(), 800);
    let mean_y = |c| {
        let p = where_is(&img, c);
        assert!(
            p.len() > 500,
            "series colour {c:?} barely drawn: {} px",
            p.len()
        );
        p.iter().map(|q| f64::from(q.1)).sum::<f64>() / p.len() as f64
    };
    let (y_high, y_low) = (mean_y(group_color(0)), mean_y(group_color(1)));
    assert!(
        y_high + 100.0 < y_low,
        "y=1 series at row {y_high}, y=0 series at row {y_low}"
    );
}

#[test]
fn line_chart_rejects_nan_and_empty_data() {
    let p = out_path("bad-lines");
    let mut nan = curve("a", |x| x);
    nan.points[4].1 = f64::NAN;
    let err = line_chart(&p, "t", "x", "y", &[curve("ok", |x| x), nan]).unwrap_err();
    assert!(format!("{err:#}").contains("series 1"), "{err:#}");
    assert!(line_chart(&p, "t", "x", "y", &[]).is_err());
    let empty = Series {
        name: "e".into(),
        points: vec![],
    };
    assert!(line_chart(&p, "t", "x", "y", std::slice::from_ref(&empty)).is_err());
    // An empty series next to a real one is only a legend entry; a single flat point works too.
    let single = Series {
        name: "one".into(),
        points: vec![(0.5, 0.5)],
    };
    line_chart(&p, "t", "x", "y", &[empty, single]).unwrap();
}

/// CIE L* (0 black .. 100 white) of an sRGB colour: the closed-form sRGB → XYZ → Lab chain.
fn lightness(c: [u8; 3]) -> f64 {
    let lin = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let y = 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
    if y > 216.0 / 24389.0 {
        116.0 * y.cbrt() - 16.0
    } else {
        y * 24389.0 / 27.0
    }
}

#[test]
fn colour_maps_order_lightness_and_keep_their_hues() {
    // Diverging: a light centre, blue below, red above, lightness falling away from 0.
    assert!(lightness(diverging(0.0)) > 90.0, "{:?}", diverging(0.0));
    let (lo, hi) = (diverging(-1.0), diverging(1.0));
    assert!(lo[2] > lo[0] + 40, "-1 must be blue: {lo:?}");
    assert!(hi[0] > hi[2] + 40, "+1 must be red: {hi:?}");
    for t in [0.25f32, 0.5, 0.75] {
        let (neg, pos) = (diverging(-t), diverging(t));
        assert!(
            neg[2] > neg[0] && pos[0] > pos[2],
            "hue at ±{t}: {neg:?} {pos:?}"
        );
    }
    // Lightness falls away from 0 on both sides: in fine steps up to the spline smoothing of
    // the table (half an L* unit), in quarter steps by a clearly visible amount.
    let steps: Vec<f32> = (0..=100).map(|i| i as f32 / 100.0).collect();
    for sign in [-1.0f32, 1.0] {
        let l = |t: f32| lightness(diverging(sign * t));
        for w in steps.windows(2) {
            assert!(
                l(w[1]) < l(w[0]) + 0.5,
                "diverging lightness rises from {} to {} (side {sign})",
                w[0],
                w[1]
            );
        }
        for q in [0.0f32, 0.25, 0.5, 0.75] {
            assert!(
                l(q + 0.25) < l(q) - 5.0,
                "diverging lightness flat between {q} and {} (side {sign})",
                q + 0.25
            );
        }
    }
    // Sequential: lightness strictly rising, and evenly (a perceptual map's point): no step
    // of 1/50 changes L* by more than 3.5 times the mean step.
    let l: Vec<f64> = (0..=50)
        .map(|i| lightness(sequential(i as f32 / 50.0)))
        .collect();
    let diffs: Vec<f64> = l.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        diffs.iter().all(|&d| d > 0.0),
        "sequential lightness not rising: {l:?}"
    );
    let mean = (l[50] - l[0]) / 50.0;
    assert!(
        diffs.iter().all(|&d| d < 3.5 * mean),
        "uneven lightness steps {diffs:?}"
    );
    assert!(l[0] < 5.0 && l[50] > 90.0, "ends {} {}", l[0], l[50]);
    // Out-of-range values clamp; NaN is "no evidence" / the lowest colour.
    assert_eq!(diverging(7.0), diverging(1.0));
    assert_eq!(diverging(-7.0), diverging(-1.0));
    assert_eq!(sequential(2.0), sequential(1.0));
    assert_eq!(diverging(f32::NAN), diverging(0.0));
    assert_eq!(sequential(f32::NAN), sequential(0.0));
}

fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 7 % 256) as u8,
            (y * 13 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    })
}

#[test]
fn overlay_keeps_size_and_alpha_zero_is_identity() {
    let img = photo(37, 23);
    let map: Vec<f32> = (0..15).map(|i| i as f32 - 7.0).collect();
    for signed in [true, false] {
        let out = overlay(&img, &map, 3, 5, 0.0, signed).unwrap();
        assert_eq!(out.dimensions(), (37 + COLORBAR_WIDTH, 23));
        for (x, y, p) in img.enumerate_pixels() {
            assert_eq!(out.get_pixel(x, y), p, "pixel ({x},{y}) changed at alpha 0");
        }
        // The colour bar strip carries both ends of the colour map.
        let strip: Vec<[u8; 3]> = (37..37 + COLORBAR_WIDTH)
            .map(|x| out.get_pixel(x, 0).0)
            .collect();
        let top = if signed {
            diverging(1.0)
        } else {
            sequential(1.0)
        };
        assert!(
            strip.contains(&top),
            "signed={signed}: no {top:?} in the colour bar"
        );
    }
}

/// Mean over each quadrant of a per-pixel score, in order TL, TR, BL, BR.
fn quadrant_means(img: &RgbImage, w: u32, h: u32, score: impl Fn([u8; 3]) -> f64) -> [f64; 4] {
    let mut sum = [0.0; 4];
    for y in 0..h {
        for x in 0..w {
            let q = usize::from(x >= w / 2) + 2 * usize::from(y >= h / 2);
            sum[q] += score(img.get_pixel(x, y).0);
        }
    }
    sum.map(|s| s / f64::from(w * h / 4))
}

#[test]
fn hot_quadrant_is_reddest_and_brightest() {
    let (w, h) = (160, 120);
    let img = RgbImage::from_pixel(w, h, Rgb([128, 128, 128]));
    // 1 in the top-right quadrant of an 8×8 map, 0 elsewhere.
    let map: Vec<f32> = (0..64)
        .map(|i| f32::from(u8::from(i % 8 >= 4 && i / 8 < 4)))
        .collect();
    let red = overlay(&img, &map, 8, 8, 0.6, true).unwrap();
    let redness = quadrant_means(&red, w, h, |p| f64::from(p[0]) - f64::from(p[1].max(p[2])));
    let bright = overlay(&img, &map, 8, 8, 0.6, false).unwrap();
    // Kept for eyeballing the layout; the assertions below are what the test checks.
    red.save(out_path("overlay-signed")).unwrap();
    bright.save(out_path("overlay-sequential")).unwrap();
    let brightness = quadrant_means(&bright, w, h, |p| p.iter().map(|&c| f64::from(c)).sum());
    for (name, m) in [("redness", redness), ("brightness", brightness)] {
        for q in [0, 2, 3] {
            assert!(
                m[1] > m[q] + 20.0,
                "{name}: top-right {} vs quadrant {q} {}",
                m[1],
                m[q]
            );
        }
    }
}

/// The diverging-map input whose colour is nearest to `c` (the map inverted by table look-up).
fn diverging_inverse(c: [u8; 3]) -> f32 {
    (-1000..=1000)
        .map(|i| i as f32 / 1000.0)
        .min_by_key(|&u| {
            let d = diverging(u);
            (0..3)
                .map(|k| (i32::from(d[k]) - i32::from(c[k])).pow(2))
                .sum::<i32>()
        })
        .unwrap()
}

#[test]
fn overlay_interpolates_between_map_values() {
    // Constant positive signed map at alpha 1: every image pixel is the map's top colour.
    let img = photo(20, 10);
    let out = overlay(&img, &[3.0; 6], 3, 2, 1.0, true).unwrap();
    let top = diverging(1.0);
    assert!((0..20).all(|x| (0..10).all(|y| out.get_pixel(x, y).0 == top)));
    // A 2×1 map [-1, 1]: the bottom colour on the left, the top one on the right, and the map
    // value read back from the colours rising monotonically between.
    let out = overlay(&img, &[-1.0, 1.0], 2, 1, 1.0, true).unwrap();
    let u: Vec<f32> = (0..20)
        .map(|x| diverging_inverse(out.get_pixel(x, 5).0))
        .collect();
    assert!(u.windows(2).all(|w| w[0] <= w[1] + 0.01), "{u:?}");
    assert_eq!(out.get_pixel(0, 5).0, diverging(-1.0));
    assert_eq!(out.get_pixel(19, 5).0, diverging(1.0));
    assert!(u[9] > -0.3 && u[10] < 0.3, "the middle is near 0: {u:?}");
}

/// Enlarging, the heat layer (alpha 1) is the colour of the bilinearly interpolated map in
/// closed form: pixel centres aligned (`u = (x + 0.5)·m/n − 0.5`), clamped at the borders.
#[test]
fn overlay_heat_is_the_bilinear_map_colour() {
    let (mw, mh, w, h) = (4usize, 3usize, 29u32, 17u32);
    let map: Vec<f32> = (0..mw * mh).map(|i| ((i * 5) % 7) as f32 - 3.0).collect();
    let out = overlay(&photo(w, h), &map, mw, mh, 1.0, true).unwrap();
    let max = map.iter().fold(0f32, |m, v| m.max(v.abs()));
    let want = bilinear_reference(&map, (mw, mh), (w as usize, h as usize));
    for (x, y, got) in out.enumerate_pixels().filter(|(x, _, _)| *x < w) {
        let want = diverging((want[(y * w + x) as usize] / f64::from(max)) as f32);
        let off = (0..3).map(|k| got[k].abs_diff(want[k])).max().unwrap();
        assert!(off <= 1, "({x},{y}): {got:?} vs {want:?}");
    }
}

#[test]
fn overlay_rejects_bad_input() {
    let img = photo(8, 8);
    assert!(overlay(&img, &[0.0; 3], 2, 2, 0.5, true).is_err());
    assert!(overlay(&img, &[], 0, 0, 0.5, true).is_err());
    assert!(overlay(&img, &[0.0, f32::NAN, 0.0, 0.0], 2, 2, 0.5, true).is_err());
    assert!(overlay(&img, &[0.0; 4], 2, 2, f32::NAN, true).is_err());
    assert!(overlay(&img, &[0.0; 4], 2, 2, 1.5, true).is_err());
    assert!(overlay(&img, &[0.0; 4], usize::MAX, 2, 0.5, true).is_err());
    assert!(overlay(&RgbImage::new(0, 0), &[0.0; 4], 2, 2, 0.5, true).is_err());
    // Extreme but finite values must not overflow the scaling.
    overlay(&img, &[f32::MAX, -f32::MAX, 0.0, 1.0], 2, 2, 0.5, false).unwrap();
}

/// Pixels darker than mid grey.
fn dark(img: &RgbImage, xs: std::ops::Range<u32>, ys: std::ops::Range<u32>) -> usize {
    ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
        .filter(|&(x, y)| lightness(img.get_pixel(x, y).0) < 50.0)
        .count()
}

#[test]
fn chart_text_is_anti_aliased_and_labels_every_bar() {
    let bars: Vec<Bar> = (0..6)
        .map(|i| Bar {
            label: format!("blocks.{i}.attn.qkv"),
            value: 1.0 + i as f64,
            group: 0,
        })
        .collect();
    let img = render_bar_chart("Relevance per layer", &bars, &groups()).unwrap();
    // Anti-aliased glyph edges: many grey levels between the ink and the white background,
    // where a bitmap font would give two.
    let greys: std::collections::BTreeSet<u8> = img
        .pixels()
        .filter(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2] && (40..215).contains(&p.0[0]))
        .map(|p| p.0[0])
        .collect();
    assert!(greys.len() >= 20, "only {} grey levels", greys.len());
    // Each bar (a band of rows of its colour) has its label left of it, in the same rows.
    let colour = group_color(0);
    let pts = where_is(&img, colour);
    let bar_left = pts.iter().map(|p| p.0).filter(|&x| x > 100).min().unwrap();
    let mut rows: Vec<u32> = pts
        .iter()
        .filter(|p| p.0 >= bar_left)
        .map(|p| p.1)
        .collect();
    rows.sort();
    rows.dedup();
    let mut bands: Vec<(u32, u32)> = Vec::new();
    for y in rows {
        match bands.last_mut() {
            Some(b) if b.1 + 1 == y => b.1 = y,
            _ => bands.push((y, y)),
        }
    }
    assert_eq!(bands.len(), 6, "bars found as row bands: {bands:?}");
    for (i, &(y0, y1)) in bands.iter().enumerate() {
        let ink = dark(&img, 0..bar_left - 4, y0..y1 + 1);
        assert!(
            ink > 30,
            "bar {i} (rows {y0}..={y1}) has no label ({ink} dark px)"
        );
    }
    // Longer bars have their value printed further right: the first bar (value 1) is the
    // shortest and is at the top.
    let width_of = |(y0, y1): (u32, u32)| {
        pts.iter()
            .filter(|p| p.1 >= y0 && p.1 <= y1 && p.0 >= bar_left)
            .count()
            / (y1 - y0 + 1) as usize
    };
    let widths: Vec<usize> = bands.iter().map(|&b| width_of(b)).collect();
    assert!(widths.windows(2).all(|w| w[0] < w[1]), "{widths:?}");
}

#[test]
fn title_and_axis_descriptions_are_drawn_where_they_belong() {
    let s = [curve("a", |x| x)];
    let bare = render_line_chart("", "", "", &s).unwrap();
    let full = render_line_chart(
        "Deletion and insertion curves",
        "fraction of pixels removed",
        "target score",
        &s,
    )
    .unwrap();
    assert_eq!(bare.dimensions(), full.dimensions());
    let (w, h) = full.dimensions();
    // The title: the band above the legend, empty without one.
    assert_eq!(dark(&bare, 0..w, 0..38), 0);
    assert!(dark(&full, 0..w, 0..38) > 150);
    // The descriptions: every pixel that differs outside the title band is axis text; the
    // y description is rotated (a tall, narrow patch at the left), the x one lies flat at the
    // bottom.
    let diff: Vec<(u32, u32)> = full
        .enumerate_pixels()
        .filter(|&(x, y, p)| y >= 38 && p != bare.get_pixel(x, y))
        .map(|(x, y, _)| (x, y))
        .collect();
    let left: Vec<_> = diff.iter().filter(|p| p.0 < 40).collect();
    let bottom: Vec<_> = diff.iter().filter(|p| p.1 > h - 40).collect();
    assert_eq!(
        left.len() + bottom.len(),
        diff.len(),
        "text outside the axes"
    );
    let extent = |ps: &[&(u32, u32)]| {
        let xs = ps.iter().map(|p| p.0);
        let ys = ps.iter().map(|p| p.1);
        (
            xs.clone().max().unwrap() - xs.min().unwrap(),
            ys.clone().max().unwrap() - ys.min().unwrap(),
        )
    };
    let (lw, lh) = extent(&left);
    assert!(lh > 3 * lw, "y description is {lw}x{lh}, not rotated");
    let (bw, bh) = extent(&bottom);
    assert!(bw > 5 * bh, "x description is {bw}x{bh}");
}
