//! Static shape inference per op and whole-graph validation.
//!
//! The executor plans every buffer from the shapes stored in the graph, so a graph is checked
//! here before anything runs: every value's source agrees with the node list, nodes come in a
//! valid execution order, each op gets the inputs it documents, and every stored shape equals
//! the one inferred from the op's inputs. A graph that passes [`Graph::validate`] cannot make
//! the executor index out of bounds or allocate beyond the limits below.

use crate::graph::{Graph, Op, Source};
use crate::quant::ActQuant;
use crate::{Error, Result};

/// Largest rank of any value.
pub const MAX_RANK: usize = 8;
/// Largest element count of a single value (1 GiB of f32).
pub const MAX_ELEMENTS: u64 = 1 << 28;
/// Largest total element count over all values of a graph (8 GiB of f32), so a tiny file
/// cannot ask the executor for unbounded activation memory.
pub const MAX_TOTAL_ELEMENTS: u64 = 1 << 31;

/// Why an op's input shapes do not fit together; [`Graph::validate`] adds the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

type ShapeResult<T> = std::result::Result<T, ShapeError>;

fn fail<T>(reason: impl Into<String>) -> ShapeResult<T> {
    Err(ShapeError(reason.into()))
}

/// Output shape of `op` applied to inputs of `inputs` shapes.
///
/// `declared` is the output value's stored shape: [`Op::Reshape`] and [`Op::Broadcast`] take
/// their output shape from it (checked for equal element count and broadcast compatibility);
/// other ops ignore it. Also checks the input count and the op's attributes (axes, permutation,
/// slice bounds, gather indices, strides, …).
pub fn infer(op: &Op, inputs: &[&[usize]], declared: &[usize]) -> ShapeResult<Vec<usize>> {
    match op {
        Op::Linear => linear(inputs),
        Op::MatMul { transpose_b } => matmul(inputs, *transpose_b),
        Op::Conv2d {
            strides,
            pads,
            dilations,
            group,
        } => conv2d(inputs, *strides, *pads, *dilations, *group),
        Op::LayerNorm { eps } => layer_norm(inputs, *eps),
        Op::Gelu(_) | Op::Relu | Op::Unary(_) => Ok(one(inputs)?.to_vec()),
        Op::Softmax { axis } => {
            let x = one(inputs)?;
            check_axis(*axis, x.len())?;
            Ok(x.to_vec())
        }
        Op::Binary(_) => {
            let [a, b] = two(inputs)?;
            broadcast(a, b)
        }
        Op::Reduce { axes, .. } => reduce(one(inputs)?, axes),
        Op::Reshape => {
            let x = one(inputs)?;
            if elements(x) != elements(declared) {
                return fail(format!(
                    "reshape {x:?} -> {declared:?} changes the element count"
                ));
            }
            Ok(declared.to_vec())
        }
        Op::Transpose { perm } => transpose(one(inputs)?, perm),
        Op::Concat { axis } => concat(inputs, *axis),
        Op::Slice {
            axis,
            start,
            end,
            step,
        } => slice(one(inputs)?, *axis, *start, *end, *step),
        Op::Gather {
            axis,
            indices,
            indices_shape,
        } => gather(one(inputs)?, *axis, indices, indices_shape),
        Op::Broadcast => {
            let x = one(inputs)?;
            if broadcast(x, declared)? != declared {
                return fail(format!("{x:?} does not broadcast to {declared:?}"));
            }
            Ok(declared.to_vec())
        }
        Op::Pad { pads, value } => pad(one(inputs)?, pads, *value),
        Op::QLinear { act } => qlinear(inputs, act),
        Op::QMatMul { transpose_b, a, b } => qmatmul(inputs, *transpose_b, a, b),
    }
}

fn qlinear(inputs: &[&[usize]], act: &ActQuant) -> ShapeResult<Vec<usize>> {
    count(inputs, 3..=4)?;
    if !matches!(act, ActQuant::Uniform { .. } | ActQuant::Dynamic { .. }) {
        return fail("qlinear: the activation quantizer must be uniform or dynamic");
    }
    act.check()
        .map_err(|e| ShapeError(format!("qlinear activation: {e}")))?;
    let n = inputs[1].first().copied().unwrap_or(0);
    if inputs[2] != [n] {
        return fail(format!("qlinear: scales {:?} should be [{n}]", inputs[2]));
    }
    let mut lin: Vec<&[usize]> = vec![inputs[0], inputs[1]];
    lin.extend(inputs.get(3));
    linear(&lin)
}

