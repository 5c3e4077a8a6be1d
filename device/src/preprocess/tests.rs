use super::*;
use image::{GrayImage, Luma, Rgb, RgbImage};

fn rgb_pre(resize: Option<u32>, crop: [u32; 2], layout: Layout) -> Preprocess {
    Preprocess {
        resize,
        crop,
        mean: vec![0.5, 0.25, 0.0],
        std: vec![0.5, 0.25, 1.0],
        grayscale: false,
        layout,
    }
}

#[test]
fn constant_colour_normalises_everywhere() {
    let colour = [200u8, 100, 30];
    let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(37, 23, Rgb(colour)));
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for resize in [None, Some(20), Some(8)] {
            let p = rgb_pre(resize, [8, 6], layout);
            let t = p.apply(&img).unwrap();
            let expected_shape = match layout {
                Layout::Nchw => vec![1, 3, 8, 6],
                Layout::Nhwc => vec![1, 8, 6, 3],
            };
            assert_eq!(t.shape, expected_shape);
            for (i, &v) in t.data.iter().enumerate() {
                let k = match layout {
                    Layout::Nchw => i / 48,
                    Layout::Nhwc => i % 3,
                };
                let want = (f32::from(colour[k]) / 255.0 - p.mean[k]) / p.std[k];
                assert!(
                    (v - want).abs() < 1e-6,
                    "{layout:?} {resize:?} element {i}: {v} vs {want}"
                );
            }
        }
    }
}

/// A 4x6 (height x width) image whose red channel encodes the position: 10·y + x.
fn positional() -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(6, 4, |x, y| {
        Rgb([(10 * y + x) as u8, 0, 255])
    }))
}

#[test]
fn centre_crop_picks_the_middle_pixels() {
    // Resize to the shorter side 4 keeps 4x6; the 2x2 crop starts at row 1, column 2.
    let p = Preprocess {
        mean: vec![0.0; 3],
        std: vec![1.0; 3],
        ..rgb_pre(Some(4), [2, 2], Layout::Nchw)
    };
    let t = p.apply(&positional()).unwrap();
    let red: Vec<f32> = t.data[..4].iter().map(|v| (v * 255.0).round()).collect();
    assert_eq!(red, [12.0, 13.0, 22.0, 23.0]);
    assert!(t.data[4..8].iter().all(|&g| g == 0.0));
    assert!(t.data[8..].iter().all(|&b| b == 1.0));

    // Odd margins round half to even, like Python: (4-1)/2 = 1.5 -> 2, (6-3)/2 = 1.5 -> 2.
    let p = Preprocess {
        mean: vec![0.0; 3],
        std: vec![1.0; 3],
        ..rgb_pre(Some(4), [1, 3], Layout::Nhwc)
    };
    let t = p.apply(&positional()).unwrap();
    let red: Vec<f32> = t
        .data
        .iter()
        .step_by(3)
        .map(|v| (v * 255.0).round())
        .collect();
    assert_eq!(red, [22.0, 23.0, 24.0]);
}

#[test]
fn shorter_side_resize_matches_torchvision_sizes() {
    assert_eq!(shorter_side_to(640, 480, 256), (341, 256));
    assert_eq!(shorter_side_to(480, 640, 256), (256, 341));
    assert_eq!(shorter_side_to(300, 300, 256), (256, 256));
    assert_eq!(shorter_side_to(1000, 1, 2), (2000, 2));
}

#[test]
fn grayscale_uses_pil_luma() {
    let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(5, 5, Rgb([255, 0, 0])));
    let p = Preprocess::mnist();
    let p = Preprocess { crop: [5, 5], ..p };
    let t = p.apply(&img).unwrap();
    assert_eq!(t.shape, [1, 1, 5, 5]);
    // PIL: L = R·299/1000 + G·587/1000 + B·114/1000 -> 76 for pure red.
    let want = (76.0 / 255.0 - 0.1307) / 0.3081;
    assert!(t.data.iter().all(|&v| (v - want).abs() < 1e-6));

    let gray = DynamicImage::ImageLuma8(GrayImage::from_fn(5, 5, |x, _| Luma([x as u8 * 50])));
    let t = Preprocess {
        mean: vec![0.0],
        std: vec![1.0],
        ..p
    }
    .apply(&gray)
    .unwrap();
    assert_eq!((t.data[3] * 255.0).round(), 150.0);
}

#[test]
fn downscale_averages_neighbours() {
    // Stripes of 0 and 255 halved in width blend to mid-grey.
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(8, 8, |x, _| {
        Rgb([if x % 2 == 0 { 0 } else { 255 }; 3])
    }));
    let p = Preprocess {
        mean: vec![0.0; 3],
        std: vec![1.0; 3],
        ..rgb_pre(None, [4, 4], Layout::Nchw)
    };
    let t = p.apply(&img).unwrap();
    for &v in &t.data {
        assert!((v - 0.5).abs() < 0.15, "{v}");
    }
}

