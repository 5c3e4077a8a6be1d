//! Where a producer's elements end up: the ops between a producer and the quantized operands it
//! feeds only move elements (Reshape, Transpose, Slice, Gather) or scale them by a constant
//! (Mul by a one-element constant). Following those chains element by element at load time
//! gives, for every element a quantized operand reads, the producer element it comes from;
//! [`RowMap`] inverts and compresses that into the few numbers the producer needs to write each
//! operand's integers directly, in the layout the consumer's kernel reads.

use crate::graph::{BinaryOp, Graph, Op, ValueId};

/// Every reader of every value: `(node, input position)`.
pub(crate) fn uses(graph: &Graph) -> Vec<Vec<(usize, usize)>> {
    let mut uses = vec![Vec::new(); graph.values.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        for (pos, &v) in node.inputs.iter().enumerate() {
            uses[v as usize].push((i, pos));
        }
    }
    uses
}

/// The constant of a `Mul` by a one-element constant on input `pos`'s other side.
fn scalar_factor(graph: &Graph, node: usize, pos: usize) -> Option<f32> {
    let n = &graph.nodes[node];
    if n.op != Op::Binary(BinaryOp::Mul) || n.inputs.len() != 2 || pos > 1 {
        return None;
    }
    let other = n.inputs[1 - pos];
    match graph.const_data(other) {
        Some(&[c]) if graph.shape(n.output) == graph.shape(n.inputs[pos]) => Some(c),
        _ => None,
    }
}

/// Whether reading input `pos` of `node` only moves or scales elements (see the module doc).
pub(crate) fn is_transparent(graph: &Graph, node: usize, pos: usize) -> bool {
    match graph.nodes[node].op {
        Op::Reshape | Op::Transpose { .. } | Op::Slice { .. } | Op::Gather { .. } => pos == 0,
        Op::Binary(BinaryOp::Mul) => scalar_factor(graph, node, pos).is_some(),
        _ => false,
    }
}

/// One transparent step from a value to the next: the node and which input it reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hop {
    pub node: usize,
    pub pos: usize,
}

/// The constant factors of the `Mul` hops of a chain, producer side first.
pub(crate) fn factors(graph: &Graph, chain: &[Hop]) -> Vec<f32> {
    chain
        .iter()
        .filter_map(|h| scalar_factor(graph, h.node, h.pos))
        .collect()
}

/// Row-major multi-index of linear index `i` in `shape`.
fn unravel(mut i: usize, shape: &[usize], idx: &mut [usize]) {
    for (d, &n) in idx.iter_mut().zip(shape).rev() {
        *d = i % n.max(1);
        i /= n.max(1);
    }
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&d, &n)| acc * n + d)
}

/// The input element `node` reads to produce its output element `out` (a transparent node).
fn source_of(graph: &Graph, hop: Hop, out: usize, scratch: &mut [usize; 16]) -> Option<usize> {
    let node = &graph.nodes[hop.node];
    let in_shape = graph.shape(node.inputs[hop.pos]);
    let out_shape = graph.shape(node.output);
    match &node.op {
        Op::Reshape | Op::Binary(_) => Some(out),
        Op::Transpose { perm } => {
            let (o, i) = scratch.split_at_mut(8);
            let r = out_shape.len();
            unravel(out, out_shape, &mut o[..r]);
            for (a, &p) in perm.iter().enumerate() {
                i[p] = o[a];
            }
            Some(ravel(&i[..r], in_shape))
        }
        Op::Slice {
            axis, start, step, ..
        } => {
            let r = out_shape.len();
            let idx = &mut scratch[..r];
            unravel(out, out_shape, idx);
            idx[*axis] = start + idx[*axis] * step;
            Some(ravel(idx, in_shape))
        }
        Op::Gather {
            axis,
            indices,
            indices_shape,
        } => {
            // Output axes: in[..axis], indices_shape, in[axis+1..].
            let (k, r) = (indices_shape.len(), out_shape.len());
            let (o, i) = scratch.split_at_mut(8);
            unravel(out, out_shape, &mut o[..r]);
            let j = ravel(&o[*axis..*axis + k], indices_shape);
            i[..*axis].copy_from_slice(&o[..*axis]);
            i[*axis] = *indices.get(j)?;
            let rest = r - axis - k;
            i[axis + 1..axis + 1 + rest].copy_from_slice(&o[axis + k..r]);
            Some(ravel(&i[..in_shape.len()], in_shape))
        }
        _ => None,
    }
}

