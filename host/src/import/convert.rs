//! Translation of a decluttered tract model into the device's op set, one tract node at a time.
//!
//! Every tract node either maps to device nodes, folds away (casts to f32, identities), or is
//! recorded as unsupported; all unsupported nodes are reported together at the end.

use super::builder::Builder;
use super::einsum::convert_einsum;
use anyhow::{Context, Result, anyhow, bail};
use qvit_device::graph::{BinaryOp, GeluKind, Op, ReduceOp, UnaryOp, ValueId};
use std::collections::HashMap;
use tract_core::ops;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

/// A tract node that has no device translation.
#[derive(Debug, Clone)]
pub struct Unsupported {
    /// Node name.
    pub name: String,
    /// tract op name.
    pub op: String,
    /// Why it could not be translated.
    pub reason: String,
}

/// What a tract outlet became: a device value, or a non-f32 constant kept aside for attributes.
#[derive(Clone)]
pub(crate) enum Mapped {
    Value(ValueId),
    Aux(Arc<Tensor>),
}

/// Converts `model` into device nodes appended to `b`.
pub fn convert(model: &TypedModel, b: &mut Builder) -> Result<Vec<Unsupported>> {
    let mut map: HashMap<OutletId, Mapped> = HashMap::new();
    let mut unsupported = vec![];
    for &input in model.input_outlets()? {
        let shape = concrete_shape(model.outlet_fact(input)?)?;
        let name = model.node(input.node).name.clone();
        map.insert(input, Mapped::Value(b.input(&name, shape)));
    }
    for id in model.eval_order()? {
        let node = model.node(id);
        if model.input_outlets()?.iter().any(|o| o.node == id) {
            continue;
        }
        match convert_node(model, node, &map, b) {
            Ok(outs) => {
                for (slot, m) in outs.into_iter().enumerate() {
                    map.insert(OutletId::new(id, slot), m);
                }
            }
            Err(e) => {
                unsupported.push(Unsupported {
                    name: node.name.clone(),
                    op: node.op.name().to_string(),
                    reason: format!("{e:#}"),
                });
                // Keep going with a placeholder so every unsupported node is found in one pass.
                for (slot, o) in node.outputs.iter().enumerate() {
                    let shape = concrete_shape(&o.fact).unwrap_or_default();
                    let v = b.constant(
                        &format!("{}.unsupported", node.name),
                        shape.clone(),
                        vec![0.0; shape.iter().product()],
                    );
                    map.insert(OutletId::new(id, slot), Mapped::Value(v));
                }
            }
        }
    }
    if unsupported.is_empty() {
        for &o in model.output_outlets()? {
            let v = value_of(&map, o, b, model)?;
            b.output(v);
        }
    }
    Ok(unsupported)
}

pub(crate) fn concrete_shape(fact: &TypedFact) -> Result<Vec<usize>> {
    fact.shape
        .iter()
        .map(|d| {
            d.to_usize()
                .map_err(|_| anyhow!("symbolic dimension {d} left after typing"))
        })
        .collect()
}

/// The device value of an outlet; a non-f32 constant becomes an f32 constant value if asked.
pub(crate) fn value_of(
    map: &HashMap<OutletId, Mapped>,
    o: OutletId,
    b: &mut Builder,
    model: &TypedModel,
) -> Result<ValueId> {
    match map
        .get(&o)
        .with_context(|| format!("outlet {o:?} was not translated"))?
    {
        Mapped::Value(v) => Ok(*v),
        Mapped::Aux(t) => {
            let data = tensor_f32(t)?;
            Ok(b.constant(&model.node(o.node).name, t.shape().to_vec(), data))
        }
    }
}

pub(crate) fn tensor_f32(t: &Tensor) -> Result<Vec<f32>> {
    let c = t.cast_to::<f32>()?;
    Ok(c.to_plain_array_view::<f32>()?.iter().copied().collect())
}

