//! Salient Relevance maps: output range and determinism, an SR that peaks at a relevant blob and
//! decays away from it, areas winning over isolated pixels, constant maps, skipped scales,
//! input validation and the centre prior.

use qvit_host::explain::saliency::{SaliencyParams, salient_relevance};
use qvit_host::fixtures::SeededRng;
use std::time::Instant;

/// Mean of `sr` over the pixels whose distance from `(cx, cy)` lies in `[r0, r1)`.
fn ring_mean(sr: &[f32], w: usize, (cx, cy): (f32, f32), r0: f32, r1: f32) -> f32 {
    let (mut sum, mut n) = (0f32, 0usize);
    for (i, &v) in sr.iter().enumerate() {
        let (dx, dy) = ((i % w) as f32 - cx, (i / w) as f32 - cy);
        let r = (dx * dx + dy * dy).sqrt();
        if r >= r0 && r < r1 {
            sum += v;
            n += 1;
        }
    }
    assert!(n > 0, "empty ring [{r0}, {r1})");
    sum / n as f32
}

/// A map of `side×side` with a filled disc of radius `radius` and value 1 at `centre`.
fn disc(side: usize, centre: (f32, f32), radius: f32) -> Vec<f32> {
    (0..side * side)
        .map(|i| {
            let (dx, dy) = ((i % side) as f32 - centre.0, (i / side) as f32 - centre.1);
            f32::from(dx * dx + dy * dy <= radius * radius)
        })
        .collect()
}

#[test]
fn output_is_in_unit_range_and_deterministic() {
    let (w, h) = (40, 31);
    let mut rng = SeededRng::new(7);
    // Signed relevance, as LRP produces.
    let map: Vec<f32> = (0..w * h).map(|_| rng.normal()).collect();
    let p = SaliencyParams::default();
    let a = salient_relevance(&map, w, h, &p).unwrap();
    let b = salient_relevance(&map, w, h, &p).unwrap();
    assert_eq!(a.len(), w * h);
    assert!(
        a.iter().all(|v| (0.0..=1.0).contains(v)),
        "values outside [0,1]"
    );
    assert_eq!(a, b, "two runs differ");
    // Normalised output: the range is used, not a constant.
    let max = a.iter().cloned().fold(f32::MIN, f32::max);
    assert_eq!(max, 1.0);
}

#[test]
fn blob_is_the_peak_and_saliency_decays_with_distance() {
    let side = 64;
    let centre = (20.0, 24.0);
    let map = disc(side, centre, 4.0);
    let sr = salient_relevance(&map, side, side, &SaliencyParams::default()).unwrap();

    let argmax = (0..sr.len())
        .max_by(|&i, &j| sr[i].total_cmp(&sr[j]))
        .unwrap();
    let (dx, dy) = (
        (argmax % side) as f32 - centre.0,
        (argmax / side) as f32 - centre.1,
    );
    assert!(
        (dx * dx + dy * dy).sqrt() <= 4.0 + 3.5,
        "maximum at ({}, {}), not at the blob",
        argmax % side,
        argmax / side
    );
    let rings: Vec<f32> = [
        (0.0, 5.0),
        (5.0, 10.0),
        (10.0, 18.0),
        (18.0, 28.0),
        (28.0, 40.0),
    ]
    .iter()
    .map(|&(r0, r1)| ring_mean(&sr, side, centre, r0, r1))
    .collect();
    println!("blob ring means {rings:?}");
    for pair in rings.windows(2) {
        assert!(pair[0] > pair[1], "ring means not decreasing: {rings:?}");
    }
}

/// A `side×side` map of uniform noise in `[0, noise)` plus a single pixel of `spike_value` at
/// `spike` and a 5×5 square of `region_value` centred at `region`.
fn spike_and_region(
    side: usize,
    noise: f32,
    spike: (usize, usize),
    spike_value: f32,
    region: (usize, usize),
    region_value: f32,
) -> Vec<f32> {
    let mut rng = SeededRng::new(11);
    let mut map: Vec<f32> = (0..side * side).map(|_| noise * rng.uniform()).collect();
    map[spike.1 * side + spike.0] += spike_value;
    for y in region.1 - 2..=region.1 + 2 {
        for x in region.0 - 2..=region.0 + 2 {
            map[y * side + x] += region_value;
        }
    }
    map
}

