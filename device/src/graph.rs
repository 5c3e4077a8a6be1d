//! The model graph the device runs: a small, statically shaped op set.
//!
//! Every value is an f32 tensor whose shape is fixed when the model is imported, so the
//! executor can plan every buffer at load time. Values are produced by exactly one of: a graph
//! input, a constant (weights, biases, folded tables) or a node. Nodes are stored in a valid
//! execution order (every input is produced before it is read).
//!
//! Parameters of an op (a Linear's weight and bias, a LayerNorm's gamma and beta) are ordinary
//! constant values named in the node's `inputs`, in the order each [`Op`] documents. That keeps
//! one way to reach a tensor for the executor, the quantizer and the relevance pass.

use crate::quant::{ActQuant, IntData};
use serde::{Deserialize, Serialize};

/// Index of a value in [`Graph::values`].
pub type ValueId = u32;

/// A statically shaped f32 computation graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// Every tensor in the graph, indexed by [`ValueId`].
    pub values: Vec<Value>,
    /// Nodes in execution order.
    pub nodes: Vec<Node>,
    /// Graph inputs, in the order callers pass them.
    pub inputs: Vec<ValueId>,
    /// Graph outputs, in the order they are returned.
    pub outputs: Vec<ValueId>,
}

/// One tensor of the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// Name from the source model (ONNX tensor or node name), for reports and debugging.
    pub name: String,
    /// Static shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// Where the value comes from.
    pub source: Source,
}

/// Where a [`Value`] comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The n-th graph input.
    Input(usize),
    /// Constant data, row-major, `shape.iter().product()` elements.
    Const(Vec<f32>),
    /// The output of the n-th node.
    Node(usize),
    /// Quantized integer constant (the weight of an [`Op::QLinear`]); never read as f32.
    Int(IntData),
    /// A quantized integer constant of `bits` bits whose values an executor moved into its
    /// packed weights (`Executor::new_releasing_weights`, which a loaded `Model` uses), so that
    /// they are held once. The shape stays; the values are gone from the graph, so it can be
    /// run by that executor but not encoded or planned again. Before planning, a bundle read
    /// for running (`Bundle::read_file_bit_packed`) holds its values beside the graph, still
    /// bit-packed, until its layers are packed.
    PackedInt {
        /// Bit width of the values.
        bits: u8,
    },
}

/// One operation. `name` keeps the source model's node name (e.g. `/blocks.0/attn/qkv/MatMul`).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Source model node name.
    pub name: String,
    /// What the node computes.
    pub op: Op,
    /// Input values, in the order the op documents.
    pub inputs: Vec<ValueId>,
    /// The single value this node produces.
    pub output: ValueId,
}

/// Whether GELU uses the exact erf form or the tanh approximation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GeluKind {
    /// `0.5·x·(1 + erf(x/√2))`
    Erf,
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`
    Tanh,
}

/// Element-wise binary operations with NumPy broadcasting of both inputs to the output shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a.powf(b)`
    Pow,
    /// `max(a, b)`
    Max,
    /// `min(a, b)`
    Min,
}

/// Element-wise unary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryOp {
    /// `√x`
    Sqrt,
    /// `1/√x`
    Rsqrt,
    /// `1/x`
    Recip,
    /// `eˣ`
    Exp,
    /// `erf(x)`
    Erf,
    /// `tanh(x)`
    Tanh,
    /// `1/(1+e⁻ˣ)`
    Sigmoid,
    /// `|x|`
    Abs,
    /// `-x`
    Neg,
    /// `x²`
    Square,
    /// `ln x`
    Ln,
}

/// Reductions over a set of axes; reduced axes are kept with size 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReduceOp {
    /// Sum of the elements.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Mean of the squared elements.
    MeanOfSquares,
}

