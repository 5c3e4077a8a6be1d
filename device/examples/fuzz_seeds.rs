//! Writes the starting corpus of each fuzz target (`scripts/fuzz-campaign.sh` runs it):
//! small valid bundles (f32 and quantized, covering the op set of a ViT block), `.npy` files of
//! every dtype the reader takes, and PNG/JPEG images. Mutating valid inputs reaches the deep
//! checks far sooner than random bytes.
//!
//! `cargo run -p qvit-device --example fuzz_seeds -- fuzz/corpus`

#[path = "../../fuzz/harness.rs"]
mod harness;

#[path = "../tests/common/mod.rs"]
mod common;

use image::{DynamicImage, ImageFormat};
use qvit_device::bundle::Bundle;
use qvit_device::graph::{BinaryOp, GeluKind, ReduceOp};
use qvit_device::model::Model;
use qvit_device::quant::{ActQuant, IntData};
use qvit_device::{Graph, Node, Op, Source, Tensor, Value, npy};
use std::path::Path;

fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: fuzz_seeds CORPUS_DIR");
        std::process::exit(2);
    };
    let out = Path::new(&out);
    let bundles = [
        common::tiny_bundle(),
        common::image_bundle(),
        Bundle::new("block-f32", block(false)),
        Bundle::new("block-w8a8", block(true)),
    ];
    for (k, b) in bundles.iter().enumerate() {
        let bytes = b.encode().expect("seed bundles are valid");
        // A seed that does not run would only teach the fuzzer the error paths.
        let input = Tensor::zeros(b.header.input_shape.clone()).unwrap();
        Model::from_bundle(b.clone())
            .and_then(|mut m| m.run(&input))
            .unwrap_or_else(|e| panic!("seed bundle {k} does not run: {e}"));
        let seed = harness::unrepaired(&bytes).expect("seed bundles are small");
        for target in ["bundle_decode", "bundle_run"] {
            put(out, target, &format!("bundle-{k}"), &seed);
        }
    }
    for (k, bytes) in npy_seeds().iter().enumerate() {
        put(out, "npy_read", &format!("npy-{k}"), bytes);
    }
    for (k, bytes) in image_seeds().iter().enumerate() {
        // The first byte picks the preprocessing; spread the picks over the seeds.
        let mut seed = vec![(k * 37) as u8];
        seed.extend(bytes);
        put(out, "image_preprocess", &format!("image-{k}"), &seed);
    }
}