/// Maximum of `v` over the square of half-side `r` around `c`.
fn peak_near(v: &[f32], side: usize, c: (usize, usize), r: usize) -> f32 {
    let mut m = f32::MIN;
    for y in c.1 - r..=c.1 + r {
        for x in c.0 - r..=c.0 + r {
            m = m.max(v[y * side + x]);
        }
    }
    m
}

const SIDE: usize = 64;
const SPIKE: (usize, usize) = (16, 16);
const REGION: (usize, usize) = (46, 46);

#[test]
fn an_area_outweighs_an_isolated_pixel_of_the_same_intensity() {
    // Both features have the same peak relevance, so the raw map shows them equally bright.
    let map = spike_and_region(SIDE, 0.1, SPIKE, 1.0, REGION, 1.0);
    let sr = salient_relevance(&map, SIDE, SIDE, &SaliencyParams::default()).unwrap();
    let near = |c: (usize, usize)| ring_mean(&sr, SIDE, (c.0 as f32, c.1 as f32), 0.0, 8.0);
    let (spike, region) = (near(SPIKE), near(REGION));
    println!("mean SR within 8 px: spike {spike}, region {region}");
    assert!(region > 5.0 * spike, "spike {spike} vs region {region}");
    assert_eq!(
        peak_near(&sr, SIDE, REGION, 6),
        1.0,
        "the region is not the SR maximum"
    );
}

#[test]
fn an_isolated_spike_becomes_an_area_and_loses_dominance() {
    // Same total relevance: one pixel of 1 against 25 pixels of 1/25.
    let map = spike_and_region(SIDE, 0.01, SPIKE, 1.0, REGION, 1.0 / 25.0);
    let sr = salient_relevance(&map, SIDE, SIDE, &SaliencyParams::default()).unwrap();
    let dominance = |v: &[f32]| peak_near(v, SIDE, SPIKE, 6) / peak_near(v, SIDE, REGION, 6);
    let (before, after) = (dominance(&map), dominance(&sr));
    println!("spike peak / region peak: map {before}, SR {after}");
    assert!(after < 0.5 * before, "map {before}, SR {after}");
    // The spike's SR is an area, not a pixel: count pixels at ≥ half its peak.
    let peak = peak_near(&sr, SIDE, SPIKE, 6);
    let footprint = (SPIKE.1 - 12..=SPIKE.1 + 12)
        .flat_map(|y| (SPIKE.0 - 12..=SPIKE.0 + 12).map(move |x| (x, y)))
        .filter(|&(x, y)| sr[y * SIDE + x] >= 0.5 * peak)
        .count();
    println!("spike footprint at half peak: {footprint} px");
    assert!(footprint >= 9, "footprint {footprint} px");
}

#[test]
fn a_constant_map_has_zero_saliency() {
    for value in [0.0, 2.5, -1.0] {
        let sr = salient_relevance(&[value; 30 * 20], 30, 20, &SaliencyParams::default()).unwrap();
        assert!(sr.iter().all(|&v| v == 0.0), "constant {value}");
    }
}

#[test]
fn scales_smaller_than_the_patch_are_skipped() {
    let side = 20;
    let map = disc(side, (8.0, 11.0), 3.0);
    let both = SaliencyParams {
        scales: vec![1.0, 0.2], // 0.2·20 = 4 < 7
        ..SaliencyParams::default()
    };
    let only_full = SaliencyParams {
        scales: vec![1.0],
        ..SaliencyParams::default()
    };
    let a = salient_relevance(&map, side, side, &both).unwrap();
    let b = salient_relevance(&map, side, side, &only_full).unwrap();
    assert_eq!(a, b);
    // A map exactly one patch wide has a single patch, with nothing to differ from.
    let one = salient_relevance(&disc(7, (3.0, 3.0), 2.0), 7, 7, &only_full).unwrap();
    assert!(one.iter().all(|&v| v == 0.0));
    // No usable scale at all is an error, not an empty or panicking result.
    assert!(salient_relevance(&[1.0; 25], 5, 5, &SaliencyParams::default()).is_err());
}

