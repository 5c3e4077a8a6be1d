//! Small hand-made graphs and bundles shared by the integration tests.
#![allow(dead_code)] // Each test crate uses a different subset.

use qvit_device::bundle::wire::{WireGraph, WireHeader};
use qvit_device::bundle::{Bundle, FORMAT_VERSION, Header, MAGIC, PREAMBLE_LEN, WEIGHT_ALIGN};
use qvit_device::exec::Executor;
use qvit_device::quant::ActQuant;
use qvit_device::{Graph, Layout, Node, Op, Preprocess, Source, Tensor, Value};
use qvit_kernels::{KernelSet, Tier};

/// A graph value.
pub fn value(name: &str, shape: Vec<usize>, source: Source) -> Value {
    Value {
        name: name.into(),
        shape,
        source,
    }
}

/// Deterministic weights: a fixed linear-congruential sequence in [-1, 1).
pub fn weights(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// `x [1, k] → Linear(h) → Relu → Linear(n)`: the tiny MLP of the golden bundle.
pub fn mlp(k: usize, h: usize, n: usize) -> Graph {
    Graph {
        values: vec![
            value("x", vec![1, k], Source::Input(0)),
            value("fc1.weight", vec![h, k], Source::Const(weights(h * k, 1))),
            value("fc1.bias", vec![h], Source::Const(weights(h, 2))),
            value("fc1.out", vec![1, h], Source::Node(0)),
            value("relu.out", vec![1, h], Source::Node(1)),
            value("fc2.weight", vec![n, h], Source::Const(weights(n * h, 3))),
            value("fc2.bias", vec![n], Source::Const(weights(n, 4))),
            value("logits", vec![1, n], Source::Node(2)),
        ],
        nodes: vec![
            Node {
                name: "/fc1/Gemm".into(),
                op: Op::Linear,
                inputs: vec![0, 1, 2],
                output: 3,
            },
            Node {
                name: "/relu/Relu".into(),
                op: Op::Relu,
                inputs: vec![3],
                output: 4,
            },
            Node {
                name: "/fc2/Gemm".into(),
                op: Op::Linear,
                inputs: vec![4, 5, 6],
                output: 7,
            },
        ],
        inputs: vec![0],
        outputs: vec![7],
    }
}

/// The tiny MLP as a bundle with labels and a fixed producer (so its bytes never depend on the
/// crate version).
pub fn tiny_bundle() -> Bundle {
    let graph = mlp(4, 8, 3);
    let header = Header {
        labels: vec!["zero".into(), "one".into(), "two".into()],
        producer: "qvit 0.1.0".into(),
        ..Header::for_graph("tiny-mlp", &graph)
    };
    Bundle { header, graph }
}

/// An image classifier: `x [1, 3, 4, 4] → Conv2d(2x2, stride 2, 3 channels) → Reshape [1, 12] →
/// Linear(3)`, with preprocessing for 4x4 RGB crops and three labels.
pub fn image_bundle() -> Bundle {
    let graph = Graph {
        values: vec![
            value("pixels", vec![1, 3, 4, 4], Source::Input(0)),
            value(
                "conv.weight",
                vec![3, 3, 2, 2],
                Source::Const(weights(36, 5)),
            ),
            value("conv.bias", vec![3], Source::Const(weights(3, 6))),
            value("conv.out", vec![1, 3, 2, 2], Source::Node(0)),
            value("flat", vec![1, 12], Source::Node(1)),
            value("head.weight", vec![3, 12], Source::Const(weights(36, 7))),
            value("head.bias", vec![3], Source::Const(weights(3, 8))),
            value("logits", vec![1, 3], Source::Node(2)),
        ],
        nodes: vec![
            Node {
                name: "conv".into(),
                op: Op::Conv2d {
                    strides: [2, 2],
                    pads: [0; 4],
                    dilations: [1, 1],
                    group: 1,
                },
                inputs: vec![0, 1, 2],
                output: 3,
            },
            Node {
                name: "flatten".into(),
                op: Op::Reshape,
                inputs: vec![3],
                output: 4,
            },
            Node {
                name: "head".into(),
                op: Op::Linear,
                inputs: vec![4, 5, 6],
                output: 7,
            },
        ],
        inputs: vec![0],
        outputs: vec![7],
    };
    let header = Header {
        preprocess: Some(Preprocess {
            resize: Some(4),
            crop: [4, 4],
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
            grayscale: false,
            layout: Layout::Nchw,
        }),
        labels: vec!["cat".into(), "dog".into(), "bird".into()],
        ..Header::for_graph("tiny-image", &graph)
    };
    Bundle { header, graph }
}

/// `x [m, k] → QLinear → … → QLinear`, one layer per `(n, wbits, abits)`, each reading the
/// previous output: seeded symmetric weights, per-channel scales, uniform activations on
/// [−4, 4], and a bias on every other layer (the others run the zero-bias path).
pub fn qlinear_chain(m: usize, k: usize, layers: &[(usize, u8, u8)]) -> Graph {
    let mut g = Graph {
        values: vec![value("x", vec![m, k], Source::Input(0))],
        ..Graph::default()
    };
    let mut x = 0u32;
    let mut k = k;
    for (i, &(n, wbits, abits)) in layers.iter().enumerate() {
        let max = qvit_device::quant::symmetric_max(wbits) as f32;
        let seed = 10 * i as u32;
        let data = weights(n * k, seed)
            .into_iter()
            .map(|w| (w * max).round() as i8);
        let w = qvit_device::quant::IntData {
            bits: wbits,
            data: data.collect(),
        };
        let scales = weights(n, seed + 1)
            .into_iter()
            .map(|s| 0.01 + 0.02 * s.abs());
        let mut inputs = vec![x, g.values.len() as u32, g.values.len() as u32 + 1];
        g.values
            .push(value(&format!("w{i}"), vec![n, k], Source::Int(w)));
        g.values.push(value(
            &format!("s{i}"),
            vec![n],
            Source::Const(scales.collect()),
        ));
        if i % 2 == 0 {
            inputs.push(g.values.len() as u32);
            g.values.push(value(
                &format!("b{i}"),
                vec![n],
                Source::Const(weights(n, seed + 2)),
            ));
        }
        let scale = 8.0 / ((1u32 << abits) - 1) as f32;
        let act = qvit_device::quant::ActQuant::Uniform {
            bits: abits,
            scale,
            zero: (4.0 / scale).round() as i32,
        };
        x = g.values.len() as u32;
        g.values.push(value(
            &format!("y{i}"),
            vec![m, n],
            Source::Node(g.nodes.len()),
        ));
        g.nodes.push(Node {
            name: format!("fc{i}"),
            op: Op::QLinear { act },
            inputs,
            output: x,
        });
        k = n;
    }
    g.inputs = vec![0];
    g.outputs = vec![x];
    g
}

/// Recomputes the trailing CRC so a crafted body reaches the decoder's later checks.
pub fn fix_crc(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

/// Splits a valid bundle into its decoded wire sections and weights blob (an independent
/// reading of the documented layout).
pub fn sections(bytes: &[u8]) -> (WireHeader, WireGraph, Vec<u8>) {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let (h, g) = (u32_at(12), u32_at(16));
    let header = postcard::from_bytes(&bytes[PREAMBLE_LEN..PREAMBLE_LEN + h]).unwrap();
    let graph = postcard::from_bytes(&bytes[PREAMBLE_LEN + h..PREAMBLE_LEN + h + g]).unwrap();
    let weights_start = (PREAMBLE_LEN + h + g).next_multiple_of(WEIGHT_ALIGN);
    (
        header,
        graph,
        bytes[weights_start..bytes.len() - 4].to_vec(),
    )
}

/// Lays out a file from wire sections, following the documented format, with a valid CRC.
pub fn assemble(header: &WireHeader, graph: &WireGraph, blob: &[u8]) -> Vec<u8> {
    let h = postcard::to_stdvec(header).unwrap();
    let g = postcard::to_stdvec(graph).unwrap();
    let mut out = MAGIC.to_vec();
    for x in [FORMAT_VERSION, h.len() as u32, g.len() as u32, 0] {
        out.extend(x.to_le_bytes());
    }
    out.extend((blob.len() as u64).to_le_bytes());
    out.extend(h);
    out.extend(g);
    out.resize(out.len().next_multiple_of(WEIGHT_ALIGN), 0);
    out.extend(blob);
    out.extend([0; 4]);
    fix_crc(&mut out);
    out
}

/// A kernel set for every tier this CPU supports (printed, so a skipped tier shows in the log).
pub fn tiers() -> Vec<KernelSet> {
    let tiers: Vec<_> = Tier::supported()
        .into_iter()
        .map(|t| KernelSet::with_tier(t).unwrap())
        .collect();
    eprintln!(
        "tiers under test: {:?}",
        tiers.iter().map(|k| k.tier().name()).collect::<Vec<_>>()
    );
    tiers
}

/// The first output of `g` on `inputs` with kernel set `ks` and `threads` threads.
pub fn run_on(g: &Graph, ks: KernelSet, threads: usize, inputs: &[&Tensor]) -> Vec<f32> {
    let mut ex = Executor::new(g.clone(), ks).unwrap();
    ex.set_threads(threads);
    ex.run(inputs).unwrap().remove(0).data
}

/// `a [h, m, k] · b` where b is `[h, n, k]` (transposed) or `[h, k, n]`.
pub fn qmatmul_graph(
    h: usize,
    m: usize,
    k: usize,
    n: usize,
    tb: bool,
    a: ActQuant,
    b: ActQuant,
) -> Graph {
    let b_shape = if tb { vec![h, n, k] } else { vec![h, k, n] };
    Graph {
        values: vec![
            value("a", vec![h, m, k], Source::Input(0)),
            value("b", b_shape, Source::Input(1)),
            value("y", vec![h, m, n], Source::Node(0)),
        ],
        nodes: vec![Node {
            name: "mm".into(),
            op: Op::QMatMul {
                transpose_b: tb,
                a,
                b,
            },
            inputs: vec![0, 1],
            output: 2,
        }],
        inputs: vec![0, 1],
        outputs: vec![2],
    }
}

/// The uniform quantizer spanning `[lo, hi]` in `2^bits − 1` steps.
pub fn uniform(bits: u8, lo: f32, hi: f32) -> ActQuant {
    let levels = ((1u32 << bits) - 1) as f32;
    let scale = (hi - lo) / levels;
    ActQuant::Uniform {
        bits,
        scale,
        zero: (-lo / scale).round() as i32,
    }
}
