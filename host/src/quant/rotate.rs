//! Offline per-head Hadamard rotation of attention (QuaRot-style, weights only).
//!
//! Outlier channels make per-tensor activation scales coarse at 4 bits. A normalised Hadamard
//! matrix `H` (orthogonal, entries ±1/√d) spreads one large channel over all `d` channels of a
//! head, so rotating a head's vectors by `H` flattens their range while leaving every float
//! result unchanged:
//!
//! - queries and keys: `q' = H·q`, `k' = H·k` give `q'·k' = qᵀHᵀH k = q·k`, so the logits, and
//!   everything after them, are unchanged; only the QKᵀ operands change;
//! - values: attention is linear in `V` per head, so `v' = H·v` makes each head's attention
//!   output `H·o`; the output projection absorbs `Hᵀ` in that head's input columns
//!   (`W_o' = W_o·Hᵀ`), so its output is unchanged.
//!
//! Every change is folded into Linear weights and biases (rows of the q/k/v projection, columns
//! of the output projection): the device runs the rotated bundle with no new op.
//!
//! Which Linear channels form a head is not guessed from names or a fixed layout: the Reshape,
//! Transpose, Slice and Gather chain between a Linear and a MatMul operand is run on element
//! indices, which says exactly which output channel lands at each position of each head vector.

use crate::graph::consumers;
use anyhow::{Context, Result, ensure};
use qvit_device::Tensor;
use qvit_device::exec::Executor;
use qvit_device::graph::{BinaryOp, Graph, Op, Source, ValueId};
use qvit_kernels::KernelSet;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// What the rotation did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RotateReport {
    /// QKᵀ products whose operands were rotated.
    pub qk: usize,
    /// attn·V products whose V and output projection were rotated.
    pub av: usize,
    /// Head dimension of the rotated heads.
    pub head_dim: Option<usize>,
    /// Products left alone, with the reason.
    pub skipped: Vec<String>,
    /// Largest relative output change of the rotated f32 graph on the first calibration input.
    pub check_rel_err: f32,
}

/// The normalised Sylvester–Hadamard matrix of order `d`, row-major: entry `(i, j)` is
/// `(−1)^popcount(i & j) / √d`. Symmetric and orthogonal; `None` unless `d` is a power of two.
pub fn hadamard(d: usize) -> Option<Vec<f32>> {
    if !d.is_power_of_two() {
        return None;
    }
    let s = 1.0 / (d as f32).sqrt();
    Some(
        (0..d * d)
            .map(|e| {
                let (i, j) = (e / d, e % d);
                if (i & j).count_ones() % 2 == 0 { s } else { -s }
            })
            .collect(),
    )
}

/// Which side of a Linear a rotation applies to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Output channels (weight rows and bias): the layer's output is rotated.
    Rows,
    /// Input channels (weight columns): the layer undoes a rotation of its input.
    Cols,
}

/// One planned rotation: Linear node, side, and the channel lists of its heads (position `i`
/// of a list is position `i` of the head vector).
struct Plan {
    linear: usize,
    side: Side,
    heads: Vec<Vec<usize>>,
}