#[test]
fn rejects_inconsistent_settings() {
    let img = positional();
    let p = Preprocess {
        mean: vec![0.0],
        ..rgb_pre(None, [2, 2], Layout::Nchw)
    };
    assert!(p.apply(&img).is_err());
    assert!(rgb_pre(None, [0, 2], Layout::Nchw).apply(&img).is_err());
    assert!(rgb_pre(Some(2), [3, 3], Layout::Nchw).apply(&img).is_err());
    // Refused before allocating 48 GiB.
    assert!(
        rgb_pre(None, [65535, 65535], Layout::Nchw)
            .apply(&img)
            .is_err()
    );
}

/// Grey images skip the RGB conversion; the tensor must be the one the RGB form gives, bit
/// for bit, for colour and grey models, shrinking, enlarging and resizing straight to the crop.
#[test]
fn grey_images_preprocess_exactly_as_their_rgb_form() {
    let grey = GrayImage::from_fn(23, 17, |x, y| Luma([((x * 37 + y * 11) % 256) as u8]));
    let as_rgb = DynamicImage::ImageRgb8(DynamicImage::ImageLuma8(grey.clone()).to_rgb8());
    let grey = DynamicImage::ImageLuma8(grey);
    for grayscale in [false, true] {
        let c = if grayscale { 1 } else { 3 };
        for (resize, crop) in [
            (None, [8, 8]),
            (Some(9), [9, 7]),
            (Some(40), [33, 31]),
            (None, [30, 40]),
        ] {
            let p = Preprocess {
                resize,
                crop,
                mean: vec![0.4; c],
                std: vec![0.3; c],
                grayscale,
                layout: Layout::Nchw,
            };
            let (a, b) = (p.apply(&grey).unwrap(), p.apply(&as_rgb).unwrap());
            assert_eq!(a.shape, b.shape);
            let bits = |t: &Tensor| t.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&a),
                bits(&b),
                "{resize:?} {crop:?} grayscale {grayscale}"
            );
        }
    }
}

#[test]
fn settings_beyond_the_limits_are_refused() {
    use super::limits::MAX_PREPROCESS_SIDE as MAX;
    let img = positional();
    let cases = [
        (
            rgb_pre(Some(100_000), [224, 224], Layout::Nchw),
            "resize 100000 is larger than 4096",
        ),
        (
            rgb_pre(Some(MAX + 1), [2, 2], Layout::Nchw),
            "larger than 4096",
        ),
        (
            rgb_pre(None, [MAX + 1, 2], Layout::Nchw),
            "crop 4097x2 is larger than 4096",
        ),
        (rgb_pre(None, [0, 2], Layout::Nchw), "empty"),
        (
            rgb_pre(Some(2), [3, 3], Layout::Nchw),
            "smaller than the crop",
        ),
        (
            Preprocess {
                std: vec![1.0, 0.0, 1.0],
                ..rgb_pre(None, [2, 2], Layout::Nchw)
            },
            "std",
        ),
        (
            Preprocess {
                mean: vec![f32::NAN, 0.0, 0.0],
                ..rgb_pre(None, [2, 2], Layout::Nchw)
            },
            "finite",
        ),
    ];
    for (p, want) in cases {
        let why = p.check().unwrap_err();
        assert!(why.contains(want), "{why}");
        let err = p.apply(&img).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
    rgb_pre(Some(MAX), [MAX, MAX], Layout::Nchw)
        .check()
        .unwrap();
}

/// A thin strip resized to a shorter side of 256 would be 256 x 5 120 000 pixels (3.9 GB):
/// refused before resampling, with the sizes in the message. Ordinary photos pass.
#[test]
fn extreme_aspect_ratios_are_refused_before_resampling() {
    let strip = DynamicImage::ImageLuma8(GrayImage::from_pixel(1, 20_000, Luma([9])));
    let p = Preprocess {
        resize: Some(256),
        ..Preprocess::imagenet(224)
    };
    let err = p.apply(&strip).unwrap_err();
    assert!(
        matches!(&err, Error::TooLarge { what, .. } if what.contains("1x20000") && what.contains("256x5120000")),
        "{err}"
    );
    assert!(check_resample(4000, 3000, 341, 256).is_ok());
    // Straight to the crop, the same strip is cheap.
    let t = Preprocess {
        resize: None,
        ..Preprocess::imagenet(224)
    }
    .apply(&strip)
    .unwrap();
    assert_eq!(t.shape, [1, 3, 224, 224]);
}