fn qmatmul(
    inputs: &[&[usize]],
    transpose_b: bool,
    a: &ActQuant,
    b: &ActQuant,
) -> ShapeResult<Vec<usize>> {
    let out = matmul(inputs, transpose_b)?;
    let rank = out.len();
    let batch = |s: &[usize]| s[..s.len() - 2].to_vec();
    if batch(inputs[0]) != out[..rank - 2] || batch(inputs[1]) != out[..rank - 2] {
        return fail(format!(
            "qmatmul: operands {:?} and {:?} must have equal batch axes",
            inputs[0], inputs[1]
        ));
    }
    if matches!(
        a,
        ActQuant::Symmetric { .. } | ActQuant::DynamicSymmetric { .. }
    ) || !matches!(
        b,
        ActQuant::Symmetric { .. } | ActQuant::DynamicSymmetric { .. }
    ) {
        return fail(
            "qmatmul: a must be uniform, log2 or dynamic, b symmetric or dynamic-symmetric",
        );
    }
    a.check()
        .map_err(|e| ShapeError(format!("qmatmul a: {e}")))?;
    b.check()
        .map_err(|e| ShapeError(format!("qmatmul b: {e}")))?;
    Ok(out)
}

/// Element count of a shape, saturating (only used after ranks and dims are capped).
fn elements(shape: &[usize]) -> u64 {
    shape
        .iter()
        .fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
}

fn count(inputs: &[&[usize]], allowed: std::ops::RangeInclusive<usize>) -> ShapeResult<()> {
    if allowed.contains(&inputs.len()) {
        return Ok(());
    }
    let want = if allowed.start() == allowed.end() {
        format!("{}", allowed.start())
    } else {
        format!("{} to {}", allowed.start(), allowed.end())
    };
    fail(format!("expects {want} inputs, got {}", inputs.len()))
}

fn one<'a>(inputs: &[&'a [usize]]) -> ShapeResult<&'a [usize]> {
    count(inputs, 1..=1)?;
    Ok(inputs[0])
}

fn two<'a>(inputs: &[&'a [usize]]) -> ShapeResult<[&'a [usize]; 2]> {
    count(inputs, 2..=2)?;
    Ok([inputs[0], inputs[1]])
}

fn check_axis(axis: usize, rank: usize) -> ShapeResult<()> {
    if axis >= rank {
        return fail(format!("axis {axis} out of range for rank {rank}"));
    }
    Ok(())
}

/// NumPy broadcasting of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> ShapeResult<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => fail(format!("shapes {a:?} and {b:?} do not broadcast")),
        })
        .collect()
}

fn linear(inputs: &[&[usize]]) -> ShapeResult<Vec<usize>> {
    count(inputs, 2..=3)?;
    let (x, w) = (inputs[0], inputs[1]);
    let (Some((&k, lead)), [n, wk]) = (x.split_last(), w) else {
        return fail(format!(
            "linear needs x [..., K] and weight [N, K], got {x:?} and {w:?}"
        ));
    };
    if k != *wk {
        return fail(format!(
            "linear: x {x:?} has K={k}, weight {w:?} has K={wk}"
        ));
    }
    if let Some(bias) = inputs.get(2)
        && *bias != [*n]
    {
        return fail(format!("linear: bias {bias:?} should be [{n}]"));
    }
    Ok([lead, &[*n]].concat())
}

fn matmul(inputs: &[&[usize]], transpose_b: bool) -> ShapeResult<Vec<usize>> {
    let [a, b] = two(inputs)?;
    let (&[.., m, k], &[.., b0, b1]) = (a, b) else {
        return fail(format!("matmul needs rank >= 2, got {a:?} and {b:?}"));
    };
    let (a_batch, b_batch) = (&a[..a.len() - 2], &b[..b.len() - 2]);
    let (bk, n) = if transpose_b { (b1, b0) } else { (b0, b1) };
    if k != bk {
        return fail(format!(
            "matmul: a {a:?} has K={k}, b {b:?} has K={bk} (transpose_b={transpose_b})"
        ));
    }
    let mut out = broadcast(a_batch, b_batch)?;
    out.extend([m, n]);
    Ok(out)
}

