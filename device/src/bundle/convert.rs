//! Conversions between the in-memory graph and its wire form, and the weights blob.
//!
//! Decoding checks every number before it is used as a size or index: ranks and element counts
//! against the caps in [`crate::shape`], tensor byte ranges against the blob. What is left
//! (references between values and nodes, shapes per op) is [`Graph::validate`]'s job.

use super::read::Blob;
use super::wire::*;
use super::{BitPackedWeights, WEIGHT_ALIGN, limits};
use crate::graph::{
    BinaryOp, GeluKind, Graph, Node, Op, ReduceOp, Source, UnaryOp, Value, ValueId,
};
use crate::quant::{ActQuant, IntData, check_int_values};
use crate::shape::{MAX_ELEMENTS, MAX_RANK};
use crate::{Error, Result};

fn bad(reason: impl Into<String>) -> Error {
    Error::BadBundle(reason.into())
}

/// `usize` to `u64`: lossless on every supported target.
fn wide(x: usize) -> u64 {
    x as u64
}

/// `usize` to `u32`, failing when a count does not fit the wire type.
fn narrow(x: usize, what: &str) -> Result<u32> {
    u32::try_from(x).map_err(|_| Error::TooLarge {
        what: what.into(),
        found: wide(x),
        limit: u32::MAX.into(),
    })
}

/// Wire integer to `usize`, failing on targets where it does not fit.
fn size(x: u64, what: &str) -> Result<usize> {
    usize::try_from(x).map_err(|_| Error::TooLarge {
        what: what.into(),
        found: x,
        limit: usize::MAX as u64,
    })
}

fn cap(found: usize, limit: usize, what: impl Into<String>) -> Result<()> {
    if found > limit {
        return Err(Error::TooLarge {
            what: what.into(),
            found: wide(found),
            limit: wide(limit),
        });
    }
    Ok(())
}

/// Checks a string field's length.
pub(super) fn check_name(s: &str, what: &str) -> Result<()> {
    cap(s.len(), limits::MAX_STRING, format!("{what} length"))
}

/// A shape from the wire, with rank and element count capped. A zero dimension is refused
/// here: empty tensors are not supported (see [`Graph::validate`]), and a zero would hide huge
/// other dimensions from the element cap (their product is 0), which later products of the
/// dimensions would overflow on.
pub(super) fn shape_from_wire(dims: &[u64], what: &str) -> Result<Vec<usize>> {
    cap(dims.len(), MAX_RANK, format!("rank of {what}"))?;
    if dims.contains(&0) {
        return Err(bad(format!(
            "{what}: shape {dims:?} has a zero dimension; empty tensors are not supported"
        )));
    }
    let mut n = 1u64;
    for &d in dims {
        n = n.saturating_mul(d);
    }
    if n > MAX_ELEMENTS {
        return Err(Error::TooLarge {
            what: format!("element count of {what}"),
            found: n,
            limit: MAX_ELEMENTS,
        });
    }
    // Every dimension is now at least 1 and their product at most MAX_ELEMENTS, so each one
    // and every partial product fits usize.
    dims.iter().map(|&d| size(d, what)).collect()
}

fn shape_to_wire(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| wide(d)).collect()
}

/// Encodes a graph, appending constant data to `blob` (each tensor aligned to
/// [`WEIGHT_ALIGN`] within the blob).
pub(super) fn graph_to_wire(g: &Graph, blob: &mut Vec<u8>) -> Result<WireGraph> {
    let ids = |v: &[u32]| v.to_vec();
    let values = g
        .values
        .iter()
        .map(|v| {
            let source = match &v.source {
                Source::Input(k) => WireSource::Input(narrow(*k, "input index")?),
                Source::Node(i) => WireSource::Node(narrow(*i, "node index")?),
                Source::Const(data) => WireSource::Const(append_f32(blob, data)),
                Source::Int(q) => WireSource::Const(append_int(blob, q)),
                Source::PackedInt { .. } => {
                    return Err(bad(format!(
                        "value {}: its weights were moved into an executor's packed form and \
                         are no longer in the graph; encode the graph before planning it",
                        v.name
                    )));
                }
            };
            Ok(WireValue {
                name: v.name.clone(),
                shape: shape_to_wire(&v.shape),
                source,
            })
        })
        .collect::<Result<_>>()?;
    let nodes = g
        .nodes
        .iter()
        .map(|n| {
            Ok(WireNode {
                name: n.name.clone(),
                op: op_to_wire(&n.op)?,
                inputs: ids(&n.inputs),
                output: n.output,
            })
        })
        .collect::<Result<_>>()?;
    Ok(WireGraph {
        values,
        nodes,
        inputs: ids(&g.inputs),
        outputs: ids(&g.outputs),
    })
}

