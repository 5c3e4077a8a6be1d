//! Where each output element of a data-movement or broadcasting op reads from, so relevance can
//! be routed back along the same index map (the adjoint of the copy).

use anyhow::{Result, bail, ensure};
use qvit_device::Op;

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Calls `f(flat, index)` for every element of `shape` in row-major order.
fn for_each(shape: &[usize], mut f: impl FnMut(usize, &[usize])) {
    let n: usize = shape.iter().product();
    let mut idx = vec![0; shape.len()];
    for flat in 0..n {
        f(flat, &idx);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// For every element of `to` (row-major), the flat index of the element of `from` that NumPy
/// broadcasting reads (shapes aligned on the right).
pub fn broadcast_map(from: &[usize], to: &[usize]) -> Result<Vec<usize>> {
    ensure!(
        from.len() <= to.len(),
        "{from:?} does not broadcast to {to:?}"
    );
    let own = strides(from);
    let lead = to.len() - from.len();
    let mut st = vec![0; to.len()];
    for (i, &s) in from.iter().enumerate() {
        let d = to[lead + i];
        ensure!(s == d || s == 1, "{from:?} does not broadcast to {to:?}");
        if s == d && s != 1 {
            st[lead + i] = own[i];
        }
    }
    let mut map = Vec::with_capacity(to.iter().product());
    for_each(to, |_, idx| {
        map.push(idx.iter().zip(&st).map(|(i, s)| i * s).sum());
    });
    Ok(map)
}

/// For every output element of a movement op, `(input number, flat index)` of its source, or
/// `None` where the op writes a fill value (padding).
pub fn source_map(op: &Op, ins: &[&[usize]], out: &[usize]) -> Result<Vec<Option<(usize, usize)>>> {
    let n: usize = out.iter().product();
    let mut map = Vec::with_capacity(n);
    match op {
        Op::Reshape => map.extend((0..n).map(|i| Some((0, i)))),
        Op::Broadcast => map.extend(
            broadcast_map(ins[0], out)?
                .into_iter()
                .map(|i| Some((0, i))),
        ),
        Op::Transpose { perm } => {
            let s = strides(ins[0]);
            for_each(out, |_, idx| {
                map.push(Some((
                    0,
                    idx.iter().zip(perm).map(|(i, &p)| i * s[p]).sum(),
                )));
            });
        }
        Op::Slice {
            axis, start, step, ..
        } => {
            let s = strides(ins[0]);
            for_each(out, |_, idx| {
                let f = idx
                    .iter()
                    .enumerate()
                    .map(|(d, &i)| if d == *axis { start + i * step } else { i } * s[d])
                    .sum();
                map.push(Some((0, f)));
            });
        }
        Op::Gather {
            axis,
            indices,
            indices_shape,
        } => {
            let s = strides(ins[0]);
            let k = indices_shape.len();
            let ist = strides(indices_shape);
            for_each(out, |_, idx| {
                let g: usize = idx[*axis..*axis + k]
                    .iter()
                    .zip(&ist)
                    .map(|(i, s)| i * s)
                    .sum();
                let mut f = indices[g] * s[*axis];
                f += idx[..*axis]
                    .iter()
                    .zip(&s)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
                f += idx[*axis + k..]
                    .iter()
                    .zip(&s[*axis + 1..])
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
                map.push(Some((0, f)));
            });
        }
        Op::Pad { pads, .. } => {
            let s = strides(ins[0]);
            for_each(out, |_, idx| {
                let mut f = 0;
                for (d, (&i, &(before, _))) in idx.iter().zip(pads).enumerate() {
                    if i < before || i - before >= ins[0][d] {
                        map.push(None);
                        return;
                    }
                    f += (i - before) * s[d];
                }
                map.push(Some((0, f)));
            });
        }
        Op::Concat { axis } => {
            let mut offsets = Vec::with_capacity(ins.len());
            let mut acc = 0;
            for s in ins {
                offsets.push(acc);
                acc += s[*axis];
            }
            let st: Vec<Vec<usize>> = ins.iter().map(|s| strides(s)).collect();
            for_each(out, |_, idx| {
                let k = offsets.partition_point(|&o| o <= idx[*axis]) - 1;
                let f = idx
                    .iter()
                    .enumerate()
                    .map(|(d, &i)| if d == *axis { i - offsets[k] } else { i } * st[k][d])
                    .sum();
                map.push(Some((k, f)));
            });
        }
        other => bail!("{other:?} is not a data-movement op"),
    }
    Ok(map)
}
