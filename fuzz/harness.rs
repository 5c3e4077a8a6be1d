//! What each fuzz target checks. Shared, through `#[path]`, by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/`), by the regression test that replays every input that ever crashed
//! one (`device/tests/fuzz_regressions.rs`, on stable), and by the seed writer
//! (`device/examples/fuzz_seeds.rs`). Every function must return normally on any input: a
//! panic, an abort or running out of memory is a finding.
#![allow(dead_code)] // Each includer uses a different subset.

use qvit_device::bundle::{Bundle, FORMAT_VERSION, MAGIC, PREAMBLE_LEN, WEIGHT_ALIGN};
use qvit_device::model::Model;
use qvit_device::{Layout, Preprocess, Tensor, npy, preprocess};

/// What a target runs on one input.
pub type Check = fn(&[u8]);

/// The fuzz targets, by name: the name of the `fuzz_targets/*.rs` file and of the corpus and
/// regression directories.
pub const TARGETS: [(&str, Check); 4] = [
    ("bundle_decode", bundle_decode),
    ("npy_read", npy_read),
    ("image_preprocess", image_preprocess),
    ("bundle_run", bundle_run),
];

/// The bundle decoder: whatever decodes is valid and encodes again. Each input is tried as
/// is (mostly stopped by the preamble and checksum) and with the preamble and CRC repaired,
/// so the postcard decoder and the validators see the mutated body.
pub fn bundle_decode(data: &[u8]) {
    if let Ok(bundle) = Bundle::decode(data) {
        assert!(bundle.graph.validate().is_ok());
    }
    if let Ok(bundle) = Bundle::decode(&repaired(data)) {
        assert!(bundle.graph.validate().is_ok());
        assert!(bundle.encode().is_ok());
    }
}

/// The `.npy` reader: a tensor read is consistent, writes back and reads again bit for bit.
pub fn npy_read(data: &[u8]) {
    let Ok(t) = npy::from_bytes(data) else {
        return;
    };
    assert_eq!(Some(t.data.len()), checked_elements(&t.shape));
    let again = npy::from_bytes(&npy::to_bytes(&t)).expect("a file we wrote reads back");
    assert_eq!(again.shape, t.shape);
    assert!(
        again
            .data
            .iter()
            .zip(&t.data)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    let finite = t.data.iter().all(|x| x.is_finite());
    assert_eq!(t.check_finite("fuzz input").is_ok(), finite);
}

/// Largest image (in pixels, as its header declares) that `image_preprocess` decodes. The
/// decoding limits themselves (`preprocess::limits`) are tested in `device/tests/image_decode.rs`;
/// without this cap the fuzzer spends its time growing images towards them (~3 ms an input
/// instead of a few µs) and finds nothing the small images do not reach.
const IMAGE_MAX_PIXELS: u64 = 256 * 256;

/// Image decoding and preprocessing: the first byte picks the settings, the rest is the file.
/// A decoded image either preprocesses into a finite tensor of the promised shape, or fails
/// with an error. Images whose header declares more than [`IMAGE_MAX_PIXELS`] are skipped;
/// a header that does not parse still goes to the decoder (its error paths are the target).
pub fn image_preprocess(data: &[u8]) {
    let [pick, file @ ..] = data else {
        return;
    };
    let declared = image::ImageReader::new(std::io::Cursor::new(file))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok());
    if declared.is_some_and(|(w, h)| u64::from(w) * u64::from(h) > IMAGE_MAX_PIXELS) {
        return;
    }
    let Ok(img) = preprocess::decode_image(file, "fuzz input") else {
        return;
    };
    let grayscale = pick & 1 != 0;
    let c = if grayscale { 1 } else { 3 };
    let crop = [[4, 4], [7, 5], [1, 9], [16, 16]][usize::from((pick >> 1) & 3)];
    let resize = [None, Some(16), Some(33), Some(9)][usize::from((pick >> 3) & 3)];
    let layout = if pick & 32 != 0 {
        Layout::Nhwc
    } else {
        Layout::Nchw
    };
    let p = Preprocess {
        resize,
        crop,
        mean: vec![0.5; c],
        std: vec![0.25; c],
        grayscale,
        layout,
    };
    let Ok(t) = p.apply(&img) else {
        return;
    };
    let [h, w] = crop.map(|x| x as usize);
    let want = match layout {
        Layout::Nchw => vec![1, c, h, w],
        Layout::Nhwc => vec![1, h, w, c],
    };
    assert_eq!(t.shape, want);
    assert!(t.data.iter().all(|x| x.is_finite()));
}