/// Rotates every attention head of `g` it can prove safe, then checks on `probe` that the f32
/// output is unchanged (an error if not: a graph shape this module misreads).
pub fn rotate_heads(g: &mut Graph, probe: &Tensor) -> Result<RotateReport> {
    let mut report = RotateReport::default();
    let mut plans = Vec::new();
    for j in 0..g.nodes.len() {
        let node = &g.nodes[j];
        let Op::MatMul { transpose_b } = node.op else {
            continue;
        };
        let (a, b) = (node.inputs[0], node.inputs[1]);
        if g.const_data(a).is_some() || g.const_data(b).is_some() {
            continue;
        }
        let ra = g.shape(a).len();
        let rb = g.shape(b).len();
        if ra < 2 || rb < 2 {
            continue;
        }
        let found = if crate::graph::is_softmax_output(g, a) {
            // attn·V: V's head axis is its non-contracted one; the output's is its last.
            let v_axis = if transpose_b { rb - 2 } else { rb - 1 };
            (|| {
                let v = operand_heads(g, b, v_axis)?;
                let o = output_heads(g, node.output)?;
                Ok::<_, String>(vec![v, o])
            })()
            .map(|p| (p, false))
        } else {
            // QKᵀ: both operands' head axis is the contracted one.
            let k_axis = if transpose_b { rb - 1 } else { rb - 2 };
            (|| {
                let q = operand_heads(g, a, ra - 1)?;
                let k = operand_heads(g, b, k_axis)?;
                Ok::<_, String>(vec![q, k])
            })()
            .map(|p| (p, true))
        };
        match found {
            Ok((p, is_qk)) => {
                let d = p[0].heads[0].len();
                if hadamard(d).is_none() {
                    report
                        .skipped
                        .push(format!("{}: head dim {d} is not a power of two", node.name));
                    continue;
                }
                if p.iter().flat_map(|x| &x.heads).any(|h| h.len() != d) {
                    report
                        .skipped
                        .push(format!("{}: operands disagree on head dim", node.name));
                    continue;
                }
                report.head_dim = Some(d);
                if is_qk {
                    report.qk += 1;
                } else {
                    report.av += 1;
                }
                plans.extend(p);
            }
            Err(why) => report.skipped.push(format!("{}: {why}", node.name)),
        }
    }
    check_disjoint(&plans)?;
    let want = run(g, probe).context("running the f32 graph before rotation")?;
    for p in &plans {
        apply(g, p)?;
    }
    let got = run(g, probe).context("running the rotated f32 graph")?;
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let err = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale;
    ensure!(
        err < 1e-3,
        "the Hadamard rotation changed the f32 output by {err:.2e} (relative): this graph's \
         attention is wired in a way the rotation misreads; quantize without --rotate"
    );
    report.check_rel_err = err;
    Ok(report)
}

fn run(g: &Graph, x: &Tensor) -> Result<Vec<f32>> {
    let mut ex = Executor::new(g.clone(), KernelSet::detect())?;
    let outs = ex.run(&[x])?;
    Ok(outs.into_iter().flat_map(|t| t.data).collect())
}

/// No Linear channel may be rotated twice (two products reading the same channels).
fn check_disjoint(plans: &[Plan]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for p in plans {
        for &c in p.heads.iter().flatten() {
            ensure!(
                seen.insert((p.linear, p.side == Side::Rows, c)),
                "channel {c} of a Linear feeds two attention products; rotation not applied"
            );
        }
    }
    Ok(())
}

/// Whether `op` only moves elements (so index propagation describes it exactly).
fn moves_only(op: &Op) -> bool {
    matches!(
        op,
        Op::Reshape | Op::Transpose { .. } | Op::Slice { .. } | Op::Gather { .. }
    )
}

/// A constant whose elements are all equal: multiplying by it commutes with any rotation.
fn is_scalar_const(g: &Graph, v: ValueId) -> bool {
    g.const_data(v)
        .is_some_and(|d| !d.is_empty() && d.iter().all(|&x| x == d[0]))
}

/// The data input of node `i` if it is a scaling by a uniform constant (`x·s`, `s·x`, `x/s`).
fn scaled_input(g: &Graph, i: usize) -> Option<ValueId> {
    let n = &g.nodes[i];
    let out = g.shape(n.output);
    match n.op {
        Op::Binary(BinaryOp::Mul) if is_scalar_const(g, n.inputs[1]) => Some(n.inputs[0]),
        Op::Binary(BinaryOp::Mul) if is_scalar_const(g, n.inputs[0]) => Some(n.inputs[1]),
        Op::Binary(BinaryOp::Div) if is_scalar_const(g, n.inputs[1]) => Some(n.inputs[0]),
        _ => None,
    }
    .filter(|&x| g.shape(x) == out)
}

