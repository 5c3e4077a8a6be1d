//! Data movement: Transpose, Slice, Broadcast (all one strided copy), Concat, Gather, Pad.

use super::layout::{StridedCopy, broadcast_strides, contiguous_strides};

/// `out` = `x` with axes permuted (`out` axis `i` is `x` axis `perm[i]`).
pub(crate) fn transpose(x: &[usize], perm: &[usize], out: &[usize]) -> Option<StridedCopy> {
    if perm.len() != x.len() || out.len() != x.len() {
        return None;
    }
    let mut seen = vec![false; x.len()];
    for &p in perm {
        if p >= x.len() || std::mem::replace(&mut seen[p], true) {
            return None;
        }
    }
    if perm.iter().zip(out).any(|(&p, &o)| x[p] != o) {
        return None;
    }
    let sx = contiguous_strides(x);
    let src: Vec<usize> = perm.iter().map(|&p| sx[p]).collect();
    Some(StridedCopy::new(out, 0, &src, 0, &contiguous_strides(out)))
}

/// `out` = elements `start, start+step, …` (< `end`) of `x` along `axis`.
pub(crate) fn slice(
    x: &[usize],
    axis: usize,
    start: usize,
    end: usize,
    step: usize,
    out: &[usize],
) -> Option<StridedCopy> {
    if axis >= x.len() || out.len() != x.len() || step == 0 {
        return None;
    }
    let end = end.min(x[axis]);
    let n = if end > start {
        (end - start).div_ceil(step)
    } else {
        0
    };
    let mut expect = x.to_vec();
    expect[axis] = n;
    if expect != out {
        return None;
    }
    let mut src = contiguous_strides(x);
    let base = if n > 0 { start * src[axis] } else { 0 };
    src[axis] *= step;
    Some(StridedCopy::new(
        out,
        base,
        &src,
        0,
        &contiguous_strides(out),
    ))
}

/// `out` = `x` broadcast (NumPy rules) to `out`'s shape.
pub(crate) fn broadcast(x: &[usize], out: &[usize]) -> Option<StridedCopy> {
    let src = broadcast_strides(x, out)?;
    Some(StridedCopy::new(out, 0, &src, 0, &contiguous_strides(out)))
}

/// One copy per input, each into its place along the concatenation axis of `out`.
pub(crate) fn concat(inputs: &[&[usize]], axis: usize, out: &[usize]) -> Option<Vec<StridedCopy>> {
    if axis >= out.len() {
        return None;
    }
    let so = contiguous_strides(out);
    let mut at = 0;
    let mut copies = Vec::with_capacity(inputs.len());
    for x in inputs {
        if x.len() != out.len()
            || x.iter()
                .zip(out)
                .enumerate()
                .any(|(i, (a, b))| i != axis && a != b)
        {
            return None;
        }
        copies.push(StridedCopy::new(
            x,
            0,
            &contiguous_strides(x),
            at * so[axis],
            &so,
        ));
        at += x[axis];
    }
    (at == out[axis]).then_some(copies)
}

/// Selects `indices` along an axis of a tensor seen as `[outer, len, inner]`.
#[derive(Clone, Debug)]
pub(crate) struct GatherPlan {
    outer: usize,
    len: usize,
    inner: usize,
    indices: Vec<usize>,
}

impl GatherPlan {
    /// Plans the gather; `None` when an index is out of range or `out` has the wrong shape.
    pub fn new(
        x: &[usize],
        axis: usize,
        indices: &[usize],
        indices_shape: &[usize],
        out: &[usize],
    ) -> Option<Self> {
        let len = *x.get(axis)?;
        if indices.iter().any(|&i| i >= len)
            || indices_shape.iter().product::<usize>() != indices.len()
        {
            return None;
        }
        let expect: Vec<usize> = x[..axis]
            .iter()
            .chain(indices_shape)
            .chain(&x[axis + 1..])
            .copied()
            .collect();
        if expect != out {
            return None;
        }
        Some(GatherPlan {
            outer: x[..axis].iter().product(),
            len,
            inner: x[axis + 1..].iter().product(),
            indices: indices.to_vec(),
        })
    }

    /// Gathers from `x` into `out`.
    pub fn run(&self, x: &[f32], out: &mut [f32]) {
        let (inner, n) = (self.inner, self.indices.len());
        for o in 0..self.outer {
            for (j, &idx) in self.indices.iter().enumerate() {
                let s = (o * self.len + idx) * inner;
                let d = (o * n + j) * inner;
                out[d..d + inner].copy_from_slice(&x[s..s + inner]);
            }
        }
    }
}

/// Constant padding: fill, then copy `x` into the interior.
#[derive(Clone, Debug)]
pub(crate) struct PadPlan {
    value: f32,
    interior: StridedCopy,
}

impl PadPlan {
    /// Plans the padding; `None` when `pads` or `out` do not match `x`.
    pub fn new(x: &[usize], pads: &[(usize, usize)], value: f32, out: &[usize]) -> Option<Self> {
        if pads.len() != x.len() || out.len() != x.len() {
            return None;
        }
        if x.iter()
            .zip(pads)
            .zip(out)
            .any(|((&d, &(b, a)), &o)| d.checked_add(b).and_then(|v| v.checked_add(a)) != Some(o))
        {
            return None;
        }
        let so = contiguous_strides(out);
        let base = pads.iter().zip(&so).map(|(&(b, _), s)| b * s).sum();
        Some(PadPlan {
            value,
            interior: StridedCopy::new(x, 0, &contiguous_strides(x), base, &so),
        })
    }

    /// Pads `x` into `out`.
    pub fn run(&self, x: &[f32], out: &mut [f32]) {
        out.fill(self.value);
        if !x.is_empty() {
            self.interior.run(x, out);
        }
    }
}
