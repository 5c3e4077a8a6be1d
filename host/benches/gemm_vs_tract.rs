//! The W8A8 integer GEMM of the kernel set against tract's optimized f32 MatMul on ViT-S
//! Linear shapes, at one thread, in the same run (the kernels issue's "≥ 2× tract f32" target).
//! Three qvit rows per shape: the bare GEMM (packed weights, i32 out), and the whole quantized
//! Linear as the executor runs it (quantize activations, GEMM, dequantize with bias).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qvit_host::fixtures::SeededRng;
use qvit_kernels::KernelSet;
use qvit_kernels::gemm::{Scratch, epilogue};
use tract_onnx::pb::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
    tensor_shape_proto::{Dimension, dimension},
    type_proto,
};
use tract_onnx::prelude::*;

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `y[m, n] = x[m, k] · w[k, n]` as an ONNX MatMul with a constant `w`.
fn matmul_model(m: usize, k: usize, n: usize, w: &[f32]) -> ModelProto {
    let (m, k, n) = (m as i64, k as i64, n as i64);
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "mm".into(),
            node: vec![NodeProto {
                name: "mm".into(),
                op_type: "MatMul".into(),
                input: vec!["x".into(), "w".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            initializer: vec![TensorProto {
                name: "w".into(),
                dims: vec![k, n],
                data_type: 1,
                float_data: w.to_vec(),
                ..Default::default()
            }],
            input: vec![value("x", &[m, k])],
            output: vec![value("y", &[m, n])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    // QVIT_FORCE_TIER picks the tier for A/B runs.
    let ks = KernelSet::detect();
    let m = 197;
    // ViT-S/16 Linear layers: qkv, proj, fc1, fc2.
    for (name, k, n) in [
        ("qkv", 384, 1152),
        ("proj", 384, 384),
        ("fc1", 384, 1536),
        ("fc2", 1536, 384),
    ] {
        let mut rng = SeededRng::new(5);
        let x = rng.normals(m * k, 1.0);
        let w = rng.normals(k * n, 0.05);
        let mut g = c.benchmark_group(format!("gemm_{m}x{k}x{n}_{name}"));
        g.throughput(Throughput::Elements((m * k * n) as u64));
        g.sample_size(20);

        let proto = matmul_model(m, k, n, &w);
        let plan = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let xt = tract_onnx::prelude::Tensor::from_shape(&[m, k], &x).unwrap();
        g.bench_function("tract_f32", |b| {
            b.iter(|| plan.run(tvec!(xt.clone().into())).unwrap())
        });

        // Weights in the canonical [n, k] layout, symmetric int8.
        let wq: Vec<i8> = (0..n * k)
            .map(|i| {
                ((w[(i % k) * n + i / k] / 0.2 * 127.0)
                    .round()
                    .clamp(-127.0, 127.0)) as i8
            })
            .collect();
        let packed = ks.pack_w8a8(&wq, n, k).unwrap();
        let scales = vec![0.2 / 127.0; n];
        let bias = vec![0.1f32; n];
        let mut xa = vec![0i8; m * k];
        ks.levels_i8(&x, 40.0, 0, (-128, 127), &mut xa).unwrap();
        let mut acc = vec![0i32; m * n];
        let mut scratch = Scratch::default();
        let tier = ks.w8a8_kernel().name;
        g.bench_function(format!("qvit_w8a8_gemm_{tier}"), |b| {
            b.iter(|| {
                ks.gemm_w8a8_i32_with(&mut scratch, &xa, m, 0, &packed, &mut acc)
                    .unwrap()
            })
        });
        let mut y = vec![0f32; m * n];
        g.bench_function(format!("qvit_w8a8_linear_{tier}"), |b| {
            b.iter(|| {
                ks.levels_i8(&x, 40.0, 0, (-128, 127), &mut xa).unwrap();
                ks.gemm_w8a8_i32_with(&mut scratch, &xa, m, 0, &packed, &mut acc)
                    .unwrap();
                epilogue::dequantize_i32_f32(&acc, n, 1.0 / 40.0, &scales, Some(&bias), &mut y)
                    .unwrap();
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