fn conv2d(
    inputs: &[&[usize]],
    strides: [usize; 2],
    pads: [usize; 4],
    dilations: [usize; 2],
    group: usize,
) -> ShapeResult<Vec<usize>> {
    count(inputs, 2..=3)?;
    let (&[b, c, h, w], &[o, cg, kh, kw]) = (inputs[0], inputs[1]) else {
        return fail(format!(
            "conv2d needs x [B,C,H,W] and weight [O,C/g,KH,KW], got {:?} and {:?}",
            inputs[0], inputs[1]
        ));
    };
    if group == 0 || c % group != 0 || o % group != 0 || c / group != cg {
        return fail(format!(
            "conv2d: group {group} does not fit C={c}, O={o}, weight C/g={cg}"
        ));
    }
    if strides.contains(&0) || dilations.contains(&0) {
        return fail(format!(
            "conv2d: strides {strides:?} and dilations {dilations:?} must be >= 1"
        ));
    }
    if let Some(bias) = inputs.get(2)
        && *bias != [o]
    {
        return fail(format!("conv2d: bias {bias:?} should be [{o}]"));
    }
    let out_dim = |size: usize, before: usize, after: usize, k: usize, d: usize, s: usize| {
        let padded = size.checked_add(before)?.checked_add(after)?;
        let span = k.checked_sub(1)?.checked_mul(d)?.checked_add(1)?;
        Some(padded.checked_sub(span)? / s + 1)
    };
    let oh = out_dim(h, pads[0], pads[2], kh, dilations[0], strides[0]);
    let ow = out_dim(w, pads[1], pads[3], kw, dilations[1], strides[1]);
    match (oh, ow) {
        (Some(oh), Some(ow)) => Ok(vec![b, o, oh, ow]),
        _ => fail(format!(
            "conv2d: kernel {kh}x{kw} (dilations {dilations:?}) larger than padded input {h}x{w}"
        )),
    }
}

fn layer_norm(inputs: &[&[usize]], eps: f32) -> ShapeResult<Vec<usize>> {
    count(inputs, 3..=3)?;
    let x = inputs[0];
    let Some(&c) = x.last() else {
        return fail("layer_norm needs rank >= 1");
    };
    if inputs[1] != [c] || inputs[2] != [c] {
        return fail(format!(
            "layer_norm: gamma {:?} and beta {:?} should be [{c}]",
            inputs[1], inputs[2]
        ));
    }
    if !(eps.is_finite() && eps >= 0.0) {
        return fail(format!("layer_norm: eps {eps} must be finite and >= 0"));
    }
    Ok(x.to_vec())
}

fn reduce(x: &[usize], axes: &[usize]) -> ShapeResult<Vec<usize>> {
    if axes.is_empty() || axes.windows(2).any(|w| w[0] >= w[1]) {
        return fail(format!(
            "reduce: axes {axes:?} must be non-empty and strictly ascending"
        ));
    }
    let mut out = x.to_vec();
    for &axis in axes {
        check_axis(axis, x.len())?;
        out[axis] = 1;
    }
    Ok(out)
}

fn transpose(x: &[usize], perm: &[usize]) -> ShapeResult<Vec<usize>> {
    let mut seen = vec![false; x.len()];
    if perm.len() != x.len()
        || !perm
            .iter()
            .all(|&p| p < x.len() && !std::mem::replace(&mut seen[p], true))
    {
        return fail(format!(
            "transpose: {perm:?} is not a permutation of rank {}",
            x.len()
        ));
    }
    Ok(perm.iter().map(|&p| x[p]).collect())
}

