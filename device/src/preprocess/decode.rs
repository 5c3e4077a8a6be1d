//! Image files to pixels, within memory limits a 1 GB board can afford, and strict about
//! damage: a truncated or corrupt file is an error, never a half-grey image classified as if
//! it were whole.
//!
//! JPEG goes through zune-jpeg (the decoder the `image` crate wraps) in strict mode, with the
//! output colour space `image` would ask for, so the pixels are the ones `image` would give.
//! `image`'s own wrapper runs it in lenient mode, which fills whatever is missing with grey.
//! PNG goes through `image` (the `png` crate checks chunk CRCs and reports a cut stream).

use super::limits::{MAX_DECODE_BYTES, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_SIDE};
use crate::{Error, Result};
use image::{DynamicImage, ImageBuffer, ImageFormat};
use std::io::Cursor;
use std::path::Path;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Decodes a PNG or JPEG file (format guessed from the content, not the extension).
pub fn load_image(path: impl AsRef<Path>) -> Result<DynamicImage> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let fail = |reason: String| Error::Image {
        path: name.clone(),
        reason,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| fail(e.to_string()))?
        .len();
    if len > MAX_IMAGE_FILE_BYTES {
        return Err(fail(format!(
            "the file has {len} bytes, more than the {MAX_IMAGE_FILE_BYTES} an image may have"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    decode_image(&bytes, &name)
}

/// Decodes PNG or JPEG bytes; `name` says where they came from in error messages.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<DynamicImage> {
    let fail = |reason: String| Error::Image {
        path: name.into(),
        reason,
    };
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => decode_jpeg(bytes).map_err(fail),
        Ok(ImageFormat::Png) => decode_png(bytes).map_err(fail),
        Ok(other) => Err(fail(format!(
            "{other:?} images are not supported; convert it to PNG or JPEG"
        ))),
        Err(_) => Err(fail("not a PNG or JPEG file (unrecognised content)".into())),
    }
}

/// Refuses dimensions beyond the limits before any pixel memory is taken.
fn check_size(width: u64, height: u64, bytes_per_pixel: u64) -> std::result::Result<(), String> {
    if width == 0 || height == 0 {
        return Err(format!("the image is empty ({width}x{height})"));
    }
    let side = u64::from(MAX_IMAGE_SIDE);
    let bytes = width * height * bytes_per_pixel; // both sides are at most 2^32
    if width > side || height > side || bytes > MAX_DECODE_BYTES {
        return Err(format!(
            "{width}x{height} pixels ({} MiB decoded) is over the limit of {side} pixels a \
             side and {} MiB; scale the image down first",
            bytes >> 20,
            MAX_DECODE_BYTES >> 20
        ));
    }
    Ok(())
}

/// Whether an end-of-image marker follows the last scan. A file cut inside its compressed
/// data has none, and a cut within the last few bytes escapes even strict mode (zune-jpeg pads
/// the missing bits with zeros). Entropy-coded data cannot hold `FF D9` (a data `FF` is
/// followed by `00`), so the marker is found only where a scan really ended.
fn has_end_after_last_scan(bytes: &[u8]) -> bool {
    const SOS: [u8; 2] = [0xFF, 0xDA];
    const EOI: [u8; 2] = [0xFF, 0xD9];
    bytes
        .windows(2)
        .rposition(|w| w == SOS)
        .is_some_and(|sos| bytes[sos..].windows(2).any(|w| w == EOI))
}

fn decode_jpeg(bytes: &[u8]) -> std::result::Result<DynamicImage, String> {
    let side = MAX_IMAGE_SIDE as usize;
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(side)
        .set_max_height(side);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let corrupt = |e: zune_jpeg::errors::DecodeErrors| format!("corrupt or truncated JPEG: {e}");
    decoder.decode_headers().map_err(corrupt)?;
    let (Some((w, h)), Some(input)) = (decoder.dimensions(), decoder.input_colorspace()) else {
        return Err("corrupt JPEG: no frame header".into());
    };
    // What `image` asks for: the stored colour space when it has one, RGB otherwise (CMYK, YCCK).
    let out = match input {
        ColorSpace::RGB | ColorSpace::RGBA | ColorSpace::Luma | ColorSpace::LumaA => input,
        _ => ColorSpace::RGB,
    };
    check_size(w as u64, h as u64, out.num_components() as u64)?;
    if !has_end_after_last_scan(bytes) {
        return Err(
            "truncated JPEG: no end-of-image marker after the last scan (the file was cut)".into(),
        );
    }
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(out));
    let pixels = decoder.decode().map_err(corrupt)?;
    let (w, h) = (w as u32, h as u32);
    let wrong = || "JPEG decoder returned a buffer of the wrong size".to_string();
    Ok(match out {
        ColorSpace::Luma => {
            DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, pixels).ok_or_else(wrong)?)
        }
        ColorSpace::LumaA => {
            DynamicImage::ImageLumaA8(ImageBuffer::from_raw(w, h, pixels).ok_or_else(wrong)?)
        }
        ColorSpace::RGBA => {
            DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, pixels).ok_or_else(wrong)?)
        }
        _ => DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, pixels).ok_or_else(wrong)?),
    })
}

fn decode_png(bytes: &[u8]) -> std::result::Result<DynamicImage, String> {
    let reader = || {
        let mut r = image::ImageReader::with_format(Cursor::new(bytes), ImageFormat::Png);
        r.limits(limits());
        r
    };
    let describe = |e: image::ImageError| match e {
        image::ImageError::Limits(e) => format!("{e}; scale the image down first"),
        e => format!("corrupt or truncated PNG: {e}"),
    };
    let (w, h) = reader().into_dimensions().map_err(describe)?;
    // At least a byte a pixel; the limits bound the decoder's real allocation.
    check_size(w.into(), h.into(), 1)?;
    reader().decode().map_err(describe)
}

/// `image`'s limits: the decoder refuses larger images before allocating their pixels.
fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}