/// The op set. Shapes below are the static shapes of the node's input and output values.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Fully connected layer on the last axis. Inputs: `x [..., K]`, `weight [N, K]` (const,
    /// one row per output channel), optional `bias [N]` (const). Output `[..., N]`:
    /// `y = x·Wᵀ + b`.
    Linear,
    /// Matrix product of two activations with NumPy broadcasting of the leading (batch) axes.
    /// Inputs: `a [..., M, K]`, `b [..., K, N]` (or `[..., N, K]` when `transpose_b`).
    /// Output `[..., M, N]`.
    MatMul {
        /// `b` is stored `[..., N, K]`.
        transpose_b: bool,
    },
    /// 2-D convolution, NCHW. Inputs: `x [B, C, H, W]`, `weight [O, C/group, KH, KW]` (const),
    /// optional `bias [O]` (const).
    Conv2d {
        /// Stride along H and W.
        strides: [usize; 2],
        /// Zero padding: top, left, bottom, right.
        pads: [usize; 4],
        /// Dilation along H and W.
        dilations: [usize; 2],
        /// Number of groups.
        group: usize,
    },
    /// Layer normalisation over the last axis. Inputs: `x [..., C]`, `gamma [C]`, `beta [C]`
    /// (both const). `y = (x - mean) / √(var + eps) · gamma + beta`, population variance.
    LayerNorm {
        /// Added to the variance.
        eps: f32,
    },
    /// GELU activation. Input `x`.
    Gelu(GeluKind),
    /// `max(x, 0)`. Input `x`.
    Relu,
    /// Softmax along `axis`. Input `x`.
    Softmax {
        /// Axis of the normalisation.
        axis: usize,
    },
    /// Element-wise binary op. Inputs `a`, `b`, each broadcastable to the output shape.
    Binary(BinaryOp),
    /// Element-wise unary op. Input `x`.
    Unary(UnaryOp),
    /// Reduction over `axes` (kept with size 1). Input `x`.
    Reduce {
        /// The reduction.
        op: ReduceOp,
        /// Reduced axes, ascending.
        axes: Vec<usize>,
    },
    /// Same data, new shape (the output value's shape). Input `x`.
    Reshape,
    /// Axis permutation: output axis `i` is input axis `perm[i]`. Input `x`.
    Transpose {
        /// The permutation.
        perm: Vec<usize>,
    },
    /// Concatenation of all inputs along `axis`.
    Concat {
        /// Axis of concatenation.
        axis: usize,
    },
    /// Elements `start, start+step, …` (< `end`) along `axis`. Input `x`.
    Slice {
        /// Sliced axis.
        axis: usize,
        /// First index.
        start: usize,
        /// One past the last index.
        end: usize,
        /// Step (≥ 1).
        step: usize,
    },
    /// Selects `indices` along `axis`; the indices' shape replaces that axis. Input `x`.
    Gather {
        /// Gathered axis.
        axis: usize,
        /// Indices into `axis`, already made non-negative.
        indices: Vec<usize>,
        /// Shape of the index tensor (empty for a scalar index, which removes the axis).
        indices_shape: Vec<usize>,
    },
    /// Broadcast the input to the output value's shape (NumPy rules). Input `x`.
    Broadcast,
    /// Constant padding. Input `x`; `pads[i] = (before, after)` for axis `i`.
    Pad {
        /// Padding per axis.
        pads: Vec<(usize, usize)>,
        /// Fill value.
        value: f32,
    },
    /// Quantized fully connected layer. Inputs: `x [..., K]` (f32), `weight [N, K]` (an
    /// [`Source::Int`] constant, symmetric per output channel), `w_scale [N]` (const), optional
    /// `bias [N]` (const). The executor maps `x` to integers with `act`, runs the integer GEMM
    /// and dequantizes: `y[n] = Σₖ (q(x)ₖ − zero)·w[n][k] · (act.scale·w_scale[n]) + bias[n]`.
    QLinear {
        /// Quantizer of `x`; [`ActQuant::Uniform`].
        act: ActQuant,
    },
    /// Quantized product of two activations, as [`Op::MatMul`] without broadcasting (equal
    /// batch axes). `a` is mapped with `a` ([`ActQuant::Uniform`], or [`ActQuant::Log2`] for
    /// probabilities, whose products are shifts) and `b` with `b` ([`ActQuant::Symmetric`]);
    /// the integer product is dequantized to f32.
    QMatMul {
        /// `b` is stored `[..., N, K]`.
        transpose_b: bool,
        /// Quantizer of the left operand.
        a: ActQuant,
        /// Quantizer of the right operand.
        b: ActQuant,
    },
}