/// Largest graph `bundle_run` executes: the target is the loader and the executor's logic,
/// not its speed.
const RUN_MAX_NODES: usize = 64;
const RUN_MAX_ELEMENTS: usize = 1 << 16;

/// The bundle loader and one inference: a bundle that decodes and plans runs on inputs of its
/// input shapes and returns outputs of its output shapes, or fails with an error.
pub fn bundle_run(data: &[u8]) {
    let Ok(bundle) = Bundle::decode(&repaired(data)) else {
        return;
    };
    let g = &bundle.graph;
    let elements: usize = g
        .values
        .iter()
        .filter_map(|v| checked_elements(&v.shape))
        .sum();
    if g.nodes.len() > RUN_MAX_NODES || elements > RUN_MAX_ELEMENTS {
        return;
    }
    let shapes =
        |ids: &[u32]| -> Vec<Vec<usize>> { ids.iter().map(|&id| g.shape(id).to_vec()).collect() };
    let (in_shapes, out_shapes) = (shapes(&g.inputs), shapes(&g.outputs));
    let Ok(mut model) = Model::from_bundle(bundle) else {
        return;
    };
    // Inputs from the data itself, so the fuzzer also steers the values (extremes included).
    let mut bytes = data.iter().rev().cycle();
    let inputs: Vec<Tensor> = in_shapes
        .into_iter()
        .map(|shape| {
            let n = checked_elements(&shape).unwrap_or(0);
            let v = (0..n)
                .map(|_| bytes.next().map_or(0.0, |&b| f32::from(b as i8) / 8.0))
                .collect();
            Tensor::new(shape, v).expect("the input shape is valid")
        })
        .collect();
    let refs: Vec<&Tensor> = inputs.iter().collect();
    if let Ok(outputs) = model.run_many(&refs) {
        let got: Vec<Vec<usize>> = outputs.iter().map(|t| t.shape.clone()).collect();
        assert_eq!(got, out_shapes);
        assert!(
            outputs
                .iter()
                .all(|t| Some(t.data.len()) == checked_elements(&t.shape))
        );
    }
}

fn checked_elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Treats the input as `header_len: u16, graph_len: u16, body…` and wraps the body in a
/// well-formed preamble, padding and checksum.
pub fn repaired(data: &[u8]) -> Vec<u8> {
    let [h0, h1, g0, g1, body @ ..] = data else {
        return Vec::new();
    };
    let body_len = body.len();
    let header_len = usize::from(u16::from_le_bytes([*h0, *h1])).min(body_len);
    let graph_len = usize::from(u16::from_le_bytes([*g0, *g1])).min(body_len - header_len);
    let (sections, weights) = body.split_at(header_len + graph_len);
    let mut out = MAGIC.to_vec();
    for x in [FORMAT_VERSION, header_len as u32, graph_len as u32, 0] {
        out.extend(x.to_le_bytes());
    }
    out.extend((weights.len() as u64).to_le_bytes());
    debug_assert_eq!(out.len(), PREAMBLE_LEN);
    out.extend(sections);
    out.resize(out.len().next_multiple_of(WEIGHT_ALIGN), 0);
    out.extend(weights);
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_le_bytes());
    out
}

/// The inverse of [`repaired`] for a valid bundle whose sections fit u16 lengths: the seed
/// input that the targets turn back into exactly `bundle`.
pub fn unrepaired(bundle: &[u8]) -> Option<Vec<u8>> {
    let u32_at = |o: usize| -> Option<usize> {
        Some(u32::from_le_bytes(bundle.get(o..o + 4)?.try_into().ok()?) as usize)
    };
    let (h, g) = (u32_at(12)?, u32_at(16)?);
    let sections = bundle.get(PREAMBLE_LEN..PREAMBLE_LEN + h + g)?;
    let weights_start = (PREAMBLE_LEN + h + g).next_multiple_of(WEIGHT_ALIGN);
    let weights = bundle.get(weights_start..bundle.len().checked_sub(4)?)?;
    let mut out = Vec::new();
    out.extend(u16::try_from(h).ok()?.to_le_bytes());
    out.extend(u16::try_from(g).ok()?.to_le_bytes());
    out.extend(sections);
    out.extend(weights);
    Some(out)
}