fn concat(inputs: &[&[usize]], axis: usize) -> ShapeResult<Vec<usize>> {
    let Some(first) = inputs.first() else {
        return fail("concat expects at least 1 input, got 0");
    };
    check_axis(axis, first.len())?;
    let mut out = first.to_vec();
    for s in &inputs[1..] {
        let same_elsewhere =
            s.len() == first.len() && (0..s.len()).all(|i| i == axis || s[i] == first[i]);
        if !same_elsewhere {
            return fail(format!(
                "concat on axis {axis}: {s:?} does not match {first:?}"
            ));
        }
        out[axis] = out[axis]
            .checked_add(s[axis])
            .ok_or_else(|| ShapeError("concat: size overflows".into()))?;
    }
    Ok(out)
}

fn slice(
    x: &[usize],
    axis: usize,
    start: usize,
    end: usize,
    step: usize,
) -> ShapeResult<Vec<usize>> {
    check_axis(axis, x.len())?;
    if step == 0 || start >= end || end > x[axis] {
        return fail(format!(
            "slice {start}..{end} step {step} invalid for axis {axis} of {x:?}"
        ));
    }
    let mut out = x.to_vec();
    out[axis] = (end - start).div_ceil(step);
    Ok(out)
}

fn gather(
    x: &[usize],
    axis: usize,
    indices: &[usize],
    indices_shape: &[usize],
) -> ShapeResult<Vec<usize>> {
    check_axis(axis, x.len())?;
    if elements(indices_shape) != indices.len() as u64 {
        return fail(format!(
            "gather: {} indices for index shape {indices_shape:?}",
            indices.len()
        ));
    }
    if let Some(bad) = indices.iter().find(|&&i| i >= x[axis]) {
        return fail(format!(
            "gather: index {bad} out of range for axis {axis} of {x:?}"
        ));
    }
    Ok([&x[..axis], indices_shape, &x[axis + 1..]].concat())
}

