//! Wire types of bundle format v1, serialised with postcard.
//!
//! These mirror the in-memory [`Graph`](crate::Graph) and [`Header`](super::Header) but are
//! kept separate so the file format changes only on purpose. Postcard is not self-describing:
//! a struct is its fields in declaration order, an enum is a varint discriminant (its variant
//! index) followed by the payload. Hence the rules for everything in this module:
//!
//! - **Enums are append-only.** New variants go at the end; never reorder, rename-with-reuse or
//!   remove a variant, since the index is the wire tag. A reader meeting an unknown tag fails
//!   with a typed error instead of misreading.
//! - **Structs are frozen.** Adding, removing or reordering a field is a new format version
//!   ([`FORMAT_VERSION`](super::FORMAT_VERSION)).
//! - **No serde attributes that need a self-describing format** (`skip_serializing_if`,
//!   `flatten`, `untagged`, `skip` on variants, `default`): they desync the stream.
//! - **Fixed-width integers only** (`u32`, `u64`, never `usize`), so a file written on a 64-bit
//!   host reads the same on 32-bit ARM.
//!
//! Tensor data is not in these types: constants point into the aligned weights blob by byte
//! offset ([`WireTensor`]), because postcard byte sequences carry no alignment.

use serde::{Deserialize, Serialize};

/// The bundle header: what a caller needs before running the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireHeader {
    /// Model name.
    pub model_name: String,
    /// Shape of the (first) graph input.
    pub input_shape: Vec<u64>,
    /// Image preprocessing, when the model takes images.
    pub preprocess: Option<WirePreprocess>,
    /// Class labels, empty when unknown.
    pub labels: Vec<String>,
    /// Tool and version that wrote the bundle, e.g. `qvit 0.1.0`.
    pub producer: String,
}

/// Image preprocessing; see [`crate::Preprocess`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WirePreprocess {
    /// Shorter-side resize before the crop.
    pub resize: Option<u32>,
    /// Centre crop `[height, width]`.
    pub crop: [u32; 2],
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation.
    pub std: Vec<f32>,
    /// One luminance channel.
    pub grayscale: bool,
    /// Tensor layout.
    pub layout: WireLayout,
}

/// Image tensor layout. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireLayout {
    /// `[N, C, H, W]`
    Nchw,
    /// `[N, H, W, C]`
    Nhwc,
}

/// The graph; see [`crate::Graph`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireGraph {
    /// Every tensor.
    pub values: Vec<WireValue>,
    /// Nodes in execution order.
    pub nodes: Vec<WireNode>,
    /// Graph inputs (value ids).
    pub inputs: Vec<u32>,
    /// Graph outputs (value ids).
    pub outputs: Vec<u32>,
}

/// One tensor of the graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireValue {
    /// Name from the source model.
    pub name: String,
    /// Static shape.
    pub shape: Vec<u64>,
    /// Where it comes from.
    pub source: WireSource,
}

/// Where a value comes from. Append-only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WireSource {
    /// The n-th graph input.
    Input(u32),
    /// Constant data in the weights blob.
    Const(WireTensor),
    /// The output of the n-th node.
    Node(u32),
}

/// Constant data stored in the weights blob.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireTensor {
    /// Element type of the stored data.
    pub dtype: WireDType,
    /// Byte offset from the start of the weights blob; a multiple of
    /// [`WEIGHT_ALIGN`](super::WEIGHT_ALIGN).
    pub offset: u64,
    /// Length in bytes; must equal the shape's element count times the dtype size.
    pub len: u64,
}

/// Element type of stored tensor data. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireDType {
    /// Little-endian IEEE-754 binary32.
    F32,
    /// Symmetric quantized integers of `bits` (2..=8) bits in the bit stream of
    /// [`crate::bitpack`]; becomes a [`crate::Source::Int`].
    Int {
        /// Bit width.
        bits: u8,
    },
    /// Little-endian IEEE-754 binary16, widened to f32 on load. The encoder picks it for an
    /// f32 constant exactly when every value is representable, so it never changes a value.
    F16,
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireNode {
    /// Source model node name.
    pub name: String,
    /// The operation.
    pub op: WireOp,
    /// Input value ids.
    pub inputs: Vec<u32>,
    /// Output value id.
    pub output: u32,
}

/// The op set; see [`crate::Op`] for semantics. Append-only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // Field meanings are documented on `crate::Op`.
pub enum WireOp {
    /// [`crate::Op::Linear`]
    Linear,
    /// [`crate::Op::MatMul`]
    MatMul { transpose_b: bool },
    /// [`crate::Op::Conv2d`]
    Conv2d {
        strides: [u32; 2],
        pads: [u32; 4],
        dilations: [u32; 2],
        group: u32,
    },
    /// [`crate::Op::LayerNorm`]
    LayerNorm { eps: f32 },
    /// [`crate::Op::Gelu`]
    Gelu(WireGelu),
    /// [`crate::Op::Relu`]
    Relu,
    /// [`crate::Op::Softmax`]
    Softmax { axis: u32 },
    /// [`crate::Op::Binary`]
    Binary(WireBinary),
    /// [`crate::Op::Unary`]
    Unary(WireUnary),
    /// [`crate::Op::Reduce`]
    Reduce { op: WireReduce, axes: Vec<u32> },
    /// [`crate::Op::Reshape`]
    Reshape,
    /// [`crate::Op::Transpose`]
    Transpose { perm: Vec<u32> },
    /// [`crate::Op::Concat`]
    Concat { axis: u32 },
    /// [`crate::Op::Slice`]
    Slice {
        axis: u32,
        start: u64,
        end: u64,
        step: u64,
    },
    /// [`crate::Op::Gather`]
    Gather {
        axis: u32,
        indices: Vec<u64>,
        indices_shape: Vec<u64>,
    },
    /// [`crate::Op::Broadcast`]
    Broadcast,
    /// [`crate::Op::Pad`]
    Pad { pads: Vec<(u64, u64)>, value: f32 },
    /// [`crate::Op::QLinear`]
    QLinear { act: WireActQuant },
    /// [`crate::Op::QMatMul`]
    QMatMul {
        transpose_b: bool,
        a: WireActQuant,
        b: WireActQuant,
    },
}

/// An activation quantizer; see [`crate::quant::ActQuant`]. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // Mirrors `crate::quant::ActQuant`.
pub enum WireActQuant {
    Uniform {
        bits: u8,
        scale: f32,
        zero: i32,
    },
    Symmetric {
        bits: u8,
        scale: f32,
    },
    Log2 {
        bits: u8,
        scale: f32,
    },
    /// Appended after v1's first bundles: a step and zero point per row, taken at run time.
    Dynamic {
        bits: u8,
    },
    /// Appended after `Dynamic`: a symmetric step per column of a QMatMul, taken at run time.
    DynamicSymmetric {
        bits: u8,
    },
}

/// GELU form. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // Mirrors `crate::graph::GeluKind`.
pub enum WireGelu {
    Erf,
    Tanh,
}

/// Binary element-wise op. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // Mirrors `crate::graph::BinaryOp`.
pub enum WireBinary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
}

/// Unary element-wise op. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // Mirrors `crate::graph::UnaryOp`.
pub enum WireUnary {
    Sqrt,
    Rsqrt,
    Recip,
    Exp,
    Erf,
    Tanh,
    Sigmoid,
    Abs,
    Neg,
    Square,
    Ln,
}

/// Reduction. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // Mirrors `crate::graph::ReduceOp`.
pub enum WireReduce {
    Sum,
    Mean,
    Max,
    Min,
    MeanOfSquares,
}