/// Heads of the Linear that produces MatMul operand `v` (head vectors along `axis`).
fn operand_heads(g: &Graph, v: ValueId, axis: usize) -> Result<Plan, String> {
    let mut chain = Vec::new();
    let mut cur = v;
    let linear = loop {
        let Some(i) = crate::graph::producer(g, cur) else {
            return Err("operand does not come from a Linear".into());
        };
        let n = &g.nodes[i];
        if matches!(n.op, Op::Linear) {
            break i;
        }
        if moves_only(&n.op) {
            chain.push(i);
            cur = n.inputs[0];
        } else if let Some(x) = scaled_input(g, i) {
            chain.push(i);
            cur = x;
        } else {
            return Err(format!("operand passes through {}", n.op.kind()));
        }
        if chain.len() > 16 {
            return Err("operand chain too long".into());
        }
    };
    chain.reverse();
    let lin_out = g.nodes[linear].output;
    let n = *g.shape(lin_out).last().unwrap_or(&0);
    let (map, shape) = follow(g, lin_out, &chain)?;
    let heads = head_channels(&map, &shape, axis, n)?;
    linear_ok(g, linear)?;
    Ok(Plan {
        linear,
        side: Side::Rows,
        heads,
    })
}

/// Heads of the input of the Linear that consumes attention output `o` (head vectors along its
/// last axis), through element moves only and no other reader.
fn output_heads(g: &Graph, o: ValueId) -> Result<Plan, String> {
    let cons = consumers(g);
    let mut chain = Vec::new();
    let mut cur = o;
    let linear = loop {
        if g.outputs.contains(&cur) || cons[cur as usize].len() != 1 {
            return Err("attention output has other readers".into());
        }
        let (i, pos) = cons[cur as usize][0];
        let n = &g.nodes[i];
        if matches!(n.op, Op::Linear) && pos == 0 {
            break i;
        }
        let scaled = scaled_input(g, i) == Some(cur);
        if !(scaled || (moves_only(&n.op) && pos == 0)) {
            return Err(format!("attention output passes through {}", n.op.kind()));
        }
        chain.push(i);
        cur = n.output;
        if chain.len() > 16 {
            return Err("output chain too long".into());
        }
    };
    let o_shape = g.shape(o).to_vec();
    let len: usize = o_shape.iter().product();
    let (map, shape) = follow(g, o, &chain)?;
    // The Linear input must be a permutation of the attention output to invert the map.
    if map.len() != len {
        return Err("attention output is not carried whole to the projection".into());
    }
    let mut inv = vec![u32::MAX; len];
    for (p, &src) in map.iter().enumerate() {
        if inv[src as usize] != u32::MAX {
            return Err("attention output elements are duplicated".into());
        }
        inv[src as usize] = p as u32;
    }
    let n = *shape.last().unwrap_or(&0);
    let heads = head_channels(&inv, &o_shape, o_shape.len() - 1, n)?;
    linear_ok(g, linear)?;
    Ok(Plan {
        linear,
        side: Side::Cols,
        heads,
    })
}

/// Where each element of `start` ends up through the element-moving nodes `chain` (in order):
/// the source index of every element of the last node's output, and that output's shape.
fn follow(g: &Graph, start: ValueId, chain: &[usize]) -> Result<(Vec<u32>, Vec<usize>), String> {
    let mut shape = g.shape(start).to_vec();
    let len: usize = shape.iter().product();
    let mut map: Vec<u32> = (0..len as u32).collect();
    for &i in chain {
        let out = g.shape(g.nodes[i].output).to_vec();
        map = move_indices(&g.nodes[i].op, &map, &shape, &out)
            .ok_or_else(|| format!("cannot follow {}", g.nodes[i].name))?;
        shape = out;
    }
    Ok((map, shape))
}