/// Whether `x` survives a round trip through f16 unchanged (NaN never occurs in a valid graph).
fn f16_exact(x: f32) -> bool {
    half::f16::from_f32(x).to_f32().to_bits() == x.to_bits()
}

fn append_f32(blob: &mut Vec<u8>, data: &[f32]) -> WireTensor {
    blob.resize(blob.len().next_multiple_of(WEIGHT_ALIGN), 0);
    let offset = wide(blob.len());
    if data.iter().all(|&x| f16_exact(x)) {
        blob.extend(
            data.iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes()),
        );
        return WireTensor {
            dtype: WireDType::F16,
            offset,
            len: wide(data.len() * 2),
        };
    }
    blob.extend(data.iter().flat_map(|x| x.to_le_bytes()));
    WireTensor {
        dtype: WireDType::F32,
        offset,
        len: wide(data.len() * 4),
    }
}

fn append_int(blob: &mut Vec<u8>, q: &IntData) -> WireTensor {
    blob.resize(blob.len().next_multiple_of(WEIGHT_ALIGN), 0);
    let offset = wide(blob.len());
    let bytes = crate::bitpack::pack(&q.data, q.bits);
    blob.extend_from_slice(&bytes);
    WireTensor {
        dtype: WireDType::Int { bits: q.bits },
        offset,
        len: wide(bytes.len()),
    }
}

