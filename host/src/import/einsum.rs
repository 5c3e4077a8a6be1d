//! tract's EinSum → device Linear (one operand constant) or MatMul (two activations).
//!
//! Axes are classified by where they occur: in both operands and the output (batch), in one
//! operand and the output (m or n), in both operands only (contracted, k). Size-1 axes found
//! elsewhere are squeezed. Operands are transposed and reshaped to `[batch…, M, K]` ×
//! `[batch…, K, N]`, and the product is reshaped and transposed back to tract's output order.

use super::builder::Builder;
use anyhow::{Result, bail};
use qvit_device::graph::{Op, ValueId};
use tract_core::axes::AxesMapping;
use tract_core::prelude::tract_itertools::Itertools;
use tract_onnx::prelude::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Batch,
    M,
    N,
    K,
    Squeezed,
}

struct AxisInfo {
    role: Role,
    a: Option<usize>,
    b: Option<usize>,
    out: Option<usize>,
}

pub fn convert_einsum(
    bld: &mut Builder,
    name: &str,
    axes: &AxesMapping,
    a: ValueId,
    b: ValueId,
    out_shape: &[usize],
) -> Result<ValueId> {
    if axes.input_count() != 2 || axes.output_count() != 1 {
        bail!("EinSum with {} inputs is not supported", axes.input_count());
    }
    let (sa, sb) = (bld.shape(a).to_vec(), bld.shape(b).to_vec());
    let mut infos = vec![];
    for axis in axes.iter_all_axes() {
        let pos = |v: &TVec<usize>| -> Result<Option<usize>> {
            match v.len() {
                0 => Ok(None),
                1 => Ok(Some(v[0])),
                _ => bail!("axis {} repeats within one operand", axis.repr),
            }
        };
        let (pa, pb, po) = (
            pos(&axis.inputs[0])?,
            pos(&axis.inputs[1])?,
            pos(&axis.outputs[0])?,
        );
        let size = |p: Option<usize>, s: &[usize]| p.map(|p| s[p]).unwrap_or(1);
        let (da, db, dout) = (size(pa, &sa), size(pb, &sb), size(po, out_shape));
        let role = match (pa.is_some(), pb.is_some(), po.is_some()) {
            _ if da == 1 && db == 1 && dout == 1 => Role::Squeezed,
            (true, true, true) => Role::Batch,
            (true, false, true) if da == 1 => Role::Squeezed,
            (true, false, true) => Role::M,
            (false, true, true) if db == 1 => Role::Squeezed,
            (false, true, true) => Role::N,
            (true, true, false) => Role::K,
            _ => bail!("EinSum sums axis {} over one operand only", axis.repr),
        };
        infos.push(AxisInfo {
            role,
            a: pa,
            b: pb,
            out: po,
        });
    }
    // Canonical orders: batch, m and n follow the output; k follows operand a.
    let by_out = |r: Role| -> Vec<&AxisInfo> {
        infos
            .iter()
            .filter(|i| i.role == r)
            .sorted_by_key(|i| i.out)
            .collect()
    };
    let batch = by_out(Role::Batch);
    let ms = by_out(Role::M);
    let ns = by_out(Role::N);
    let ks: Vec<&AxisInfo> = infos
        .iter()
        .filter(|i| i.role == Role::K)
        .sorted_by_key(|i| i.a)
        .collect();
    let prod = |v: &[&AxisInfo], s: &[usize], f: fn(&AxisInfo) -> Option<usize>| -> usize {
        v.iter().map(|i| f(i).map(|p| s[p]).unwrap_or(1)).product()
    };
    let k = prod(&ks, &sa, |i| i.a);
    let b_is_weight = bld.graph.const_data(b).is_some() && batch.is_empty();
    let a_is_weight = !b_is_weight && bld.graph.const_data(a).is_some() && batch.is_empty();

    let arrange =
        |bld: &mut Builder, v: ValueId, order: Vec<usize>, shape: Vec<usize>, tag: &str| {
            let rank = bld.shape(v).len();
            let mut perm = order;
            perm.extend((0..rank).filter(|p| !perm.contains(p)).collect::<Vec<_>>());
            let t = bld.transpose(&format!("{name}.{tag}_t"), v, perm);
            bld.reshape(&format!("{name}.{tag}_r"), t, shape)
        };
    let pick = |v: &[&AxisInfo], f: fn(&AxisInfo) -> Option<usize>| -> Vec<usize> {
        v.iter().filter_map(|i| f(i)).collect()
    };

    // Shape of the product before the final reshape/transpose, and its axes in that order.
    let (product, mut prod_axes): (ValueId, Vec<&AxisInfo>);
    if b_is_weight || a_is_weight {
        let (act, weight) = if b_is_weight {
            (
                Operand {
                    v: a,
                    shape: &sa,
                    pos: |i| i.a,
                    free: &ms,
                },
                Operand {
                    v: b,
                    shape: &sb,
                    pos: |i| i.b,
                    free: &ns,
                },
            )
        } else {
            (
                Operand {
                    v: b,
                    shape: &sb,
                    pos: |i| i.b,
                    free: &ns,
                },
                Operand {
                    v: a,
                    shape: &sa,
                    pos: |i| i.a,
                    free: &ms,
                },
            )
        };
        let (x, xs, x_of, free_x) = (act.v, act.shape, act.pos, act.free);
        let (w, ws, w_of, free_w) = (weight.v, weight.shape, weight.pos, weight.free);
        let n = prod(free_w, ws, w_of);
        let mut x_shape: Vec<usize> = free_x.iter().map(|i| xs[x_of(i).unwrap()]).collect();
        x_shape.push(k);
        let mut x_order = pick(free_x, x_of);
        x_order.extend(pick(&ks, x_of));
        let xv = arrange(bld, x, x_order, x_shape.clone(), "x");
        // Weight rows are output channels: [N, K].
        let mut w_order = pick(free_w, w_of);
        w_order.extend(pick(&ks, w_of));
        let wv = arrange(bld, w, w_order, vec![n, k], "w");
        let mut y_shape = x_shape.clone();
        *y_shape.last_mut().unwrap() = n;
        product = bld.node(name, Op::Linear, vec![xv, wv], y_shape);
        prod_axes = free_x.to_vec();
        prod_axes.extend(free_w.iter());
    } else {
        let m = prod(&ms, &sa, |i| i.a);
        let n = prod(&ns, &sb, |i| i.b);
        let bdims = |s: &[usize], f: fn(&AxisInfo) -> Option<usize>| -> Vec<usize> {
            batch.iter().map(|i| s[f(i).unwrap()]).collect()
        };
        let mut a_shape = bdims(&sa, |i| i.a);
        a_shape.extend([m, k]);
        let mut a_order = pick(&batch, |i| i.a);
        a_order.extend(pick(&ms, |i| i.a));
        a_order.extend(pick(&ks, |i| i.a));
        let av = arrange(bld, a, a_order, a_shape, "a");
        // Prefer b as [batch, N, K] when that needs no transpose (attention's K in QKᵀ).
        let mut nk_order = pick(&batch, |i| i.b);
        nk_order.extend(pick(&ns, |i| i.b));
        nk_order.extend(pick(&ks, |i| i.b));
        let transpose_b = is_increasing(&nk_order) && !ns.is_empty() && !ks.is_empty();
        let mut b_order = pick(&batch, |i| i.b);
        let mut b_shape = bdims(&sb, |i| i.b);
        if transpose_b {
            b_order = nk_order;
            b_shape.extend([n, k]);
        } else {
            b_order.extend(pick(&ks, |i| i.b));
            b_order.extend(pick(&ns, |i| i.b));
            b_shape.extend([k, n]);
        }
        let bv = arrange(bld, b, b_order, b_shape, "b");
        let mut y_shape: Vec<usize> = batch.iter().map(|i| out_shape[i.out.unwrap()]).collect();
        y_shape.extend([m, n]);
        product = bld.node(name, Op::MatMul { transpose_b }, vec![av, bv], y_shape);
        prod_axes = batch.clone();
        prod_axes.extend(ms.iter());
        prod_axes.extend(ns.iter());
    }
    // Unflatten, move the axes into tract's output order, restore squeezed size-1 axes.
    let unflat: Vec<usize> = prod_axes
        .iter()
        .map(|i| out_shape[i.out.unwrap()])
        .collect();
    let y = bld.reshape(&format!("{name}.unflatten"), product, unflat);
    let perm: Vec<usize> = (0..prod_axes.len())
        .sorted_by_key(|&j| prod_axes[j].out)
        .collect();
    let y = bld.transpose(&format!("{name}.reorder"), y, perm);
    Ok(bld.reshape(&format!("{name}.out"), y, out_shape.to_vec()))
}

/// One operand of a Linear-shaped EinSum: its value, shape, where each axis sits in it, and
/// its free (non-contracted) axes.
struct Operand<'a> {
    v: ValueId,
    shape: &'a [usize],
    pos: fn(&AxisInfo) -> Option<usize>,
    free: &'a [&'a AxisInfo],
}

fn is_increasing(v: &[usize]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}
