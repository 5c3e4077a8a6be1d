//! Translators of the tract ops that map to one or a few device ops; the registry
//! (`registry.rs`) says which translator handles which op.

use super::builder::Builder;
use super::context::{Mapped, NodeCx, Translated, tensor_f32};
use super::einsum::convert_einsum;
use anyhow::{Context, Result, anyhow, bail};
use qvit_device::graph::{BinaryOp, GeluKind, Op, ReduceOp, UnaryOp, ValueId};
use tract_core::ops;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

pub(crate) fn konst(k: &ops::konst::Const, cx: &NodeCx, b: &mut Builder) -> Translated {
    let t = k.val().clone();
    if t.datum_type() == f32::datum_type() {
        let data = tensor_f32(&t)?;
        return Ok(vec![Mapped::Value(b.constant(
            cx.name,
            t.shape().to_vec(),
            data,
        ))]);
    }
    Ok(vec![Mapped::Aux(t)])
}

pub(crate) fn cast(c: &ops::cast::Cast, cx: &NodeCx, b: &mut Builder) -> Translated {
    if let Some(t) = cx.aux(0) {
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
    Ok(vec![Mapped::Value(cx.input(0, b)?)])
}

pub(crate) fn identity(_: &ops::identity::Identity, cx: &NodeCx, _: &mut Builder) -> Translated {
    Ok(vec![cx.mapped(0)?])
}

pub(crate) fn einsum(e: &ops::einsum::EinSum, cx: &NodeCx, b: &mut Builder) -> Translated {
    if e.q_params.is_some() {
        bail!("quantized EinSum is not supported");
    }
    let a = cx.input(0, b)?;
    let bb = cx.input(1, b)?;
    let v = convert_einsum(b, cx.name, &e.axes, a, bb, &cx.out_shape)?;
    Ok(vec![Mapped::Value(v)])
}

/// tract's binary op names and the device op of each.
const BINARY: [(&str, BinaryOp); 7] = [
    ("Add", BinaryOp::Add),
    ("Sub", BinaryOp::Sub),
    ("Mul", BinaryOp::Mul),
    ("Div", BinaryOp::Div),
    ("Pow", BinaryOp::Pow),
    ("Max", BinaryOp::Max),
    ("Min", BinaryOp::Min),
];

pub(crate) fn binary(bin: &ops::binary::TypedBinOp, cx: &NodeCx, b: &mut Builder) -> Translated {
    let name = bin.0.name();
    let Some(&(_, which)) = BINARY.iter().find(|(n, _)| *n == name) else {
        bail!("binary op {name} is not supported");
    };
    let (x, y) = (cx.input(0, b)?, cx.input(1, b)?);
    Ok(cx.single(b, Op::Binary(which), vec![x, y]))
}

pub(crate) fn element_wise(
    ew: &ops::element_wise::ElementWiseOp,
    cx: &NodeCx,
    b: &mut Builder,
) -> Translated {
    let x = cx.input(0, b)?;
    let v = convert_element_wise(b, cx.name, ew, x, cx.out_shape.clone())?;
    Ok(vec![Mapped::Value(v)])
}

pub(crate) fn reduce(r: &ops::nn::Reduce, cx: &NodeCx, b: &mut Builder) -> Translated {
    let which = match r.reducer {
        ops::nn::Reducer::Sum => ReduceOp::Sum,
        ops::nn::Reducer::Max => ReduceOp::Max,
        ops::nn::Reducer::Min => ReduceOp::Min,
        ops::nn::Reducer::MeanOfSquares => ReduceOp::MeanOfSquares,
        other => bail!("reducer {other:?} is not supported"),
    };
    let mut axes: Vec<usize> = r.axes.to_vec();
    axes.sort_unstable();
    let x = cx.input(0, b)?;
    Ok(cx.single(b, Op::Reduce { op: which, axes }, vec![x]))
}

pub(crate) fn softmax(s: &ops::nn::Softmax, cx: &NodeCx, b: &mut Builder) -> Translated {
    if s.kind != ops::nn::SoftmaxKind::Softmax || s.axes.len() != 1 || s.quant_output_dt.is_some() {
        bail!("only float softmax over one axis is supported");
    }
    let x = cx.input(0, b)?;
    Ok(cx.single(b, Op::Softmax { axis: s.axes[0] }, vec![x]))
}

pub(crate) fn axis_op(ax: &ops::change_axes::AxisOp, cx: &NodeCx, b: &mut Builder) -> Translated {
    let x = cx.input(0, b)?;
    let op = match ax {
        ops::change_axes::AxisOp::Move(from, to) => {
            let rank = cx.out_shape.len();
            let mut perm: Vec<usize> = (0..rank).filter(|&i| i != *from).collect();
            perm.insert(*to, *from);
            Op::Transpose { perm }
        }
        _ => Op::Reshape,
    };
    Ok(cx.single(b, op, vec![x]))
}

pub(crate) fn concat(c: &ops::array::TypedConcat, cx: &NodeCx, b: &mut Builder) -> Translated {
    let xs = cx.inputs(b)?;
    Ok(cx.single(b, Op::Concat { axis: c.axis }, xs))
}

pub(crate) fn slice(s: &ops::array::Slice, cx: &NodeCx, b: &mut Builder) -> Translated {
    let start = s.start.to_usize()?;
    let end = s.end.to_usize()?;
    let x = cx.input(0, b)?;
    let op = Op::Slice {
        axis: s.axis,
        start,
        end,
        step: 1,
    };
    Ok(cx.single(b, op, vec![x]))
}

pub(crate) fn gather(g: &ops::array::Gather, cx: &NodeCx, b: &mut Builder) -> Translated {
    let idx = cx
        .aux(1)
        .or_else(|| cx.known(1))
        .context("Gather with computed indices is not supported")?;
    let x = cx.input(0, b)?;
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
    Ok(cx.single(b, op, vec![x]))
}

pub(crate) fn broadcast(
    _: &ops::array::MultiBroadcastTo,
    cx: &NodeCx,
    b: &mut Builder,
) -> Translated {
    let x = cx.input(0, b)?;
    Ok(cx.single(b, Op::Broadcast, vec![x]))
}

pub(crate) fn pad(p: &ops::array::Pad, cx: &NodeCx, b: &mut Builder) -> Translated {
    let ops::array::PadMode::Constant(v) = &p.mode else {
        bail!("only constant padding is supported");
    };
    let value = v.cast_to_scalar::<f32>()?;
    let x = cx.input(0, b)?;
    let op = Op::Pad {
        pads: p.pads.clone(),
        value,
    };
    Ok(cx.single(b, op, vec![x]))
}

/// Kept as primitives here; the fusion pass turns mean-centred ones into LayerNorm.
pub(crate) fn rms_norm(r: &ops::nn::RmsNorm, cx: &NodeCx, b: &mut Builder) -> Translated {
    let name = cx.name;
    let x = cx.input(0, b)?;
    let mut red_shape = cx.out_shape.clone();
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
    Ok(cx.single(b, Op::Binary(BinaryOp::Mul), vec![x, inv]))
}

/// tract's element-wise op names that are one device unary op each.
const UNARY: [(&str, UnaryOp); 11] = [
    ("Sqrt", UnaryOp::Sqrt),
    ("Rsqrt", UnaryOp::Rsqrt),
    ("Recip", UnaryOp::Recip),
    ("Exp", UnaryOp::Exp),
    ("Erf", UnaryOp::Erf),
    ("Tanh", UnaryOp::Tanh),
    ("Sigmoid", UnaryOp::Sigmoid),
    ("Abs", UnaryOp::Abs),
    ("Neg", UnaryOp::Neg),
    ("Square", UnaryOp::Square),
    ("Ln", UnaryOp::Ln),
];

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
    let op_name = mini.name();
    let op_name: &str = op_name.as_ref();
    let Some(&(_, u)) = UNARY.iter().find(|(n, _)| *n == op_name) else {
        bail!("element-wise op {op_name} is not supported");
    };
    Ok(b.node(name, Op::Unary(u), vec![x], out_shape))
}
