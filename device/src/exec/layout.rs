//! Strided views and the N-d walker every data-movement and broadcasting op is built on.
//!
//! A view is a shape plus one element stride per axis for each operand (stride 0 = broadcast).
//! [`Walk`] drops size-1 axes and merges adjacent axes that are contiguous for every operand, so
//! most real cases collapse to one or two axes and the innermost run is a tight loop.

/// Row-major (contiguous) strides of `shape`.
pub(crate) fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d;
    }
    strides
}

/// Strides that read a contiguous tensor of shape `src` as if broadcast (NumPy rules, aligned
/// on the right) to `dst`; `None` when `src` does not broadcast to `dst`.
pub(crate) fn broadcast_strides(src: &[usize], dst: &[usize]) -> Option<Vec<usize>> {
    if src.len() > dst.len() {
        return None;
    }
    let own = contiguous_strides(src);
    let lead = dst.len() - src.len();
    let mut strides = vec![0; dst.len()];
    for (i, (&s, &st)) in src.iter().zip(&own).enumerate() {
        let d = dst[lead + i];
        if s == d {
            strides[lead + i] = if s == 1 { 0 } else { st };
        } else if s != 1 {
            return None;
        }
    }
    Some(strides)
}

/// A planned walk over `K` strided operands sharing one iteration shape.
#[derive(Clone, Debug)]
pub(crate) struct Walk<const K: usize> {
    /// Outer axes (outermost first), excluding the innermost run.
    outer: Vec<(usize, [usize; K])>,
    /// Length of the innermost run.
    pub inner_len: usize,
    /// Per-operand stride of the innermost run.
    pub inner_strides: [usize; K],
    /// Number of elements visited (product of the shape).
    pub total: usize,
}

impl<const K: usize> Walk<K> {
    /// Plans a walk over `shape` where operand `k` has element strides `strides[k]`.
    pub fn new(shape: &[usize], strides: [&[usize]; K]) -> Self {
        let total = shape.iter().product();
        let mut axes: Vec<(usize, [usize; K])> = Vec::with_capacity(shape.len());
        for (i, &d) in shape.iter().enumerate() {
            if d == 1 {
                continue;
            }
            let s: [usize; K] = std::array::from_fn(|k| strides[k][i]);
            if let Some(last) = axes.last_mut() {
                // The previous (outer) axis continues this one for every operand: merge.
                if (0..K).all(|k| last.1[k] == s[k] * d) {
                    last.0 *= d;
                    last.1 = s;
                    continue;
                }
            }
            axes.push((d, s));
        }
        let (inner_len, inner_strides) = axes.pop().unwrap_or((1, [0; K]));
        Walk {
            outer: axes,
            inner_len,
            inner_strides,
            total,
        }
    }

    /// Calls `f` with the operand offsets (relative to `base`) of every inner run, in row-major
    /// order of the outer axes.
    #[inline]
    pub fn for_each_run(&self, base: [usize; K], mut f: impl FnMut([usize; K])) {
        if self.total == 0 {
            return;
        }
        let n = self.outer.len();
        if n == 0 {
            f(base);
            return;
        }
        if n == 1 {
            let (d, s) = self.outer[0];
            let mut off = base;
            for _ in 0..d {
                f(off);
                for k in 0..K {
                    off[k] += s[k];
                }
            }
            return;
        }
        // Ranks are at most MAX_RANK (Graph::validate), so the odometer lives on the stack.
        let mut stack = [0usize; crate::shape::MAX_RANK];
        let mut heap;
        let idx: &mut [usize] = if n <= stack.len() {
            &mut stack[..n]
        } else {
            heap = vec![0usize; n];
            &mut heap
        };
        let mut off = base;
        loop {
            f(off);
            // Odometer increment from the innermost outer axis.
            let mut ax = n;
            loop {
                if ax == 0 {
                    return;
                }
                ax -= 1;
                let (d, s) = self.outer[ax];
                idx[ax] += 1;
                for k in 0..K {
                    off[k] += s[k];
                }
                if idx[ax] < d {
                    break;
                }
                idx[ax] = 0;
                for k in 0..K {
                    off[k] -= s[k] * d;
                }
            }
        }
    }
}

/// A copy from a strided source view into a strided destination view.
#[derive(Clone, Debug)]
pub(crate) struct StridedCopy {
    walk: Walk<2>,
    src_base: usize,
    dst_base: usize,
}

impl StridedCopy {
    /// Plans `dst[dst_base + Σ iᵢ·dstᵢ] = src[src_base + Σ iᵢ·srcᵢ]` over `shape`.
    pub fn new(
        shape: &[usize],
        src_base: usize,
        src: &[usize],
        dst_base: usize,
        dst: &[usize],
    ) -> Self {
        // Walk operand 0 is the destination so runs are ordered by where they land.
        StridedCopy {
            walk: Walk::new(shape, [dst, src]),
            src_base,
            dst_base,
        }
    }

    /// Performs the copy. The caller planned the views inside `src` and `dst`.
    pub fn run(&self, src: &[f32], dst: &mut [f32]) {
        let n = self.walk.inner_len;
        let [ds, ss] = self.walk.inner_strides;
        self.walk
            .for_each_run([self.dst_base, self.src_base], |[d, s]| match (ds, ss) {
                (1, 1) => dst[d..d + n].copy_from_slice(&src[s..s + n]),
                (1, 0) => dst[d..d + n].fill(src[s]),
                _ => {
                    for i in 0..n {
                        dst[d + i * ds] = src[s + i * ss];
                    }
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_merges_contiguous_axes() {
        let shape = [2, 3, 4];
        let c = contiguous_strides(&shape);
        let w = Walk::new(&shape, [&c, &c]);
        assert_eq!(w.inner_len, 24);
        assert!(w.outer.is_empty());
    }

    #[test]
    fn broadcast_strides_follow_numpy() {
        assert_eq!(broadcast_strides(&[3, 1], &[2, 3, 4]), Some(vec![0, 1, 0]));
        assert_eq!(broadcast_strides(&[], &[2, 3]), Some(vec![0, 0]));
        assert_eq!(broadcast_strides(&[2], &[3]), None);
    }

    #[test]
    fn transpose_copy_matches_index_formula() {
        // [2,3] -> [3,2]
        let src: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let mut dst = vec![0.0; 6];
        StridedCopy::new(&[3, 2], 0, &[1, 3], 0, &[2, 1]).run(&src, &mut dst);
        assert_eq!(dst, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }
}