/// Decodes a graph, reading constants from `blob` one at a time. Counts are capped; the
/// structure is checked later by [`Graph::validate`]. With `kept`, integer constants stay
/// bit-packed there and the graph names them [`Source::PackedInt`].
pub(super) fn graph_from_wire(
    w: WireGraph,
    blob: &mut impl Blob,
    mut kept: Option<&mut BitPackedWeights>,
) -> Result<Graph> {
    cap(w.values.len(), limits::MAX_VALUES, "value count")?;
    cap(w.nodes.len(), limits::MAX_NODES, "node count")?;
    cap(w.inputs.len(), limits::MAX_IO, "graph input count")?;
    cap(w.outputs.len(), limits::MAX_IO, "graph output count")?;
    let values = w
        .values
        .into_iter()
        .enumerate()
        .map(|(id, v)| {
            check_name(&v.name, "value name")?;
            let what = format!("value {id} ({})", v.name);
            let shape = shape_from_wire(&v.shape, &what)?;
            let source = match v.source {
                WireSource::Input(k) => Source::Input(size(k.into(), "input index")?),
                WireSource::Node(i) => Source::Node(size(i.into(), "node index")?),
                WireSource::Const(t) => {
                    let kept = kept.as_deref_mut().map(|k| (k, id as ValueId));
                    read_tensor(&t, &shape, blob, &what, kept)?
                }
            };
            Ok(Value {
                name: v.name,
                shape,
                source,
            })
        })
        .collect::<Result<_>>()?;
    let nodes = w
        .nodes
        .into_iter()
        .map(|n| {
            check_name(&n.name, "node name")?;
            cap(
                n.inputs.len(),
                limits::MAX_NODE_INPUTS,
                format!("input count of node {}", n.name),
            )?;
            Ok(Node {
                name: n.name,
                op: op_from_wire(n.op)?,
                inputs: n.inputs,
                output: n.output,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Graph {
        values,
        nodes,
        inputs: w.inputs,
        outputs: w.outputs,
    })
}

/// Reads a constant, checking alignment, bounds and length before touching the data. An
/// integer constant goes into `kept` as it is stored, when given (as value `id`).
fn read_tensor(
    t: &WireTensor,
    shape: &[usize],
    blob: &mut impl Blob,
    what: &str,
    kept: Option<(&mut BitPackedWeights, ValueId)>,
) -> Result<Source> {
    // shape_from_wire capped the product; it is checked again so no caller can make it wrap.
    let too_large = || bad(format!("{what}: shape {shape:?} is too large"));
    let elements = crate::tensor::checked_len(shape).map_err(|_| too_large())?;
    let want = match t.dtype {
        WireDType::F32 => elements.checked_mul(4),
        WireDType::F16 => elements.checked_mul(2),
        WireDType::Int { bits } if (2..=8).contains(&bits) => {
            crate::bitpack::checked_packed_len(elements, bits)
        }
        WireDType::Int { bits } => return Err(bad(format!("{what}: {bits}-bit integers"))),
    }
    .ok_or_else(too_large)?;
    if t.len != wide(want) {
        return Err(bad(format!(
            "{what}: {} data bytes for {elements} elements of {:?}",
            t.len, t.dtype
        )));
    }
    if !t.offset.is_multiple_of(wide(WEIGHT_ALIGN)) {
        return Err(bad(format!(
            "{what}: data offset {} not aligned to {WEIGHT_ALIGN}",
            t.offset
        )));
    }
    let inside = t.offset.checked_add(t.len).is_some_and(|e| e <= blob.len());
    if !inside {
        return Err(bad(format!(
            "{what}: data {}+{} outside the {}-byte weights blob",
            t.offset,
            t.len,
            blob.len()
        )));
    }
    // `want` is the length in bytes, checked equal to t.len above.
    let bytes = blob.get(t.offset, want)?;
    Ok(match t.dtype {
        WireDType::F32 => Source::Const(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        WireDType::F16 => Source::Const(
            bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        ),
        // Bit-packed 8-bit values are the values: keeping them saves nothing and would copy
        // a layer once more when it is packed.
        WireDType::Int { bits } => match kept.filter(|_| bits < 8) {
            // Checked as the unpacked values below are, without unpacking them.
            Some((kept, id)) => {
                let values = crate::bitpack::values(bytes, elements, bits);
                check_int_values(bits, values).map_err(|e| bad(format!("{what}: {e}")))?;
                kept.push(id, bits, elements, bytes.to_vec());
                Source::PackedInt { bits }
            }
            None => {
                let q = IntData {
                    bits,
                    data: crate::bitpack::unpack(bytes, elements, bits),
                };
                q.check().map_err(|e| bad(format!("{what}: {e}")))?;
                Source::Int(q)
            }
        },
    })
}

fn act_to_wire(a: &ActQuant) -> WireActQuant {
    match *a {
        ActQuant::Uniform { bits, scale, zero } => WireActQuant::Uniform { bits, scale, zero },
        ActQuant::Symmetric { bits, scale } => WireActQuant::Symmetric { bits, scale },
        ActQuant::Log2 { bits, scale } => WireActQuant::Log2 { bits, scale },
        ActQuant::Dynamic { bits } => WireActQuant::Dynamic { bits },
        ActQuant::DynamicSymmetric { bits } => WireActQuant::DynamicSymmetric { bits },
    }
}

/// Decodes a quantizer; its ranges are checked by [`Graph::validate`].
fn act_from_wire(a: WireActQuant) -> ActQuant {
    match a {
        WireActQuant::Uniform { bits, scale, zero } => ActQuant::Uniform { bits, scale, zero },
        WireActQuant::Symmetric { bits, scale } => ActQuant::Symmetric { bits, scale },
        WireActQuant::Log2 { bits, scale } => ActQuant::Log2 { bits, scale },
        WireActQuant::Dynamic { bits } => ActQuant::Dynamic { bits },
        WireActQuant::DynamicSymmetric { bits } => ActQuant::DynamicSymmetric { bits },
    }
}

fn op_to_wire(op: &Op) -> Result<WireOp> {
    let u = |x: usize, what: &str| narrow(x, what);
    Ok(match op {
        Op::Linear => WireOp::Linear,
        Op::MatMul { transpose_b } => WireOp::MatMul {
            transpose_b: *transpose_b,
        },
        Op::Conv2d {
            strides,
            pads,
            dilations,
            group,
        } => WireOp::Conv2d {
            strides: [u(strides[0], "stride")?, u(strides[1], "stride")?],
            pads: [
                u(pads[0], "pad")?,
                u(pads[1], "pad")?,
                u(pads[2], "pad")?,
                u(pads[3], "pad")?,
            ],
            dilations: [u(dilations[0], "dilation")?, u(dilations[1], "dilation")?],
            group: u(*group, "group")?,
        },
        Op::LayerNorm { eps } => WireOp::LayerNorm { eps: *eps },
        Op::Gelu(k) => WireOp::Gelu(match k {
            GeluKind::Erf => WireGelu::Erf,
            GeluKind::Tanh => WireGelu::Tanh,
        }),
        Op::Relu => WireOp::Relu,
        Op::Softmax { axis } => WireOp::Softmax {
            axis: u(*axis, "axis")?,
        },
        Op::Binary(b) => WireOp::Binary(binary_to_wire(*b)),
        Op::Unary(x) => WireOp::Unary(unary_to_wire(*x)),
        Op::Reduce { op, axes } => WireOp::Reduce {
            op: reduce_to_wire(*op),
            axes: axes.iter().map(|&a| u(a, "axis")).collect::<Result<_>>()?,
        },
        Op::Reshape => WireOp::Reshape,
        Op::Transpose { perm } => WireOp::Transpose {
            perm: perm.iter().map(|&a| u(a, "axis")).collect::<Result<_>>()?,
        },
        Op::Concat { axis } => WireOp::Concat {
            axis: u(*axis, "axis")?,
        },
        Op::Slice {
            axis,
            start,
            end,
            step,
        } => WireOp::Slice {
            axis: u(*axis, "axis")?,
            start: wide(*start),
            end: wide(*end),
            step: wide(*step),
        },
        Op::Gather {
            axis,
            indices,
            indices_shape,
        } => WireOp::Gather {
            axis: u(*axis, "axis")?,
            indices: indices.iter().map(|&i| wide(i)).collect(),
            indices_shape: shape_to_wire(indices_shape),
        },
        Op::Broadcast => WireOp::Broadcast,
        Op::Pad { pads, value } => WireOp::Pad {
            pads: pads.iter().map(|&(b, a)| (wide(b), wide(a))).collect(),
            value: *value,
        },
        Op::QLinear { act } => WireOp::QLinear {
            act: act_to_wire(act),
        },
        Op::QMatMul { transpose_b, a, b } => WireOp::QMatMul {
            transpose_b: *transpose_b,
            a: act_to_wire(a),
            b: act_to_wire(b),
        },
    })
}

fn op_from_wire(op: WireOp) -> Result<Op> {
    let s = |x: u32| x as usize; // u32 fits usize on every supported target (32- and 64-bit).
    let s64 = |x: u64| size(x, "op attribute");
    Ok(match op {
        WireOp::Linear => Op::Linear,
        WireOp::MatMul { transpose_b } => Op::MatMul { transpose_b },
        WireOp::Conv2d {
            strides,
            pads,
            dilations,
            group,
        } => Op::Conv2d {
            strides: strides.map(s),
            pads: pads.map(s),
            dilations: dilations.map(s),
            group: s(group),
        },
        WireOp::LayerNorm { eps } => Op::LayerNorm { eps },
        WireOp::Gelu(k) => Op::Gelu(match k {
            WireGelu::Erf => GeluKind::Erf,
            WireGelu::Tanh => GeluKind::Tanh,
        }),
        WireOp::Relu => Op::Relu,
        WireOp::Softmax { axis } => Op::Softmax { axis: s(axis) },
        WireOp::Binary(b) => Op::Binary(binary_from_wire(b)),
        WireOp::Unary(x) => Op::Unary(unary_from_wire(x)),
        WireOp::Reduce { op, axes } => {
            cap(axes.len(), MAX_RANK, "reduce axis count")?;
            Op::Reduce {
                op: reduce_from_wire(op),
                axes: axes.into_iter().map(s).collect(),
            }
        }
        WireOp::Reshape => Op::Reshape,
        WireOp::Transpose { perm } => {
            cap(perm.len(), MAX_RANK, "transpose rank")?;
            Op::Transpose {
                perm: perm.into_iter().map(s).collect(),
            }
        }
        WireOp::Concat { axis } => Op::Concat { axis: s(axis) },
        WireOp::Slice {
            axis,
            start,
            end,
            step,
        } => Op::Slice {
            axis: s(axis),
            start: s64(start)?,
            end: s64(end)?,
            step: s64(step)?,
        },
        WireOp::Gather {
            axis,
            indices,
            indices_shape,
        } => {
            let indices_shape = shape_from_wire(&indices_shape, "gather indices")?;
            Op::Gather {
                axis: s(axis),
                indices: indices.into_iter().map(s64).collect::<Result<_>>()?,
                indices_shape,
            }
        }
        WireOp::Broadcast => Op::Broadcast,
        WireOp::Pad { pads, value } => {
            cap(pads.len(), MAX_RANK, "pad rank")?;
            Op::Pad {
                pads: pads
                    .into_iter()
                    .map(|(b, a)| Ok((s64(b)?, s64(a)?)))
                    .collect::<Result<_>>()?,
                value,
            }
        }
        WireOp::QLinear { act } => Op::QLinear {
            act: act_from_wire(act),
        },
        WireOp::QMatMul { transpose_b, a, b } => Op::QMatMul {
            transpose_b,
            a: act_from_wire(a),
            b: act_from_wire(b),
        },
    })
}

fn binary_to_wire(b: BinaryOp) -> WireBinary {
    match b {
        BinaryOp::Add => WireBinary::Add,
        BinaryOp::Sub => WireBinary::Sub,
        BinaryOp::Mul => WireBinary::Mul,
        BinaryOp::Div => WireBinary::Div,
        BinaryOp::Pow => WireBinary::Pow,
        BinaryOp::Max => WireBinary::Max,
        BinaryOp::Min => WireBinary::Min,
    }
}

fn binary_from_wire(b: WireBinary) -> BinaryOp {
    match b {
        WireBinary::Add => BinaryOp::Add,
        WireBinary::Sub => BinaryOp::Sub,
        WireBinary::Mul => BinaryOp::Mul,
        WireBinary::Div => BinaryOp::Div,
        WireBinary::Pow => BinaryOp::Pow,
        WireBinary::Max => BinaryOp::Max,
        WireBinary::Min => BinaryOp::Min,
    }
}

fn unary_to_wire(u: UnaryOp) -> WireUnary {
    match u {
        UnaryOp::Sqrt => WireUnary::Sqrt,
        UnaryOp::Rsqrt => WireUnary::Rsqrt,
        UnaryOp::Recip => WireUnary::Recip,
        UnaryOp::Exp => WireUnary::Exp,
        UnaryOp::Erf => WireUnary::Erf,
        UnaryOp::Tanh => WireUnary::Tanh,
        UnaryOp::Sigmoid => WireUnary::Sigmoid,
        UnaryOp::Abs => WireUnary::Abs,
        UnaryOp::Neg => WireUnary::Neg,
        UnaryOp::Square => WireUnary::Square,
        UnaryOp::Ln => WireUnary::Ln,
    }
}

fn unary_from_wire(u: WireUnary) -> UnaryOp {
    match u {
        WireUnary::Sqrt => UnaryOp::Sqrt,
        WireUnary::Rsqrt => UnaryOp::Rsqrt,
        WireUnary::Recip => UnaryOp::Recip,
        WireUnary::Exp => UnaryOp::Exp,
        WireUnary::Erf => UnaryOp::Erf,
        WireUnary::Tanh => UnaryOp::Tanh,
        WireUnary::Sigmoid => UnaryOp::Sigmoid,
        WireUnary::Abs => UnaryOp::Abs,
        WireUnary::Neg => UnaryOp::Neg,
        WireUnary::Square => UnaryOp::Square,
        WireUnary::Ln => UnaryOp::Ln,
    }
}

fn reduce_to_wire(r: ReduceOp) -> WireReduce {
    match r {
        ReduceOp::Sum => WireReduce::Sum,
        ReduceOp::Mean => WireReduce::Mean,
        ReduceOp::Max => WireReduce::Max,
        ReduceOp::Min => WireReduce::Min,
        ReduceOp::MeanOfSquares => WireReduce::MeanOfSquares,
    }
}

fn reduce_from_wire(r: WireReduce) -> ReduceOp {
    match r {
        WireReduce::Sum => ReduceOp::Sum,
        WireReduce::Mean => ReduceOp::Mean,
        WireReduce::Max => ReduceOp::Max,
        WireReduce::Min => ReduceOp::Min,
        WireReduce::MeanOfSquares => ReduceOp::MeanOfSquares,
    }
}