impl Op {
    /// The op's kind as a short name (`Linear`, `Add`, `QMatMul`, …), for profiles and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Linear => "Linear",
            Op::MatMul { .. } => "MatMul",
            Op::Conv2d { .. } => "Conv2d",
            Op::LayerNorm { .. } => "LayerNorm",
            Op::Gelu(_) => "Gelu",
            Op::Relu => "Relu",
            Op::Softmax { .. } => "Softmax",
            Op::Binary(b) => match b {
                BinaryOp::Add => "Add",
                BinaryOp::Sub => "Sub",
                BinaryOp::Mul => "Mul",
                BinaryOp::Div => "Div",
                BinaryOp::Pow => "Pow",
                BinaryOp::Max => "Max",
                BinaryOp::Min => "Min",
            },
            Op::Unary(u) => match u {
                UnaryOp::Sqrt => "Sqrt",
                UnaryOp::Rsqrt => "Rsqrt",
                UnaryOp::Recip => "Recip",
                UnaryOp::Exp => "Exp",
                UnaryOp::Erf => "Erf",
                UnaryOp::Tanh => "Tanh",
                UnaryOp::Sigmoid => "Sigmoid",
                UnaryOp::Abs => "Abs",
                UnaryOp::Neg => "Neg",
                UnaryOp::Square => "Square",
                UnaryOp::Ln => "Ln",
            },
            Op::Reduce { .. } => "Reduce",
            Op::Reshape => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Concat { .. } => "Concat",
            Op::Slice { .. } => "Slice",
            Op::Gather { .. } => "Gather",
            Op::Broadcast => "Broadcast",
            Op::Pad { .. } => "Pad",
            Op::QLinear { .. } => "QLinear",
            Op::QMatMul { .. } => "QMatMul",
        }
    }
}

impl Graph {
    /// Shape of a value.
    pub fn shape(&self, id: ValueId) -> &[usize] {
        &self.values[id as usize].shape
    }

    /// Constant data of a value, if it is a constant.
    pub fn const_data(&self, id: ValueId) -> Option<&[f32]> {
        match &self.values[id as usize].source {
            Source::Const(d) => Some(d),
            _ => None,
        }
    }

    /// The first graph output that is an integer constant (a QLinear weight, which has no f32
    /// values to hand out), if any. Callers check output ids exist first.
    pub(crate) fn integer_constant_output(&self) -> Option<ValueId> {
        self.outputs.iter().copied().find(|&id| {
            matches!(
                self.values[id as usize].source,
                Source::Int(_) | Source::PackedInt { .. }
            )
        })
    }

    /// Integer data of a value, if it is a quantized constant.
    pub fn int_data(&self, id: ValueId) -> Option<&IntData> {
        match &self.values[id as usize].source {
            Source::Int(d) => Some(d),
            _ => None,
        }
    }

    /// Whether a value is a quantized integer constant, its values held by the graph or
    /// moved into an executor's packed weights.
    pub fn is_int_const(&self, id: ValueId) -> bool {
        matches!(
            self.values[id as usize].source,
            Source::Int(_) | Source::PackedInt { .. }
        )
    }

    /// Bit width of a quantized integer constant (held or moved), if the value is one.
    pub fn int_bits(&self, id: ValueId) -> Option<u8> {
        match &self.values[id as usize].source {
            Source::Int(d) => Some(d.bits),
            Source::PackedInt { bits } => Some(*bits),
            _ => None,
        }
    }

    /// Number of constant parameters (weights, biases, tables, scales) in the graph, weights
    /// moved into an executor's packed form included.
    pub fn param_count(&self) -> usize {
        self.values
            .iter()
            .filter_map(|v| match &v.source {
                Source::Const(d) => Some(d.len()),
                Source::Int(d) => Some(d.data.len()),
                Source::PackedInt { .. } => Some(v.shape.iter().product()),
                _ => None,
            })
            .sum()
    }
}