/// For every element of the chain's last value (row-major), the producer element it reads.
/// `chain` goes from the producer's value to the operand, one hop per node.
pub(crate) fn sources(graph: &Graph, chain: &[Hop], len: usize) -> Option<Vec<u32>> {
    if graph.values.iter().any(|v| v.shape.len() > 8) {
        return None;
    }
    let mut scratch = [0usize; 16];
    let mut out = Vec::with_capacity(len);
    for e in 0..len {
        let mut i = e;
        for &hop in chain.iter().rev() {
            i = source_of(graph, hop, i, &mut scratch)?;
        }
        out.push(u32::try_from(i).ok()?);
    }
    Some(out)
}

/// Where producer element `(b, r, c)` of a `[batches, rows, cols]` producer goes in an operand:
/// `base[b] + r·row_stride + col[c]`, for the columns in `cols_in`; other columns feed other
/// operands (never part of a column: each column is all in or all out).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RowMap {
    pub base: Vec<usize>,
    pub row_stride: usize,
    /// Destination offset of each producer column, `None` when this operand does not read it.
    pub col: Vec<Option<usize>>,
}

/// The producer's shape as `[batches, rows, cols]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    pub batches: usize,
    pub rows: usize,
    pub cols: usize,
}

impl Grid {
    pub fn len(&self) -> usize {
        self.batches * self.rows * self.cols
    }
}

impl RowMap {
    /// Inverts `src` (operand element in the layout `dst_of` gives → producer element) into a
    /// row map, or `None` when the operand reads some producer element twice or does not fit
    /// the `base + r·stride + col` form. `dst_of(e)` is operand element `e`'s position in the
    /// layout the consumer reads.
    pub fn new(grid: Grid, src: &[u32], dst_of: impl Fn(usize) -> usize) -> Option<RowMap> {
        const NONE: usize = usize::MAX;
        let mut inv = vec![NONE; grid.len()];
        for (e, &s) in src.iter().enumerate() {
            let slot = inv.get_mut(s as usize)?;
            if *slot != NONE {
                return None;
            }
            *slot = dst_of(e);
        }
        let at = |b: usize, r: usize, c: usize| inv[(b * grid.rows + r) * grid.cols + c];
        let col: Vec<Option<usize>> = (0..grid.cols)
            .map(|c| Some(at(0, 0, c)).filter(|&d| d != NONE))
            .collect();
        let c0 = col.iter().position(Option::is_some)?;
        let first = col[c0]?;
        let row_stride = if grid.rows > 1 {
            at(0, 1, c0).checked_sub(first)?
        } else {
            0
        };
        let base: Vec<usize> = (0..grid.batches)
            .map(|b| at(b, 0, c0).checked_sub(first))
            .collect::<Option<_>>()?;
        for (b, &bb) in base.iter().enumerate() {
            for r in 0..grid.rows {
                for (c, &dc) in col.iter().enumerate() {
                    let want = dc.map(|d| bb + r * row_stride + d);
                    let got = Some(at(b, r, c)).filter(|&d| d != NONE);
                    if want != got {
                        return None;
                    }
                }
            }
        }
        Some(RowMap {
            base,
            row_stride,
            col,
        })
    }
}

/// Row-major position of element `e` of a tensor of `shape` once its last two axes are
/// swapped (the `[…, N, K]` layout of a GEMM's weight side read from a `[…, K, N]` operand).
pub(crate) fn swapped_last_two(shape: &[usize]) -> impl Fn(usize) -> usize + '_ {
    move |e| {
        let r = shape.len();
        let (k, n) = (shape[r - 2], shape[r - 1]);
        let (batch, rest) = (e / (k * n), e % (k * n));
        let (i, j) = (rest / n, rest % n);
        batch * k * n + j * k + i
    }
}

/// Whether `v` is read as a graph output.
pub(crate) fn is_output(graph: &Graph, v: ValueId) -> bool {
    graph.outputs.contains(&v)
}