fn put(out: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn value(name: &str, shape: Vec<usize>, source: Source) -> Value {
    Value {
        name: name.into(),
        shape,
        source,
    }
}

fn node(name: &str, op: Op, inputs: Vec<u32>, output: u32) -> Node {
    Node {
        name: name.into(),
        op,
        inputs,
        output,
    }
}

/// One pre-norm attention block and a head on 4 tokens of width 8: LayerNorm, a qkv
/// projection, slices, scaled scores, softmax, the attention product, a residual, GELU, a mean
/// over tokens, a reshape and the classifier. `quantized` swaps in QLinear and QMatMul (uniform,
/// symmetric and log2 quantizers).
fn block(quantized: bool) -> Graph {
    let w = common::weights;
    let uniform = ActQuant::Uniform {
        bits: 8,
        scale: 0.05,
        zero: 128,
    };
    let symmetric = ActQuant::Symmetric {
        bits: 8,
        scale: 0.05,
    };
    let log2 = ActQuant::Log2 {
        bits: 4,
        scale: 1.0,
    };
    let qkv_w = if quantized {
        Source::Int(IntData {
            bits: 8,
            data: w(24 * 8, 21).iter().map(|x| (x * 127.0) as i8).collect(),
        })
    } else {
        Source::Const(w(24 * 8, 21))
    };
    let mut values = vec![
        value("x", vec![1, 4, 8], Source::Input(0)),
        value("ln.g", vec![8], Source::Const(w(8, 22))),
        value("ln.b", vec![8], Source::Const(w(8, 23))),
        value("ln.out", vec![1, 4, 8], Source::Node(0)),
        value("qkv.w", vec![24, 8], qkv_w),
        value("qkv.b", vec![24], Source::Const(w(24, 24))),
        value("qkv.out", vec![1, 4, 24], Source::Node(1)),
        value("q", vec![1, 4, 8], Source::Node(2)),
        value("k", vec![1, 4, 8], Source::Node(3)),
        value("v", vec![1, 4, 8], Source::Node(4)),
        value("scores", vec![1, 4, 4], Source::Node(5)),
        value("scale", vec![1], Source::Const(vec![0.35])),
        value("scaled", vec![1, 4, 4], Source::Node(6)),
        value("probs", vec![1, 4, 4], Source::Node(7)),
        value("attn", vec![1, 4, 8], Source::Node(8)),
        value("residual", vec![1, 4, 8], Source::Node(9)),
        value("gelu", vec![1, 4, 8], Source::Node(10)),
        value("pooled", vec![1, 1, 8], Source::Node(11)),
        value("flat", vec![1, 8], Source::Node(12)),
        value("head.w", vec![3, 8], Source::Const(w(24, 25))),
        value("head.b", vec![3], Source::Const(w(3, 26))),
        value("logits", vec![1, 3], Source::Node(13)),
    ];
    let slice = |start| Op::Slice {
        axis: 2,
        start,
        end: start + 8,
        step: 1,
    };
    let mut qkv = node("qkv", Op::Linear, vec![3, 4, 5], 6);
    let mut scores = node("scores", Op::MatMul { transpose_b: true }, vec![7, 8], 10);
    let mut attn = node("attn", Op::MatMul { transpose_b: false }, vec![13, 9], 14);
    if quantized {
        values.push(value("qkv.scale", vec![24], Source::Const(vec![0.004; 24])));
        qkv = node("qkv", Op::QLinear { act: uniform }, vec![3, 4, 22, 5], 6);
        scores.op = Op::QMatMul {
            transpose_b: true,
            a: uniform,
            b: symmetric,
        };
        attn.op = Op::QMatMul {
            transpose_b: false,
            a: log2,
            b: symmetric,
        };
    }
    let nodes = vec![
        node("ln", Op::LayerNorm { eps: 1e-6 }, vec![0, 1, 2], 3),
        qkv,
        node("q", slice(0), vec![6], 7),
        node("k", slice(8), vec![6], 8),
        node("v", slice(16), vec![6], 9),
        scores,
        node("scale", Op::Binary(BinaryOp::Mul), vec![10, 11], 12),
        node("softmax", Op::Softmax { axis: 2 }, vec![12], 13),
        attn,
        node("residual", Op::Binary(BinaryOp::Add), vec![14, 0], 15),
        node("gelu", Op::Gelu(GeluKind::Erf), vec![15], 16),
        node(
            "pool",
            Op::Reduce {
                op: ReduceOp::Mean,
                axes: vec![1],
            },
            vec![16],
            17,
        ),
        node("flatten", Op::Reshape, vec![17], 18),
        node("head", Op::Linear, vec![18, 19, 20], 21),
    ];
    Graph {
        values,
        nodes,
        inputs: vec![0],
        outputs: vec![21],
    }
}

/// `.npy` files: ours (f32), and numpy-style v1 files of the other dtypes the reader takes.
fn npy_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [vec![], vec![3], vec![2, 3], vec![1, 3, 4, 4]]
        .into_iter()
        .map(|shape: Vec<usize>| {
            let n = shape.iter().product();
            npy::to_bytes(&Tensor::new(shape, common::weights(n, 9)).unwrap())
        })
        .collect();
    for (descr, size) in [
        ("<f8", 8),
        ("<f2", 2),
        ("<i8", 8),
        ("<i4", 4),
        ("|u1", 1),
        ("|i1", 1),
    ] {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2, 3), }}");
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend((dict.len() as u16).to_le_bytes());
        v.extend(dict.as_bytes());
        v.extend((0..6 * size).map(|i| (i * 29) as u8));
        seeds.push(v);
    }
    seeds
}

/// PNG (RGB, grey, RGBA, 16-bit) and JPEG (colour, grey) images of a few sizes.
fn image_seeds() -> Vec<Vec<u8>> {
    let rgb = image::RgbImage::from_fn(13, 9, |x, y| {
        image::Rgb([(x * 19) as u8, (y * 27) as u8, 90])
    });
    let images = [
        (DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Png),
        (
            DynamicImage::ImageRgb8(rgb.clone()).grayscale(),
            ImageFormat::Png,
        ),
        (
            DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(rgb.clone()).to_rgba8()),
            ImageFormat::Png,
        ),
        (
            DynamicImage::ImageRgb16(DynamicImage::ImageRgb8(rgb.clone()).to_rgb16()),
            ImageFormat::Png,
        ),
        (DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Jpeg),
        (DynamicImage::ImageRgb8(rgb).grayscale(), ImageFormat::Jpeg),
    ];
    images
        .into_iter()
        .map(|(img, format)| {
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
                .unwrap();
            bytes
        })
        .collect()
}