fn pad(x: &[usize], pads: &[(usize, usize)], value: f32) -> ShapeResult<Vec<usize>> {
    if pads.len() != x.len() {
        return fail(format!("pad: {} pads for rank {}", pads.len(), x.len()));
    }
    if value.is_nan() {
        return fail("pad: fill value is NaN");
    }
    x.iter()
        .zip(pads)
        .map(|(&d, &(b, a))| d.checked_add(b).and_then(|s| s.checked_add(a)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ShapeError("pad: size overflows".into()))
}

/// Params an op reads from constants (input positions), per the [`Op`] docs.
fn const_inputs(op: &Op) -> std::ops::Range<usize> {
    match op {
        Op::Linear | Op::Conv2d { .. } | Op::LayerNorm { .. } | Op::QLinear { .. } => 1..usize::MAX,
        _ => 0..0,
    }
}

fn graph_error(reason: impl Into<String>) -> Error {
    Error::InvalidGraph {
        node: usize::MAX,
        name: String::new(),
        reason: reason.into(),
    }
}

impl Graph {
    /// Checks everything the executor relies on; see the module docs. `Ok` means the graph can
    /// be planned and run without out-of-range access.
    pub fn validate(&self) -> Result<()> {
        self.validate_values()?;
        self.validate_io()?;
        for (i, node) in self.nodes.iter().enumerate() {
            self.validate_node(i)
                .map_err(|reason| Error::InvalidGraph {
                    node: i,
                    name: node.name.clone(),
                    reason,
                })?;
        }
        Ok(())
    }

    fn validate_values(&self) -> Result<()> {
        if u32::try_from(self.values.len()).is_err() {
            return Err(graph_error("more than u32::MAX values"));
        }
        let mut total = 0u64;
        for (id, v) in self.values.iter().enumerate() {
            let bad = |reason: String| graph_error(format!("value {id} ({}): {reason}", v.name));
            if v.shape.len() > MAX_RANK {
                return Err(bad(format!("rank {} exceeds {MAX_RANK}", v.shape.len())));
            }
            if v.shape.contains(&0) {
                return Err(bad(format!(
                    "shape {:?} is empty; empty tensors are not supported",
                    v.shape
                )));
            }
            let n = elements(&v.shape);
            if n > MAX_ELEMENTS {
                return Err(bad(format!("{n} elements exceed {MAX_ELEMENTS}")));
            }
            total += n;
            match &v.source {
                Source::Input(k) if self.inputs.get(*k) != Some(&(id as u32)) => {
                    return Err(bad(format!(
                        "claims to be graph input {k}, which it is not"
                    )));
                }
                Source::Const(data) if data.len() as u64 != n => {
                    return Err(bad(format!(
                        "{} constant elements for shape {:?}",
                        data.len(),
                        v.shape
                    )));
                }
                Source::Const(data) if data.iter().any(|x| x.is_nan()) => {
                    return Err(bad("constant contains NaN".into()));
                }
                Source::Int(data) if data.data.len() as u64 != n => {
                    return Err(bad(format!(
                        "{} integer elements for shape {:?}",
                        data.data.len(),
                        v.shape
                    )));
                }
                Source::Int(data) => data.check().map_err(bad)?,
                Source::PackedInt { bits } if !(2..=8).contains(bits) => {
                    return Err(bad(format!(
                        "{bits} bits; quantized values have 2 to 8 bits"
                    )));
                }
                Source::Node(i) if self.nodes.get(*i).map(|n| n.output as usize) != Some(id) => {
                    return Err(bad(format!(
                        "claims to be the output of node {i}, which it is not"
                    )));
                }
                _ => {}
            }
        }
        if total > MAX_TOTAL_ELEMENTS {
            return Err(graph_error(format!(
                "{total} elements in all values exceed {MAX_TOTAL_ELEMENTS}"
            )));
        }
        Ok(())
    }

    fn validate_io(&self) -> Result<()> {
        for (k, &id) in self.inputs.iter().enumerate() {
            match self.values.get(id as usize).map(|v| &v.source) {
                Some(Source::Input(j)) if *j == k => {}
                _ => {
                    return Err(graph_error(format!(
                        "graph input {k} is value {id}, which is not Input({k})"
                    )));
                }
            }
        }
        if self.outputs.is_empty() {
            return Err(graph_error("graph has no outputs"));
        }
        if let Some(id) = self
            .outputs
            .iter()
            .find(|&&id| id as usize >= self.values.len())
        {
            return Err(graph_error(format!("graph output {id} does not exist")));
        }
        if let Some(id) = self.integer_constant_output() {
            return Err(graph_error(format!(
                "graph output {id} ({}) is an integer constant; only f32 values can be outputs",
                self.values[id as usize].name
            )));
        }
        Ok(())
    }

    fn validate_node(&self, i: usize) -> std::result::Result<(), String> {
        let node = &self.nodes[i];
        let Some(out) = self.values.get(node.output as usize) else {
            return Err(format!("output value {} does not exist", node.output));
        };
        if out.source != Source::Node(i) {
            return Err(format!(
                "output value {} ({}) is not marked as produced by this node",
                node.output, out.name
            ));
        }
        let mut shapes = Vec::with_capacity(node.inputs.len());
        for (pos, &id) in node.inputs.iter().enumerate() {
            let Some(v) = self.values.get(id as usize) else {
                return Err(format!("input {pos} is value {id}, which does not exist"));
            };
            match v.source {
                Source::Node(j) if j >= i => {
                    return Err(format!(
                        "input {pos} ({}) is produced later, by node {j}",
                        v.name
                    ));
                }
                Source::Int(_) | Source::PackedInt { .. }
                    if !(matches!(node.op, Op::QLinear { .. }) && pos == 1) =>
                {
                    return Err(format!(
                        "input {pos} ({}) is an integer constant; only a QLinear weight may be",
                        v.name
                    ));
                }
                Source::Const(_) if matches!(node.op, Op::QLinear { .. }) && pos == 1 => {
                    return Err(format!(
                        "input {pos} ({}) is a QLinear weight and must be an integer constant",
                        v.name
                    ));
                }
                Source::Const(_) | Source::Int(_) | Source::PackedInt { .. } => {}
                _ if const_inputs(&node.op).contains(&pos) => {
                    return Err(format!(
                        "input {pos} ({}) is a parameter and must be a constant",
                        v.name
                    ));
                }
                _ => {}
            }
            shapes.push(v.shape.as_slice());
        }
        let inferred = infer(&node.op, &shapes, &out.shape).map_err(|e| e.0)?;
        if inferred != out.shape {
            return Err(format!(
                "output {} has shape {:?}, inferred {inferred:?}",
                out.name, out.shape
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