#[test]
fn bad_inputs_are_errors() {
    let d = SaliencyParams::default;
    let map = vec![0.5f32; 16 * 16];
    let err = |m: &[f32], w, h, p: SaliencyParams| salient_relevance(m, w, h, &p).is_err();
    assert!(err(&map, 16, 15, d()), "w·h ≠ len");
    assert!(err(&[], 0, 0, d()), "empty map");
    assert!(err(&[], 0, 16, d()), "zero width");
    let mut nan = map.clone();
    nan[17] = f32::NAN;
    assert!(err(&nan, 16, 16, d()), "NaN");
    nan[17] = f32::INFINITY;
    assert!(err(&nan, 16, 16, d()), "infinity");
    assert!(err(&map, 16, 16, SaliencyParams { patch: 0, ..d() }));
    assert!(err(
        &map,
        16,
        16,
        SaliencyParams {
            scales: vec![],
            ..d()
        }
    ));
    for r in [0.0, -0.5, 1.5, f32::NAN] {
        assert!(
            err(
                &map,
                16,
                16,
                SaliencyParams {
                    scales: vec![1.0, r],
                    ..d()
                }
            ),
            "scale {r}"
        );
    }
    assert!(err(
        &map,
        16,
        16,
        SaliencyParams {
            neighbours: 0,
            ..d()
        }
    ));
    assert!(err(&map, 16, 16, SaliencyParams { c: -1.0, ..d() }));
    assert!(err(&map, 16, 16, SaliencyParams { c: f32::NAN, ..d() }));
    assert!(err(
        &map,
        16,
        16,
        SaliencyParams {
            foci_threshold: f32::NAN,
            ..d()
        }
    ));
    assert!(
        salient_relevance(&map, 16, 16, &d()).is_ok(),
        "the valid map itself"
    );
}

#[test]
fn the_centre_prior_lowers_the_corners() {
    // Two identical blobs, one at the centre and one near a corner.
    let side = 48;
    let mut map = disc(side, (23.5, 23.5), 3.0);
    map.iter_mut()
        .zip(disc(side, (6.0, 6.0), 3.0))
        .for_each(|(m, c)| *m += c);
    let ratio = |centre_prior| {
        let p = SaliencyParams {
            centre_prior,
            ..SaliencyParams::default()
        };
        let sr = salient_relevance(&map, side, side, &p).unwrap();
        ring_mean(&sr, side, (6.0, 6.0), 0.0, 4.0) / ring_mean(&sr, side, (23.5, 23.5), 0.0, 4.0)
    };
    let (without, with) = (ratio(false), ratio(true));
    println!("corner blob / centre blob: without prior {without}, with prior {with}");
    assert!(with < 0.7 * without, "without {without}, with {with}");
}

/// Not a timing assertion: prints the cost at 28×28 (a ViT patch grid) and 224×224 (pixels);
/// run with `-- --nocapture`.
#[test]
fn report_time() {
    for side in [28, 224] {
        let mut rng = SeededRng::new(3);
        let mut map: Vec<f32> = (0..side * side).map(|_| 0.05 * rng.normal()).collect();
        let s = side as f32 / 224.0;
        for (c, r) in [
            ((60.0, 80.0), 12.0),
            ((150.0, 120.0), 20.0),
            ((180.0, 40.0), 6.0),
        ] {
            map.iter_mut()
                .zip(disc(side, (c.0 * s, c.1 * s), r * s))
                .for_each(|(m, d)| *m += d);
        }
        let start = Instant::now();
        let sr = salient_relevance(&map, side, side, &SaliencyParams::default()).unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!("{side}×{side} salient relevance: {secs:.4} s");
        assert_eq!(sr.len(), side * side);
    }
}