fn aux_of(map: &HashMap<OutletId, Mapped>, o: OutletId) -> Option<Arc<Tensor>> {
    match map.get(&o)? {
        Mapped::Aux(t) => Some(t.clone()),
        Mapped::Value(_) => None,
    }
}

fn convert_node(
    model: &TypedModel,
    node: &TypedNode,
    map: &HashMap<OutletId, Mapped>,
    b: &mut Builder,
) -> Result<Vec<Mapped>> {
    let name = node.name.as_str();
    let out_shape = concrete_shape(&node.outputs[0].fact)?;
    let op = &node.op;
    let input = |i: usize, b: &mut Builder| value_of(map, node.inputs[i], b, model);

    if let Some(k) = op.downcast_ref::<ops::konst::Const>() {
        let t = k.val().clone();
        if t.datum_type() == f32::datum_type() {
            let data = tensor_f32(&t)?;
            return Ok(vec![Mapped::Value(b.constant(
                name,
                t.shape().to_vec(),
                data,
            ))]);
        }
        return Ok(vec![Mapped::Aux(t)]);
    }
    if let Some(c) = op.downcast_ref::<ops::cast::Cast>() {
        if let Some(t) = aux_of(map, node.inputs[0]) {
            return Ok(vec![Mapped::Aux(Arc::new(
                t.cast_to_dt(c.to)?.into_owned(),
            ))]);
        }
        if c.to != f32::datum_type() {
            bail!(
                "cast of a computed tensor to {:?}: qvit computes in f32 only",
                c.to
            );
        }
        return Ok(vec![Mapped::Value(input(0, b)?)]);
    }
    if op.downcast_ref::<ops::identity::Identity>().is_some() {
        return Ok(vec![map[&node.inputs[0]].clone()]);
    }
    if node.outputs[0].fact.datum_type != f32::datum_type() {
        bail!(
            "computes {:?} values at run time; qvit computes in f32 only",
            node.outputs[0].fact.datum_type
        );
    }
    if let Some(e) = op.downcast_ref::<ops::einsum::EinSum>() {
        if e.q_params.is_some() {
            bail!("quantized EinSum is not supported");
        }
        let a = input(0, b)?;
        let bb = input(1, b)?;
        let v = convert_einsum(b, name, &e.axes, a, bb, &out_shape)?;
        return Ok(vec![Mapped::Value(v)]);
    }
    if let Some(bin) = op.downcast_ref::<ops::binary::TypedBinOp>() {
        let which = match bin.0.name() {
            "Add" => BinaryOp::Add,
            "Sub" => BinaryOp::Sub,
            "Mul" => BinaryOp::Mul,
            "Div" => BinaryOp::Div,
            "Pow" => BinaryOp::Pow,
            "Max" => BinaryOp::Max,
            "Min" => BinaryOp::Min,
            other => bail!("binary op {other} is not supported"),
        };
        let (x, y) = (input(0, b)?, input(1, b)?);
        return Ok(vec![Mapped::Value(b.node(
            name,
            Op::Binary(which),
            vec![x, y],
            out_shape,
        ))]);
    }
    if let Some(ew) = op.downcast_ref::<ops::element_wise::ElementWiseOp>() {
        let x = input(0, b)?;
        return Ok(vec![Mapped::Value(convert_element_wise(
            b, name, ew, x, out_shape,
        )?)]);
    }
    if let Some(r) = op.downcast_ref::<ops::nn::Reduce>() {
        let which = match r.reducer {
            ops::nn::Reducer::Sum => ReduceOp::Sum,
            ops::nn::Reducer::Max => ReduceOp::Max,
            ops::nn::Reducer::Min => ReduceOp::Min,
            ops::nn::Reducer::MeanOfSquares => ReduceOp::MeanOfSquares,
            other => bail!("reducer {other:?} is not supported"),
        };
        let mut axes: Vec<usize> = r.axes.to_vec();
        axes.sort_unstable();
        let x = input(0, b)?;
        return Ok(vec![Mapped::Value(b.node(
            name,
            Op::Reduce { op: which, axes },
            vec![x],
            out_shape,
        ))]);
    }
    if let Some(s) = op.downcast_ref::<ops::nn::Softmax>() {
        if s.kind != ops::nn::SoftmaxKind::Softmax
            || s.axes.len() != 1
            || s.quant_output_dt.is_some()
        {
            bail!("only float softmax over one axis is supported");
        }
        let x = input(0, b)?;
        return Ok(vec![Mapped::Value(b.node(
            name,
            Op::Softmax { axis: s.axes[0] },
            vec![x],
            out_shape,
        ))]);
    }
    if let Some(ax) = op.downcast_ref::<ops::change_axes::AxisOp>() {
        let x = input(0, b)?;
        let v = match ax {
            ops::change_axes::AxisOp::Move(from, to) => {
                let rank = out_shape.len();
                let mut perm: Vec<usize> = (0..rank).filter(|&i| i != *from).collect();
                perm.insert(*to, *from);
                b.node(name, Op::Transpose { perm }, vec![x], out_shape)
            }
            _ => b.node(name, Op::Reshape, vec![x], out_shape),
        };
        return Ok(vec![Mapped::Value(v)]);
    }
    if let Some(c) = op.downcast_ref::<ops::array::TypedConcat>() {
        let xs = (0..node.inputs.len())
            .map(|i| input(i, b))
            .collect::<Result<Vec<_>>>()?;
        return Ok(vec![Mapped::Value(b.node(
            name,
            Op::Concat { axis: c.axis },
            xs,
            out_shape,
        ))]);
    }
    if let Some(s) = op.downcast_ref::<ops::array::Slice>() {
        let start = s.start.to_usize()?;
        let end = s.end.to_usize()?;
        let x = input(0, b)?;
        let op = Op::Slice {
            axis: s.axis,
            start,
            end,
            step: 1,
        };
        return Ok(vec![Mapped::Value(b.node(name, op, vec![x], out_shape))]);
    }
    if let Some(g) = op.downcast_ref::<ops::array::Gather>() {
        let idx = aux_of(map, node.inputs[1])
            .or_else(|| const_tensor(model, node.inputs[1]))
            .context("Gather with computed indices is not supported")?;
        let x = input(0, b)?;
        let axis_len = b.shape(x)[g.axis] as i64;
        let ix = idx.cast_to::<i64>()?;
        let indices = ix
            .to_plain_array_view::<i64>()?
            .iter()
            .map(|&i| {
                let j = if i < 0 { i + axis_len } else { i };
                if (0..axis_len).contains(&j) {
                    Ok(j as usize)
                } else {
                    Err(anyhow!("index {i} out of range"))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let op = Op::Gather {
            axis: g.axis,
            indices,
            indices_shape: idx.shape().to_vec(),
        };
        return Ok(vec![Mapped::Value(b.node(name, op, vec![x], out_shape))]);
    }
    if op.downcast_ref::<ops::array::MultiBroadcastTo>().is_some() {
        let x = input(0, b)?;
        return Ok(vec![Mapped::Value(b.node(
            name,
            Op::Broadcast,
            vec![x],
            out_shape,
        ))]);
    }
    if let Some(p) = op.downcast_ref::<ops::array::Pad>() {
        let ops::array::PadMode::Constant(v) = &p.mode else {
            bail!("only constant padding is supported");
        };
        let value = v.cast_to_scalar::<f32>()?;
        let x = input(0, b)?;
        return Ok(vec![Mapped::Value(b.node(
            name,
            Op::Pad {
                pads: p.pads.clone(),
                value,
            },
            vec![x],
            out_shape,
        ))]);
    }
    if let Some(r) = op.downcast_ref::<ops::nn::RmsNorm>() {
        // Kept as primitives here; the fusion pass turns mean-centred ones into LayerNorm.
        let x = input(0, b)?;
        let mut red_shape = out_shape.clone();
        red_shape[r.axis] = 1;
        let eps = r.eps.cast_to_scalar::<f32>()?;
        let ms = b.node(
            &format!("{name}.ms"),
            Op::Reduce {
                op: ReduceOp::MeanOfSquares,
                axes: vec![r.axis],
            },
            vec![x],
            red_shape.clone(),
        );
        let e = b.constant(&format!("{name}.eps"), vec![], vec![eps]);
        let s = b.node(
            &format!("{name}.add_eps"),
            Op::Binary(BinaryOp::Add),
            vec![ms, e],
            red_shape.clone(),
        );
        let inv = b.node(
            &format!("{name}.rsqrt"),
            Op::Unary(UnaryOp::Rsqrt),
            vec![s],
            red_shape,
        );
        return Ok(vec![Mapped::Value(b.node(
            name,
            Op::Binary(BinaryOp::Mul),
            vec![x, inv],
            out_shape,
        ))]);
    }
    if let Some(c) = op.downcast_ref::<ops::cnn::Conv>() {
        return Ok(vec![Mapped::Value(super::conv::convert_conv(
            model, node, c, map, b, out_shape,
        )?)]);
    }
    bail!("no translation for this op")
}

fn const_tensor(model: &TypedModel, o: OutletId) -> Option<Arc<Tensor>> {
    model.outlet_fact(o).ok()?.konst.clone()
}

fn convert_element_wise(
    b: &mut Builder,
    name: &str,
    ew: &ops::element_wise::ElementWiseOp,
    x: ValueId,
    out_shape: Vec<usize>,
) -> Result<ValueId> {
    let mini = &ew.0;
    if let Some(g) = mini.downcast_ref::<ops::nn::gelu_approximate::GeluApproximate>() {
        if g.fast_impl {
            bail!("the x²-based fast GELU approximation is not supported");
        }
        return Ok(b.node(name, Op::Gelu(GeluKind::Tanh), vec![x], out_shape));
    }
    if mini.downcast_ref::<ops::nn::GeluExact>().is_some() {
        return Ok(b.node(name, Op::Gelu(GeluKind::Erf), vec![x], out_shape));
    }
    if let Some(p) = mini.downcast_ref::<ops::math::PowConst>() {
        let e = p.exponent;
        let unary = if e == 2.0 {
            Some(UnaryOp::Square)
        } else if e == 0.5 {
            Some(UnaryOp::Sqrt)
        } else if e == -0.5 {
            Some(UnaryOp::Rsqrt)
        } else if e == -1.0 {
            Some(UnaryOp::Recip)
        } else {
            None
        };
        if let Some(u) = unary {
            return Ok(b.node(name, Op::Unary(u), vec![x], out_shape));
        }
        let k = b.constant(&format!("{name}.exponent"), vec![], vec![e]);
        return Ok(b.node(name, Op::Binary(BinaryOp::Pow), vec![x, k], out_shape));
    }
    let u = match mini.name().as_ref() {
        "Sqrt" => UnaryOp::Sqrt,
        "Rsqrt" => UnaryOp::Rsqrt,
        "Recip" => UnaryOp::Recip,
        "Exp" => UnaryOp::Exp,
        "Erf" => UnaryOp::Erf,
        "Tanh" => UnaryOp::Tanh,
        "Sigmoid" => UnaryOp::Sigmoid,
        "Abs" => UnaryOp::Abs,
        "Neg" => UnaryOp::Neg,
        "Square" => UnaryOp::Square,
        "Ln" => UnaryOp::Ln,
        other => bail!("element-wise op {other} is not supported"),
    };
    Ok(b.node(name, Op::Unary(u), vec![x], out_shape))
}
