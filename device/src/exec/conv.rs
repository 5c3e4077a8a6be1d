//! 2-D convolution (NCHW) as im2col + one GEMM per image and group.
//!
//! The ViT patch embedding (kernel = stride, no padding) goes through the same path: its
//! im2col is a plain patch gather and the GEMM is `[O, C·KH·KW] × [C·KH·KW, patches]`.
//! A 1×1, stride-1, unpadded convolution skips im2col and reads the input directly.

use super::Ctx;
use super::matmul::{Strides, gemm_f32};

/// A planned convolution.
#[derive(Clone, Debug)]
pub(crate) struct ConvPlan {
    batch: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    strides: [usize; 2],
    pads: [usize; 4],
    dil: [usize; 2],
    group: usize,
}

impl ConvPlan {
    /// Plans the convolution; `None` when the shapes do not agree with the attributes.
    pub fn new(
        x: &[usize],
        weight: &[usize],
        out: &[usize],
        strides: [usize; 2],
        pads: [usize; 4],
        dil: [usize; 2],
        group: usize,
    ) -> Option<Self> {
        let (&[batch, c, h, w], &[o, cg, kh, kw], &[ob, oo, oh, ow]) = (x, weight, out) else {
            return None;
        };
        if group == 0
            || strides.contains(&0)
            || dil.contains(&0)
            || c % group != 0
            || o % group != 0
        {
            return None;
        }
        if cg != c / group || ob != batch || oo != o || kh == 0 || kw == 0 {
            return None;
        }
        let span = |k: usize, d: usize| (k - 1) * d + 1;
        let (ph, pw) = (h + pads[0] + pads[2], w + pads[1] + pads[3]);
        if ph < span(kh, dil[0]) || pw < span(kw, dil[1]) {
            return None;
        }
        let eh = (ph - span(kh, dil[0])) / strides[0] + 1;
        let ew = (pw - span(kw, dil[1])) / strides[1] + 1;
        if (eh, ew) != (oh, ow) {
            return None;
        }
        Some(ConvPlan {
            batch,
            c,
            h,
            w,
            o,
            kh,
            kw,
            oh,
            ow,
            strides,
            pads,
            dil,
            group,
        })
    }

    fn direct(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.strides == [1, 1] && self.pads == [0; 4]
    }

    /// Scratch elements the im2col buffer needs.
    pub fn scratch_len(&self) -> usize {
        if self.direct() {
            0
        } else {
            (self.c / self.group) * self.kh * self.kw * self.oh * self.ow
        }
    }

    /// Runs the convolution; slice lengths were checked at plan time.
    pub fn run(
        &self,
        ctx: &Ctx,
        x: &[f32],
        wt: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
        cols: &mut [f32],
    ) {
        let cg = self.c / self.group;
        let og = self.o / self.group;
        let kk = cg * self.kh * self.kw;
        let p = self.oh * self.ow;
        let hw = self.h * self.w;
        if p == 0 {
            return;
        }
        for b in 0..self.batch {
            for g in 0..self.group {
                let x_off = (b * self.c + g * cg) * hw;
                let dst = &mut out[(b * self.o + g * og) * p..(b * self.o + (g + 1) * og) * p];
                if let Some(bias) = bias {
                    for (row, &v) in dst.chunks_exact_mut(p).zip(&bias[g * og..(g + 1) * og]) {
                        row.fill(v);
                    }
                }
                let src: &[f32] = if self.direct() {
                    &x[x_off..x_off + cg * hw]
                } else {
                    self.im2col(&x[x_off..x_off + cg * hw], &mut cols[..kk * p]);
                    &cols[..kk * p]
                };
                let w = &wt[g * og * kk..(g + 1) * og * kk];
                ctx.maybe_parallel(|par| {
                    gemm_f32(
                        (og, p, kk),
                        dst,
                        p,
                        w,
                        Strides { rs: kk, cs: 1 },
                        src,
                        Strides { rs: p, cs: 1 },
                        bias.is_some(),
                        par,
                    )
                });
            }
        }
    }

    /// `cols[(c·KH + i)·KW + j][oh·OW + ow] = x[c][oh·sh + i·dh − top][ow·sw + j·dw − left]`, 0 outside.
    fn im2col(&self, x: &[f32], cols: &mut [f32]) {
        let cg = self.c / self.group;
        let p = self.oh * self.ow;
        let [sh, sw] = self.strides;
        let [dh, dw] = self.dil;
        let (top, left) = (self.pads[0], self.pads[1]);
        let mut rows = cols.chunks_exact_mut(p);
        for c in 0..cg {
            let plane = &x[c * self.h * self.w..(c + 1) * self.h * self.w];
            for i in 0..self.kh {
                for j in 0..self.kw {
                    let Some(row) = rows.next() else { return };
                    for (oh, orow) in row.chunks_exact_mut(self.ow).enumerate() {
                        let ih = (oh * sh + i * dh).wrapping_sub(top);
                        if ih >= self.h {
                            orow.fill(0.0);
                            continue;
                        }
                        let line = &plane[ih * self.w..(ih + 1) * self.w];
                        for (ow, v) in orow.iter_mut().enumerate() {
                            let iw = (ow * sw + j * dw).wrapping_sub(left);
                            *v = if iw < self.w { line[iw] } else { 0.0 };
                        }
                    }
                }
            }
        }
    }
}
