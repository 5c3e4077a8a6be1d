//! Image decoding against the `image` crate's own decoding (the reference for pixels), and
//! against damaged files: a cut or corrupted PNG or JPEG is an error, although `image`'s
//! lenient JPEG path turns a cut file into a whole picture half of which is grey.

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use qvit_device::Error;
use qvit_device::preprocess::decode_image;
use qvit_device::preprocess::limits::MAX_IMAGE_SIDE;

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

/// A picture with detail everywhere, so a JPEG's entropy-coded data is long.
fn noisy(w: u32, h: u32) -> RgbImage {
    use rand_xoshiro::rand_core::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(12345);
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 5) as u8, (y * 3) as u8, rng.next_u32() as u8])
    })
}

fn err_text(bytes: &[u8]) -> String {
    match decode_image(bytes, "test.img") {
        Ok(img) => panic!("decoded {}x{}", img.width(), img.height()),
        Err(e) => {
            assert!(matches!(e, Error::Image { .. }), "{e:?}");
            e.to_string()
        }
    }
}

#[test]
fn pixels_are_those_the_image_crate_decodes() {
    let rgb = DynamicImage::ImageRgb8(noisy(37, 23));
    let images = [
        (rgb.clone(), ImageFormat::Png),
        (rgb.grayscale(), ImageFormat::Png),
        (DynamicImage::ImageRgba8(rgb.to_rgba8()), ImageFormat::Png),
        (DynamicImage::ImageRgb16(rgb.to_rgb16()), ImageFormat::Png),
        (rgb.clone(), ImageFormat::Jpeg),
        (rgb.grayscale(), ImageFormat::Jpeg),
    ];
    for (img, format) in images {
        let bytes = encode(&img, format);
        let ours = decode_image(&bytes, "x").unwrap();
        let reference = image::load_from_memory(&bytes).unwrap();
        assert_eq!(
            ours.color(),
            reference.color(),
            "{format:?} {:?}",
            img.color()
        );
        assert_eq!(
            ours.as_bytes(),
            reference.as_bytes(),
            "{format:?} {:?}",
            img.color()
        );
    }
}

/// Cut inside the compressed data: `image` alone still returns a whole image (the missing
/// part grey), which would be classified without a word; qvit's decoder refuses it.
#[test]
fn a_cut_jpeg_is_an_error_not_a_grey_picture() {
    let bytes = encode(&DynamicImage::ImageRgb8(noisy(64, 48)), ImageFormat::Jpeg);
    let whole = decode_image(&bytes, "whole.jpg").unwrap();
    assert_eq!((whole.width(), whole.height()), (64, 48));
    let cuts = [0.3, 0.6, 0.9, 0.99].map(|keep| (bytes.len() as f64 * keep) as usize);
    for len in cuts.into_iter().chain([bytes.len() - 3, bytes.len() - 2]) {
        let cut = &bytes[..len];
        let lenient = image::load_from_memory(cut);
        assert!(
            lenient.is_ok_and(|i| i.width() == 64),
            "the reference is lenient"
        );
        let err = err_text(cut);
        assert!(
            err.contains("test.img") && err.contains("truncated JPEG"),
            "{len}: {err}"
        );
    }
}

#[test]
fn cut_or_corrupted_pngs_are_errors() {
    let bytes = encode(&DynamicImage::ImageRgb8(noisy(64, 48)), ImageFormat::Png);
    for keep in [0.2, 0.5, 0.8, 0.97] {
        let err = err_text(&bytes[..(bytes.len() as f64 * keep) as usize]);
        assert!(err.contains("PNG"), "{err}");
    }
    // One byte changed inside the image data: the chunk CRC no longer matches.
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    let err = err_text(&bad);
    assert!(err.contains("PNG"), "{err}");
}

/// A PNG chunk with the given type and data, CRC included.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend(data);
    out.extend(&body);
    out.extend(crc32fast::hash(&body).to_be_bytes());
    out
}

/// A PNG of `w` x `h` grey pixels that stops after the start of its data: the size is judged
/// before any pixel memory is taken or any data decoded.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit grey, deflate, adaptive filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IDAT", &[0x78, 0x9c]));
    out.extend(chunk(b"IEND", &[]));
    out
}

#[test]
fn images_beyond_the_limits_are_refused_by_their_header() {
    for (w, h) in [
        (20_000, 20_000),
        (MAX_IMAGE_SIDE + 1, 1),
        (1, u32::MAX >> 1),
    ] {
        let err = err_text(&png_header(w, h));
        assert!(
            err.contains("limit") || err.contains("scale"),
            "{w}x{h}: {err}"
        );
    }
    // A JPEG frame header of 65000 x 65000.
    let mut jpeg = encode(&DynamicImage::ImageRgb8(noisy(8, 8)), ImageFormat::Jpeg);
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]);
    let err = err_text(&jpeg);
    assert!(err.contains("JPEG"), "{err}");
}

#[test]
fn other_files_are_named_errors() {
    let err = err_text(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;");
    assert!(err.contains("Gif") && err.contains("PNG or JPEG"), "{err}");
    let err = err_text(b"just some text, no image");
    assert!(err.contains("not a PNG or JPEG"), "{err}");
    assert!(err_text(&[]).contains("not a PNG or JPEG"));
}
