//! Import failures are reported whole: every unsupported node at once, by name and op.

use qvit_host::import::import_proto;
use tract_onnx::pb::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
    tensor_shape_proto::{Dimension, dimension},
    type_proto,
};

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    let shape = TensorShapeProto {
        dim: dims
            .iter()
            .map(|&d| Dimension {
                value: Some(dimension::Value::DimValue(d)),
                ..Default::default()
            })
            .collect(),
    };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(shape),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(name: &str, op: &str, input: &str, output: &str) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: vec![input.into()],
        output: vec![output.into()],
        ..Default::default()
    }
}

fn model(nodes: Vec<NodeProto>, out: &str) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: nodes,
            input: vec![value("x", &[1, 4])],
            output: vec![value(out, &[1, 4])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn every_unsupported_node_is_listed_in_one_error() {
    let m = model(
        vec![
            node("first_sin", "Sin", "x", "a"),
            node("relu", "Relu", "a", "b"),
            node("then_cos", "Cos", "b", "y"),
        ],
        "y",
    );
    let err = format!(
        "{:#}",
        import_proto(&m, None)
            .err()
            .expect("Sin and Cos are not in the device op set")
    );
    assert!(err.contains("2 node(s) cannot be imported"), "{err}");
    assert!(
        err.contains("first_sin") && err.contains("then_cos"),
        "{err}"
    );
    assert!(
        !err.contains("relu ("),
        "supported nodes are not listed: {err}"
    );
}

#[test]
fn supported_chain_imports_and_runs() {
    let m = model(
        vec![node("r", "Relu", "x", "a"), node("t", "Tanh", "a", "y")],
        "y",
    );
    let imp = import_proto(&m, None).unwrap();
    let mut exec =
        qvit_device::exec::Executor::new(imp.graph, qvit_kernels::KernelSet::detect()).unwrap();
    let x = qvit_device::Tensor::new(vec![1, 4], vec![-2.0, -0.5, 0.5, 2.0]).unwrap();
    let y = exec.run(&[&x]).unwrap().remove(0);
    let want: Vec<f32> = x.data.iter().map(|v| v.max(0.0).tanh()).collect();
    for (a, b) in y.data.iter().zip(&want) {
        assert!((a - b).abs() < 1e-6, "{:?} vs {want:?}", y.data);
    }
}

#[test]
fn all_dynamic_input_that_fails_at_size_one_says_to_pass_input_shape() {
    use tract_onnx::pb::TensorProto;
    // x[N, C, H, W] reshaped to [1, 16]: fine for the real sizes, impossible at 1x1x1x1.
    let mut m = model(vec![], "y");
    let g = m.graph.as_mut().unwrap();
    let dynamic = |name: &str| Dimension {
        value: Some(dimension::Value::DimParam(name.into())),
        ..Default::default()
    };
    let mut x = value("x", &[]);
    if let Some(type_proto::Value::TensorType(t)) = x.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.shape = Some(TensorShapeProto {
            dim: ["n", "c", "h", "w"].into_iter().map(dynamic).collect(),
        });
    }
    g.input = vec![x];
    g.output = vec![value("y", &[1, 16])];
    g.initializer = vec![TensorProto {
        name: "s".into(),
        dims: vec![2],
        data_type: 7, // int64
        int64_data: vec![1, 16],
        ..Default::default()
    }];
    g.node = vec![NodeProto {
        name: "reshape".into(),
        op_type: "Reshape".into(),
        input: vec!["x".into(), "s".into()],
        output: vec!["y".into()],
        ..Default::default()
    }];
    let err = format!(
        "{:#}",
        import_proto(&m, None).err().expect("1 element is not 16")
    );
    assert!(
        err.contains("[1, 2, 3] open") && err.contains("pass --input-shape"),
        "{err}"
    );
    assert!(
        err.len() < 2000,
        "a tract dump instead of a sentence: {err}"
    );
    // With the real sizes it imports.
    assert!(import_proto(&m, Some(&[1, 1, 4, 4])).is_ok());
}
