//! `qvit inspect`: what is inside an imported model, layer by layer.

use qvit_device::graph::{Graph, Op};
use serde::Serialize;

/// One node of the graph as `inspect` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// Node name from the ONNX model.
    pub name: String,
    /// Device op kind (`Linear`, `MatMul`, `LayerNorm`, …).
    pub op: String,
    /// Shapes of the activation (non-constant) inputs.
    pub input_shapes: Vec<Vec<usize>>,
    /// Output shape.
    pub output_shape: Vec<usize>,
    /// Constant parameters the node owns (weights, biases, gamma/beta).
    pub params: usize,
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// Whether the quantizer will give this node integer kernels.
    pub quantizable: bool,
}

/// Whole-model facts.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Model file name.
    pub model: String,
    /// ONNX opset of the default domain.
    pub opset: i64,
    /// Input shape used for the import.
    pub input_shape: Vec<usize>,
    /// Output shapes.
    pub output_shapes: Vec<Vec<usize>>,
    /// Every node, in execution order.
    pub layers: Vec<LayerInfo>,
    /// Total constant parameters.
    pub total_params: usize,
    /// Total MACs per inference.
    pub total_macs: u64,
    /// Parameters in quantizable layers.
    pub quantizable_params: usize,
    /// Number of nodes per op kind.
    pub op_counts: std::collections::BTreeMap<String, usize>,
}

/// Short name of an op for tables.
pub fn op_name(op: &Op) -> String {
    match op {
        Op::Binary(b) => format!("{b:?}"),
        Op::Unary(u) => format!("{u:?}"),
        Op::Reduce { op, .. } => format!("Reduce{op:?}"),
        Op::Gelu(k) => format!("Gelu{k:?}"),
        Op::MatMul { .. } => "MatMul".into(),
        Op::Conv2d { .. } => "Conv2d".into(),
        Op::LayerNorm { .. } => "LayerNorm".into(),
        Op::Softmax { .. } => "Softmax".into(),
        Op::Transpose { .. } => "Transpose".into(),
        Op::Concat { .. } => "Concat".into(),
        Op::Slice { .. } => "Slice".into(),
        Op::Gather { .. } => "Gather".into(),
        Op::Pad { .. } => "Pad".into(),
        Op::Linear => "Linear".into(),
        Op::Relu => "Relu".into(),
        Op::Reshape => "Reshape".into(),
        Op::Broadcast => "Broadcast".into(),
        Op::QLinear { .. } => "QLinear".into(),
        Op::QMatMul { .. } => "QMatMul".into(),
    }
}

/// Multiply-accumulates of node `i`: those of the matrix products; every other op counts none.
/// The match names every op, so a new op cannot be counted as zero by accident.
pub fn node_macs(g: &Graph, i: usize) -> u64 {
    let n = &g.nodes[i];
    let out: u64 = g.shape(n.output).iter().product::<usize>() as u64;
    match &n.op {
        Op::Linear | Op::QLinear { .. } => out * *g.shape(n.inputs[0]).last().unwrap_or(&0) as u64,
        Op::MatMul { transpose_b } | Op::QMatMul { transpose_b, .. } => {
            let s = g.shape(n.inputs[1]);
            let k = if *transpose_b {
                s[s.len() - 1]
            } else {
                s[s.len() - 2]
            };
            out * k as u64
        }
        Op::Conv2d { .. } => {
            // Weights are [O, C/group, KH, KW]: each output element reads one group's channels.
            let w = g.shape(n.inputs[1]);
            out * (w[1] * w[2] * w[3]) as u64
        }
        Op::LayerNorm { .. }
        | Op::Gelu(_)
        | Op::Relu
        | Op::Softmax { .. }
        | Op::Binary(_)
        | Op::Unary(_)
        | Op::Reduce { .. }
        | Op::Reshape
        | Op::Transpose { .. }
        | Op::Concat { .. }
        | Op::Slice { .. }
        | Op::Gather { .. }
        | Op::Broadcast
        | Op::Pad { .. } => 0,
    }
}

/// Whether the quantizer targets this op with integer kernels.
pub fn is_quantizable(op: &Op) -> bool {
    matches!(op, Op::Linear | Op::MatMul { .. } | Op::Conv2d { .. })
}

/// Collects the facts of `g`.
pub fn model_info(model: &str, opset: i64, input_shape: &[usize], g: &Graph) -> ModelInfo {
    let mut layers = vec![];
    let mut op_counts = std::collections::BTreeMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let params: usize = n
            .inputs
            .iter()
            .filter_map(|&v| g.const_data(v))
            .map(|d| d.len())
            .sum();
        let input_shapes = n
            .inputs
            .iter()
            .filter(|&&v| g.const_data(v).is_none())
            .map(|&v| g.shape(v).to_vec())
            .collect();
        let op = op_name(&n.op);
        *op_counts.entry(op.clone()).or_insert(0) += 1;
        layers.push(LayerInfo {
            name: n.name.clone(),
            op,
            input_shapes,
            output_shape: g.shape(n.output).to_vec(),
            params,
            macs: node_macs(g, i),
            quantizable: is_quantizable(&n.op),
        });
    }
    ModelInfo {
        model: model.to_string(),
        opset,
        input_shape: input_shape.to_vec(),
        output_shapes: g.outputs.iter().map(|&v| g.shape(v).to_vec()).collect(),
        total_params: g.param_count(),
        total_macs: layers.iter().map(|l| l.macs).sum(),
        quantizable_params: layers
            .iter()
            .filter(|l| l.quantizable)
            .map(|l| l.params)
            .sum(),
        layers,
        op_counts,
    }
}
