//! An integer operand written directly by its producer: the consumer's quantizer, the level
//! offset the consumer's kernel expects, the constant factors of `Mul` nodes in between, and
//! the [`RowMap`] from producer elements to the operand's layout. Producers hand over rows of
//! f32 results; a sink quantizes them exactly as the consumer would have (same levels, same
//! order of multiplications) and stores the bytes where the consumer reads them.

use super::chain::RowMap;
use crate::exec::quantized::levels_into;
use crate::quant::ActQuant;
use qvit_kernels::KernelSet;

/// A contiguous stretch of producer columns whose destinations are contiguous too.
#[derive(Clone, Copy, Debug)]
struct Run {
    col: usize,
    len: usize,
    dst: usize,
}

/// How a sink walks its producer's rows.
#[derive(Clone, Debug)]
enum Walk {
    /// Column runs of each row land contiguously (a row-major operand).
    Rows(Vec<Run>),
    /// Consecutive rows of a column land contiguously (a transposed operand): `(column,
    /// destination)` pairs.
    Cols(Vec<(usize, usize)>),
    /// Anything else, element by element: `(column, destination)` pairs.
    Elements(Vec<(usize, usize)>),
}

/// See the module doc.
#[derive(Clone, Debug)]
pub(crate) struct Sink {
    /// Integer buffer (index into the executor's integer arena).
    pub buf: usize,
    /// Elements of the operand.
    pub len: usize,
    act: ActQuant,
    offset: i32,
    factors: Vec<f32>,
    base: Vec<usize>,
    row_stride: usize,
    walk: Walk,
}

/// A destination several threads write at disjoint positions: different producer rows land in
/// different places ([`RowMap::new`] accepts only maps that read every element once), and row
/// blocks are handed to one thread each.
pub(crate) struct Shared<T> {
    ptr: *mut T,
    len: usize,
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Shared<T> {}

// SAFETY: writes through it go to positions that differ between the row blocks handed to
// different threads (see the type's doc), and the buffer outlives the parallel section.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    pub fn new(buf: &mut [T]) -> Shared<T> {
        Shared {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        }
    }

    /// `len` elements from `start`; panics (never UB) when out of bounds.
    ///
    /// # Safety
    /// No other live reference covers these elements (callers write disjoint ranges).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start.checked_add(len).is_some_and(|e| e <= self.len));
        // SAFETY: in bounds (checked above); exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

impl Sink {
    /// A sink for an operand of `len` elements quantized by `act` (+ `offset`), reached
    /// through `Mul` factors `factors`, laid out by `map`.
    pub fn new(len: usize, act: ActQuant, offset: i32, factors: Vec<f32>, map: RowMap) -> Sink {
        let cols: Vec<(usize, usize)> = map
            .col
            .iter()
            .enumerate()
            .filter_map(|(c, d)| d.map(|d| (c, d)))
            .collect();
        let mut runs: Vec<Run> = Vec::new();
        for &(c, d) in &cols {
            match runs.last_mut() {
                Some(r) if r.col + r.len == c && r.dst + r.len == d => r.len += 1,
                _ => runs.push(Run {
                    col: c,
                    len: 1,
                    dst: d,
                }),
            }
        }
        let walk = if runs.iter().all(|r| r.len >= 8) {
            Walk::Rows(runs)
        } else if map.row_stride == 1 {
            Walk::Cols(cols)
        } else {
            Walk::Elements(cols)
        };
        Sink {
            buf: usize::MAX,
            len,
            act,
            offset,
            factors,
            base: map.base,
            row_stride: map.row_stride,
            walk,
        }
    }

    /// Quantizes rows `r0..` of batch `b` of the producer (`y`: whole rows of `cols` values)
    /// into `dst`. `tmp` and `tq` are scratch.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &self,
        ks: &KernelSet,
        y: &[f32],
        cols: usize,
        b: usize,
        r0: usize,
        dst: Shared<i8>,
        tmp: &mut Vec<f32>,
        tq: &mut Vec<i8>,
    ) -> qvit_kernels::Result<()> {
        let rows = y.len() / cols.max(1);
        let scale = |t: &mut [f32]| {
            for &f in &self.factors {
                for v in t.iter_mut() {
                    *v *= f;
                }
            }
        };
        let row_at = |r: usize| self.base[b] + (r0 + r) * self.row_stride;
        match &self.walk {
            Walk::Rows(runs) => {
                for (r, row) in y.chunks_exact(cols).enumerate() {
                    for run in runs {
                        let src = &row[run.col..run.col + run.len];
                        let src = if self.factors.is_empty() {
                            src
                        } else {
                            tmp.clear();
                            tmp.extend_from_slice(src);
                            scale(tmp);
                            &tmp[..]
                        };
                        // SAFETY: these bytes belong to this producer row only (see `Shared`).
                        let out = unsafe { dst.slice(row_at(r) + run.dst, run.len) };
                        levels_into(ks, &self.act, src, self.offset, out)?;
                    }
                }
            }
            Walk::Cols(cols_dst) => {
                for &(c, d) in cols_dst {
                    tmp.clear();
                    tmp.extend(y.chunks_exact(cols).map(|row| row[c]));
                    scale(tmp);
                    // SAFETY: rows r0..r0+rows of column c belong to this row block only.
                    let out = unsafe { dst.slice(row_at(0) + d, rows) };
                    levels_into(ks, &self.act, tmp, self.offset, out)?;
                }
            }
            Walk::Elements(cols_dst) => {
                tq.clear();
                tq.resize(1, 0);
                for (r, row) in y.chunks_exact(cols).enumerate() {
                    for &(c, d) in cols_dst {
                        tmp.clear();
                        tmp.push(row[c]);
                        scale(tmp);
                        levels_into(ks, &self.act, tmp, self.offset, tq)?;
                        // SAFETY: this element belongs to this producer row only.
                        let out = unsafe { dst.slice(row_at(r) + d, 1) };
                        out[0] = tq[0];
                    }
                }
            }
        }
        Ok(())
    }
}