/// The Linear's weight (and bias) must be constants of its own so folding touches nothing else.
fn linear_ok(g: &Graph, j: usize) -> Result<(), String> {
    let cons = consumers(g);
    for &v in &g.nodes[j].inputs[1..] {
        if g.const_data(v).is_none() || cons[v as usize].len() != 1 {
            return Err(format!(
                "{}: weight or bias is not a constant of its own",
                g.nodes[j].name
            ));
        }
    }
    Ok(())
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// `data` (shape `shape`) moved by `op` into `out`; `None` for ops or shapes it cannot follow.
fn move_indices(op: &Op, data: &[u32], shape: &[usize], out: &[usize]) -> Option<Vec<u32>> {
    let n_out: usize = out.iter().product();
    let (si, so) = (strides(shape), strides(out));
    let coords = |o: usize, k: usize| o / so[k] % out[k];
    let pick = |src: &dyn Fn(usize) -> Option<usize>| -> Option<Vec<u32>> {
        (0..n_out)
            .map(|o| src(o).and_then(|i| data.get(i).copied()))
            .collect()
    };
    match op {
        Op::Reshape => (n_out == data.len()).then(|| data.to_vec()),
        Op::Binary(_) => (out == shape).then(|| data.to_vec()),
        Op::Transpose { perm } => {
            if perm.len() != shape.len() || out.len() != shape.len() {
                return None;
            }
            pick(&|o| Some((0..out.len()).map(|k| coords(o, k) * si[perm[k]]).sum()))
        }
        Op::Slice {
            axis, start, step, ..
        } => {
            if out.len() != shape.len() || *axis >= shape.len() {
                return None;
            }
            pick(&|o| {
                (0..out.len())
                    .map(|k| {
                        let c = coords(o, k);
                        let c = if k == *axis { start + c * step } else { c };
                        (c < shape[k]).then_some(c * si[k])
                    })
                    .sum()
            })
        }
        Op::Gather {
            axis,
            indices,
            indices_shape,
        } => {
            let r = indices_shape.len();
            if *axis >= shape.len() || out.len() + 1 != shape.len() + r {
                return None;
            }
            let is = strides(indices_shape);
            pick(&|o| {
                let flat: usize = (0..r).map(|t| coords(o, axis + t) * is[t]).sum();
                let at = *indices.get(flat)?;
                (at < shape[*axis]).then_some(())?;
                let mut off = at * si[*axis];
                for (k, &st) in si.iter().enumerate() {
                    if k < *axis {
                        off += coords(o, k) * st;
                    } else if k > *axis {
                        off += coords(o, k + r - 1) * st;
                    }
                }
                Some(off)
            })
        }
        _ => None,
    }
}

/// The channel lists of the head vectors along `axis` of an array whose elements name flat
/// positions of a `[rows, n]` Linear tensor: every vector must lie in one row, and two vectors
/// either use the same channels in the same order or disjoint ones.
fn head_channels(
    map: &[u32],
    shape: &[usize],
    axis: usize,
    n: usize,
) -> Result<Vec<Vec<usize>>, String> {
    let d = shape[axis];
    let stride = strides(shape)[axis];
    if n == 0 || d < 2 {
        return Err("no head axis".into());
    }
    let mut lists = BTreeSet::new();
    for outer in 0..map.len() / (d * stride) {
        for inner in 0..stride {
            let base = outer * d * stride + inner;
            let line: Vec<usize> = (0..d).map(|i| map[base + i * stride] as usize).collect();
            if line.iter().any(|&x| x / n != line[0] / n) {
                return Err("a head vector mixes tokens".into());
            }
            lists.insert(line.iter().map(|&x| x % n).collect::<Vec<_>>());
        }
    }
    if lists.is_empty() {
        return Err("no head vectors".into());
    }
    let mut owner = HashMap::new();
    for (h, l) in lists.iter().enumerate() {
        for &c in l {
            if owner.insert(c, h).is_some() {
                return Err("head vectors share channels".into());
            }
        }
    }
    Ok(lists.into_iter().collect())
}

/// Folds `H` into the Linear: output rows `W[c_i] ← Σ_j H_ij W[c_j]` (and the bias), or input
/// columns `W[:, c_i] ← Σ_j W[:, c_j] H_ij` (`W·Hᵀ`, `H` being symmetric).
fn apply(g: &mut Graph, p: &Plan) -> Result<()> {
    let d = p.heads[0].len();
    let h = hadamard(d).context("head dim is not a power of two")?;
    let node = g.nodes[p.linear].clone();
    let w_id = node.inputs[1] as usize;
    let (rows, k) = (g.values[w_id].shape[0], g.values[w_id].shape[1]);
    let Source::Const(w) = &mut g.values[w_id].source else {
        anyhow::bail!("{}: weight is not a constant", node.name);
    };
    let mix = |x: &[f32], i: usize| -> f32 { (0..d).map(|j| h[i * d + j] * x[j]).sum() };
    for head in &p.heads {
        ensure!(
            head.iter()
                .all(|&c| c < if p.side == Side::Rows { rows } else { k }),
            "{}: head channel out of range",
            node.name
        );
        match p.side {
            Side::Rows => {
                for col in 0..k {
                    let x: Vec<f32> = head.iter().map(|&c| w[c * k + col]).collect();
                    for (i, &c) in head.iter().enumerate() {
                        w[c * k + col] = mix(&x, i);
                    }
                }
            }
            Side::Cols => {
                for row in w.chunks_exact_mut(k) {
                    let x: Vec<f32> = head.iter().map(|&c| row[c]).collect();
                    for (i, &c) in head.iter().enumerate() {
                        row[c] = mix(&x, i);
                    }
                }
            }
        }
    }
    if p.side == Side::Rows
        && let Some(&b_id) = node.inputs.get(2)
        && let Source::Const(b) = &mut g.values[b_id as usize].source
    {
        for head in &p.heads {
            let x: Vec<f32> = head.iter().map(|&c| b[c]).collect();
            for (i, &c) in head.iter().enumerate() {
                b[c] = mix(&x, i);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `H·Hᵀ = I` for every order up to 128, `H` symmetric with entries ±1/√d, and the closed
    /// form of order 2: `[[1, 1], [1, −1]]/√2`. Non-powers of two have none.
    #[test]
    fn hadamard_is_orthogonal() {
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert_eq!(hadamard(2).unwrap(), vec![s, s, s, -s]);
        for d in [1, 2, 4, 8, 16, 32, 64, 128] {
            let h = hadamard(d).unwrap();
            for i in 0..d {
                for j in 0..d {
                    assert_eq!(h[i * d + j], h[j * d + i]);
                    assert!((h[i * d + j].abs() - 1.0 / (d as f32).sqrt()).abs() < 1e-7);
                    let dot: f32 = (0..d).map(|t| h[i * d + t] * h[j * d + t]).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "d={d} ({i},{j}) {dot}");
                }
            }
        }
        for d in [0, 3, 6, 24, 48, 96] {
            assert!(hadamard(d).is_none(), "{d}");
        }
    }

    /// A transpose then a slice, followed on indices, equal the closed form of both.
    #[test]
    fn index_moves_match_closed_form() {
        let data: Vec<u32> = (0..24).collect();
        let t = move_indices(
            &Op::Transpose {
                perm: vec![2, 0, 1],
            },
            &data,
            &[2, 3, 4],
            &[4, 2, 3],
        )
        .unwrap();
        for (o, &v) in t.iter().enumerate() {
            let (c, a, b) = (o / 6, o / 3 % 2, o % 3);
            assert_eq!(v as usize, a * 12 + b * 4 + c);
        }
        let s = Op::Slice {
            axis: 1,
            start: 1,
            end: 3,
            step: 1,
        };
        let sl = move_indices(&s, &data, &[2, 3, 4], &[2, 2, 4]).unwrap();
        assert_eq!(&sl[..8], &[4, 5, 6, 7, 8, 9, 10, 11]);
        let gather = Op::Gather {
            axis: 0,
            indices: vec![1],
            indices_shape: vec![],
        };
        assert_eq!(
            move_indices(&gather, &data, &[2, 3, 4], &[3, 4]).unwrap(),
            (12..24).collect::<Vec<u32>>()
        );
    }
}
