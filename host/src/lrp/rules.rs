//! One backward rule per op, in the "input × modified gradient" form of AttnLRP/LXT: each rule
//! maps the modified gradient `g` of a node's output to modified gradients of its inputs, and the
//! relevance of any value `v` is `v ⊙ g_v`. Written this way, every rule below is the explicit
//! LRP rule it names (the ε-rule's `R/(z+ε)` becomes `g·z/(z+ε)`), and no rule divides by a
//! pre-activation that can vanish, except the identity rule, which guards it.

use super::derivative;
use super::index::{broadcast_map, source_map};
use super::{AttnRule, LrpOptions};
use anyhow::{Result, bail, ensure};
use qvit_device::exec::{Strides, gemm_f32};
use qvit_device::graph::{BinaryOp, Node, ReduceOp};
use qvit_device::{Graph, Op, ValueId};

/// What a rule may read: forward values, which values depend on the input, and the options.
pub struct Ctx<'a> {
    /// The graph.
    pub graph: &'a Graph,
    /// Forward data of every value the pass has seen (inputs, node outputs); constants are read
    /// from the graph.
    pub values: &'a [Option<Vec<f32>>],
    /// Whether each value depends on a graph input (only those receive relevance).
    pub live: &'a [bool],
    /// Rule options.
    pub opts: &'a LrpOptions,
}

impl Ctx<'_> {
    fn val(&self, id: ValueId) -> Result<&[f32]> {
        if let Some(d) = self.graph.const_data(id) {
            return Ok(d);
        }
        match &self.values[id as usize] {
            Some(d) => Ok(d),
            None => bail!(
                "value {} has no forward data",
                self.graph.values[id as usize].name
            ),
        }
    }

    fn shape(&self, id: ValueId) -> &[usize] {
        self.graph.shape(id)
    }

    fn live(&self, id: ValueId) -> bool {
        self.live[id as usize]
    }

    /// ε of the ε-rule; 0 for the plain gradient.
    fn eps(&self) -> f32 {
        if self.opts.gradient {
            0.0
        } else {
            self.opts.eps
        }
    }
}

/// Gradient contributions of one node to each of its inputs (`None`: the input gets none).
pub type Grads = Vec<Option<Vec<f32>>>;

/// Gradients of the two operands of a product.
type Pair = (Option<Vec<f32>>, Option<Vec<f32>>);

/// The rule of `node` applied to the modified gradient `g` of its output. Fails for an op (or an
/// op's use) that has no rule, so relevance is never passed through silently.
pub fn backward(cx: &Ctx, node: &Node, g: &[f32], attn_probs: bool) -> Result<Grads> {
    let ins = &node.inputs;
    let y = cx.val(node.output)?;
    let mut out: Grads = vec![None; ins.len()];
    match &node.op {
        Op::Linear => {
            let w = cx.val(ins[1])?.to_vec();
            out[0] = Some(linear(cx, ins[0], &w, y, g));
        }
        Op::QLinear { .. } => {
            let w = dequantized(cx.graph, ins[1], ins[2])?;
            out[0] = Some(linear(cx, ins[0], &w, y, g));
        }
        Op::Conv2d {
            strides,
            pads,
            dilations,
            group,
        } => {
            let conv = ConvGeom {
                x: cx.shape(ins[0]).to_vec(),
                w: cx.shape(ins[1]).to_vec(),
                y: cx.shape(node.output).to_vec(),
                strides: *strides,
                pads: *pads,
                dilations: *dilations,
                group: *group,
            };
            let q = stabilised(g, y, cx.eps());
            out[0] = Some(conv.backward(cx.val(ins[1])?, &q)?);
        }
        Op::MatMul { transpose_b } | Op::QMatMul { transpose_b, .. } => {
            let (la, lb) = (cx.live(ins[0]), cx.live(ins[1]));
            // AttnLRP's uniform rule halves the ε-rule between two activations (their product
            // would otherwise count the relevance twice); CP-LRP stops it at the probabilities.
            let (fa, fb) = match (la && lb, attn_probs, cx.opts.attn) {
                _ if cx.opts.gradient => (1.0, 1.0),
                (true, true, AttnRule::Cp) => (0.0, 1.0),
                (true, _, _) => (0.5, 0.5),
                _ => (1.0, 1.0),
            };
            let (ga, gb) = matmul(cx, ins[0], ins[1], *transpose_b, node.output, g, fa, fb)?;
            out[0] = ga.filter(|_| la && fa != 0.0);
            out[1] = gb.filter(|_| lb && fb != 0.0);
        }
        Op::LayerNorm { eps } => {
            let (x, gamma) = (cx.val(ins[0])?, cx.val(ins[1])?);
            out[0] = Some(layer_norm(x, gamma, *eps, g, cx.opts.gradient));
        }
        Op::Gelu(_) | Op::Relu | Op::Unary(_) if cx.opts.gradient => {
            let x = cx.val(ins[0])?;
            let d = |i: usize| derivative::elementwise(&node.op, x[i], y[i]).unwrap_or(0.0);
            out[0] = Some((0..g.len()).map(|i| g[i] * d(i)).collect());
        }
        Op::Gelu(_) | Op::Relu | Op::Unary(_) => {
            out[0] = Some(identity(cx.val(ins[0])?, y, g));
        }
        Op::Softmax { axis } => {
            out[0] = Some(softmax(cx.shape(node.output), *axis, y, g));
        }
        Op::Binary(op) => binary(cx, node, *op, y, g, &mut out)?,
        Op::Reduce { op, axes: _ } => {
            out[0] = Some(reduce(cx, node, *op, y, g)?);
        }
        Op::Reshape
        | Op::Transpose { .. }
        | Op::Concat { .. }
        | Op::Slice { .. }
        | Op::Gather { .. }
        | Op::Broadcast
        | Op::Pad { .. } => {
            let shapes: Vec<&[usize]> = ins.iter().map(|&i| cx.shape(i)).collect();
            let map = source_map(&node.op, &shapes, cx.shape(node.output))?;
            let mut gs: Vec<Vec<f32>> = shapes
                .iter()
                .map(|s| vec![0.0; s.iter().product()])
                .collect();
            for (o, src) in map.into_iter().enumerate() {
                if let Some((k, f)) = src {
                    gs[k][f] += g[o];
                }
            }
            for (k, gk) in gs.into_iter().enumerate() {
                out[k] = Some(gk);
            }
        }
    }
    Ok(out)
}

/// Refuses, before any pass, a graph that uses an op in a way no rule covers (so relevance is
/// never passed through silently). The match is exhaustive: a new op fails to compile here
/// until it has a rule.
pub fn check(g: &Graph, live: &[bool]) -> Result<()> {
    for n in &g.nodes {
        let ok = match &n.op {
            Op::Binary(BinaryOp::Pow) => !live[n.inputs[1] as usize],
            Op::Conv2d { .. } => g.shape(n.inputs[0]).len() == 4,
            Op::QLinear { .. } => g.int_data(n.inputs[1]).is_some(),
            Op::Linear | Op::MatMul { .. } | Op::QMatMul { .. } => true,
            Op::LayerNorm { .. } | Op::Gelu(_) | Op::Relu | Op::Softmax { .. } => true,
            Op::Binary(_) | Op::Unary(_) | Op::Reduce { .. } => true,
            Op::Reshape | Op::Transpose { .. } | Op::Concat { .. } | Op::Slice { .. } => true,
            Op::Gather { .. } | Op::Broadcast | Op::Pad { .. } => true,
        };
        ensure!(
            ok,
            "no relevance rule for node {} ({:?} with these inputs)",
            n.name,
            n.op
        );
    }
    Ok(())
}

/// `g·z/(z + ε·sign z)`: the ε-rule's stabiliser in gradient form (`g` itself when ε = 0).
fn stabilised(g: &[f32], z: &[f32], eps: f32) -> Vec<f32> {
    if eps == 0.0 {
        return g.to_vec();
    }
    g.iter()
        .zip(z)
        .map(|(&g, &z)| {
            let d = z + eps.copysign(z);
            if d == 0.0 { 0.0 } else { g * z / d }
        })
        .collect()
}

/// ε-rule of `y = x·Wᵀ + b`: `g_x = (g·y/(y+ε))·W`; the bias keeps its share.
fn linear(cx: &Ctx, x: ValueId, w: &[f32], y: &[f32], g: &[f32]) -> Vec<f32> {
    let k = *cx.shape(x).last().unwrap_or(&1);
    let n = w.len() / k.max(1);
    let m = y.len() / n.max(1);
    let q = stabilised(g, y, cx.eps());
    let mut gx = vec![0.0; m * k];
    gemm_f32(
        (m, k, n),
        &mut gx,
        k,
        &q,
        Strides { rs: n, cs: 1 },
        w,
        Strides { rs: k, cs: 1 },
        false,
        true,
    );
    gx
}

/// `mean(W²)·‖g_yᵀx‖²` of a Linear or QLinear (0 for other ops): the first-order variance of
/// the seeded output under independent weight noise of relative power 1, since
/// `∂f/∂W = g_yᵀx`.
pub fn weight_noise(cx: &Ctx, node: &Node, gy: &[f32]) -> Result<f64> {
    let w = match node.op {
        Op::Linear => cx.val(node.inputs[1])?.to_vec(),
        Op::QLinear { .. } => dequantized(cx.graph, node.inputs[1], node.inputs[2])?,
        _ => return Ok(0.0),
    };
    let x = cx.val(node.inputs[0])?;
    let k = *cx.shape(node.inputs[0]).last().unwrap_or(&1);
    let n = w.len() / k.max(1);
    let m = x.len() / k.max(1);
    let mut gw = vec![0.0f32; n * k];
    // g_yᵀ[N,M]·x[M,K]
    gemm_f32(
        (n, k, m),
        &mut gw,
        k,
        gy,
        Strides { rs: 1, cs: n },
        x,
        Strides { rs: k, cs: 1 },
        false,
        true,
    );
    let energy: f64 = gw.iter().map(|&v| (v as f64).powi(2)).sum();
    let power = w.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / w.len().max(1) as f64;
    Ok(power * energy)
}

/// The f32 weight `[N, K]` of a QLinear: integer levels times the channel scales.
fn dequantized(g: &Graph, w: ValueId, scales: ValueId) -> Result<Vec<f32>> {
    let (Some(q), Some(s)) = (g.int_data(w), g.const_data(scales)) else {
        bail!("QLinear weight must be an integer constant with constant scales");
    };
    let k = g.shape(w).get(1).copied().unwrap_or(1).max(1);
    ensure!(
        q.data.len() == s.len() * k,
        "QLinear weight and scales disagree"
    );
    Ok(q.data
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f32 * s[i / k])
        .collect())
}

/// Product of two (batched, broadcast) operands: ε-rule, then `fa`, `fb` of it to each side.
#[allow(clippy::too_many_arguments)]
fn matmul(
    cx: &Ctx,
    a: ValueId,
    b: ValueId,
    transpose_b: bool,
    out: ValueId,
    g: &[f32],
    fa: f32,
    fb: f32,
) -> Result<Pair> {
    let (sa, sb, so) = (cx.shape(a), cx.shape(b), cx.shape(out));
    ensure!(
        sa.len() >= 2 && sb.len() >= 2 && so.len() >= 2,
        "MatMul needs matrices"
    );
    let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let n = so[so.len() - 1];
    let batch = &so[..so.len() - 2];
    let amap = broadcast_map(&sa[..sa.len() - 2], batch)?;
    let bmap = broadcast_map(&sb[..sb.len() - 2], batch)?;
    let (av, bv) = (cx.val(a)?, cx.val(b)?);
    let q = stabilised(g, cx.val(out)?, cx.eps());
    let mut ga = vec![0.0; av.len()];
    let mut gb = vec![0.0; bv.len()];
    // b as [K, N]: strides of the stored layout.
    let bs = if transpose_b {
        Strides { rs: 1, cs: k }
    } else {
        Strides { rs: n, cs: 1 }
    };
    for (o, (&ia, &ib)) in amap.iter().zip(&bmap).enumerate() {
        let qo: Vec<f32> = q[o * m * n..(o + 1) * m * n].to_vec();
        let (ao, bo) = (ia * m * k, ib * k * n);
        if fa != 0.0 {
            let qa: Vec<f32> = qo.iter().map(|v| v * fa).collect();
            // g_a[M,K] += q[M,N]·bᵀ[N,K]
            gemm_f32(
                (m, k, n),
                &mut ga[ao..ao + m * k],
                k,
                &qa,
                Strides { rs: n, cs: 1 },
                &bv[bo..bo + k * n],
                Strides {
                    rs: bs.cs,
                    cs: bs.rs,
                },
                true,
                true,
            );
        }
        if fb != 0.0 {
            let qb: Vec<f32> = qo.iter().map(|v| v * fb).collect();
            let av_o = &av[ao..ao + m * k];
            if transpose_b {
                // g_b[N,K] += qᵀ[N,M]·a[M,K]
                gemm_f32(
                    (n, k, m),
                    &mut gb[bo..bo + k * n],
                    k,
                    &qb,
                    Strides { rs: 1, cs: n },
                    av_o,
                    Strides { rs: k, cs: 1 },
                    true,
                    true,
                );
            } else {
                // g_b[K,N] += aᵀ[K,M]·q[M,N]
                gemm_f32(
                    (k, n, m),
                    &mut gb[bo..bo + k * n],
                    n,
                    av_o,
                    Strides { rs: 1, cs: k },
                    &qb,
                    Strides { rs: n, cs: 1 },
                    true,
                    true,
                );
            }
        }
    }
    Ok((Some(ga), Some(gb)))
}

/// LayerNorm with the standard deviation held constant (AttnLRP): linear in `x`, so the
/// gradient of `γ·(x − μ)/σ` with σ fixed; β keeps its share. With `exact`, σ's own gradient
/// is included (the plain gradient).
fn layer_norm(x: &[f32], gamma: &[f32], eps: f32, g: &[f32], exact: bool) -> Vec<f32> {
    let c = gamma.len().max(1);
    let mut gx = vec![0.0; x.len()];
    for ((xr, gr), out) in x.chunks(c).zip(g.chunks(c)).zip(gx.chunks_mut(c)) {
        let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
        let sigma = (var + eps as f64).sqrt();
        let h: Vec<f64> = gr
            .iter()
            .zip(gamma)
            .map(|(&g, &w)| g as f64 * w as f64)
            .collect();
        let hm = h.iter().sum::<f64>() / c as f64;
        // d/dx of 1/σ contributes −x̂·mean(h·x̂)/σ, x̂ = (x − μ)/σ.
        let hx = if exact {
            h.iter()
                .zip(xr)
                .map(|(hv, &v)| hv * (v as f64 - mean) / sigma)
                .sum::<f64>()
                / c as f64
        } else {
            0.0
        };
        for ((o, hv), &v) in out.iter_mut().zip(h).zip(xr) {
            *o = ((hv - hm - (v as f64 - mean) / sigma * hx) / sigma) as f32;
        }
    }
    gx
}

/// Identity rule of an element-wise nonlinearity: all relevance passes, `R_x = R_y`, i.e.
/// `g_x = g·f(x)/x`. Where `x` is 0 its relevance is 0 whatever `g_x` is, so 0 is used.
fn identity(x: &[f32], y: &[f32], g: &[f32]) -> Vec<f32> {
    x.iter()
        .zip(y)
        .zip(g)
        .map(|((&x, &y), &g)| if x.abs() > 1e-30 { g * y / x } else { 0.0 })
        .collect()
}

/// AttnLRP's softmax rule (Deep Taylor with bias): `R_x = x ⊙ (R_y − s·ΣR_y)`, which in
/// gradient form is the softmax's own JVP.
fn softmax(shape: &[usize], axis: usize, s: &[f32], g: &[f32]) -> Vec<f32> {
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut gx = vec![0.0; s.len()];
    for base in 0..s.len() / (len * inner).max(1) {
        for j in 0..inner {
            let at = |i: usize| base * len * inner + i * inner + j;
            let dot: f64 = (0..len).map(|i| s[at(i)] as f64 * g[at(i)] as f64).sum();
            for i in 0..len {
                gx[at(i)] = (s[at(i)] as f64 * (g[at(i)] as f64 - dot)) as f32;
            }
        }
    }
    gx
}

/// Sums an output-shaped gradient back onto an operand of shape `to` (undoing broadcasting).
fn unbroadcast(v: &[f32], from: &[usize], out: &[usize]) -> Result<Vec<f32>> {
    let map = broadcast_map(from, out)?;
    let mut r = vec![0.0; from.iter().product()];
    for (o, &i) in map.iter().enumerate() {
        r[i] += v[o];
    }
    Ok(r)
}

/// Element-wise binary ops: sums split by contribution (z-rule, exact for addition), products
/// of two activations by the uniform rule, denominators held constant (as LayerNorm's σ).
fn binary(
    cx: &Ctx,
    node: &Node,
    op: BinaryOp,
    y: &[f32],
    g: &[f32],
    out: &mut Grads,
) -> Result<()> {
    let (a, b) = (node.inputs[0], node.inputs[1]);
    let so = cx.shape(node.output);
    let (la, lb) = (cx.live(a), cx.live(b));
    let (av, bv) = (cx.val(a)?, cx.val(b)?);
    let amap = broadcast_map(cx.shape(a), so)?;
    let bmap = broadcast_map(cx.shape(b), so)?;
    let ab = |o: usize| (av[amap[o]], bv[bmap[o]]);
    let per = |f: &dyn Fn(usize) -> f32| (0..g.len()).map(f).collect::<Vec<f32>>();
    // Identity rule on whichever operand is live, for element-wise nonlinear maps.
    let ident = |of_a: bool| {
        per(&|o| {
            let x = if of_a { ab(o).0 } else { ab(o).1 };
            if x.abs() > 1e-30 {
                g[o] * y[o] / x
            } else {
                0.0
            }
        })
    };
    let exact = cx.opts.gradient;
    let (ga, gb): Pair = match op {
        BinaryOp::Mul if exact => (
            Some(per(&|o| g[o] * ab(o).1)),
            Some(per(&|o| g[o] * ab(o).0)),
        ),
        BinaryOp::Div if exact => (
            Some(per(&|o| g[o] / ab(o).1)),
            Some(per(&|o| -g[o] * y[o] / ab(o).1)),
        ),
        BinaryOp::Pow if exact && !lb => (
            Some(per(&|o| {
                let (a, b) = ab(o);
                let d = b * a.powf(b - 1.0);
                if d.is_finite() { g[o] * d } else { 0.0 }
            })),
            None,
        ),
        BinaryOp::Max | BinaryOp::Min if exact => {
            let pick_a = |o: usize| ab(o).0 == y[o];
            (
                Some(per(&|o| if pick_a(o) { g[o] } else { 0.0 })),
                Some(per(&|o| if pick_a(o) { 0.0 } else { g[o] })),
            )
        }
        BinaryOp::Add => (Some(g.to_vec()), Some(g.to_vec())),
        BinaryOp::Sub => (Some(g.to_vec()), Some(per(&|o| -g[o]))),
        BinaryOp::Mul => {
            let f = if la && lb { 0.5 } else { 1.0 };
            (
                Some(per(&|o| f * g[o] * ab(o).1)),
                Some(per(&|o| f * g[o] * ab(o).0)),
            )
        }
        BinaryOp::Div if la => (Some(per(&|o| g[o] / ab(o).1)), None),
        BinaryOp::Div => (None, Some(ident(false))),
        BinaryOp::Pow if !lb => (Some(ident(true)), None),
        BinaryOp::Pow => bail!(
            "no relevance rule for {} (Pow with a computed exponent)",
            node.name
        ),
        BinaryOp::Max | BinaryOp::Min if la && lb => {
            let pick_a = |o: usize| ab(o).0 == y[o];
            (
                Some(per(&|o| if pick_a(o) { g[o] } else { 0.0 })),
                Some(per(&|o| if pick_a(o) { 0.0 } else { g[o] })),
            )
        }
        BinaryOp::Max | BinaryOp::Min => (Some(ident(true)), Some(ident(false))),
    };
    if la && let Some(v) = ga {
        out[0] = Some(unbroadcast(&v, cx.shape(a), so)?);
    }
    if lb && let Some(v) = gb {
        out[1] = Some(unbroadcast(&v, cx.shape(b), so)?);
    }
    Ok(())
}

/// Reductions: sums and means split by contribution, mean of squares by the uniform rule on
/// `x·x`, max and min to the first winning element.
fn reduce(cx: &Ctx, node: &Node, op: ReduceOp, y: &[f32], g: &[f32]) -> Result<Vec<f32>> {
    let x = cx.val(node.inputs[0])?;
    let map = broadcast_map(cx.shape(node.output), cx.shape(node.inputs[0]))?;
    let n = (x.len() / y.len().max(1)).max(1) as f32;
    let mut taken = vec![false; y.len()];
    Ok(map
        .iter()
        .enumerate()
        .map(|(i, &o)| match op {
            ReduceOp::Sum => g[o],
            ReduceOp::Mean => g[o] / n,
            ReduceOp::MeanOfSquares => g[o] * x[i] / n * if cx.opts.gradient { 2.0 } else { 1.0 },
            ReduceOp::Max | ReduceOp::Min => {
                if !taken[o] && x[i] == y[o] {
                    taken[o] = true;
                    g[o]
                } else {
                    0.0
                }
            }
        })
        .collect())
}

/// Shapes and geometry of a Conv2d, NCHW.
struct ConvGeom {
    x: Vec<usize>,
    w: Vec<usize>,
    y: Vec<usize>,
    strides: [usize; 2],
    pads: [usize; 4],
    dilations: [usize; 2],
    group: usize,
}

impl ConvGeom {
    /// ε-rule through the convolution: `g_x` is the transposed convolution of the stabilised
    /// output gradient `q` with the weights.
    fn backward(&self, w: &[f32], q: &[f32]) -> Result<Vec<f32>> {
        ensure!(
            self.x.len() == 4 && self.w.len() == 4 && self.y.len() == 4 && self.group > 0,
            "Conv2d relevance needs NCHW tensors"
        );
        let [bn, c, h, wd] = [self.x[0], self.x[1], self.x[2], self.x[3]];
        let [o, cg, kh, kw] = [self.w[0], self.w[1], self.w[2], self.w[3]];
        let [oh, ow] = [self.y[2], self.y[3]];
        let og = o / self.group;
        let mut gx = vec![0.0f32; bn * c * h * wd];
        for b in 0..bn {
            for oc in 0..o {
                let grp = oc / og.max(1);
                for (py, px) in (0..oh).flat_map(|py| (0..ow).map(move |px| (py, px))) {
                    let qv = q[((b * o + oc) * oh + py) * ow + px];
                    if qv == 0.0 {
                        continue;
                    }
                    for ci in 0..cg {
                        let ic = grp * cg + ci;
                        for ky in 0..kh {
                            let iy = (py * self.strides[0] + ky * self.dilations[0])
                                .checked_sub(self.pads[0]);
                            let Some(iy) = iy.filter(|&v| v < h) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let ix = (px * self.strides[1] + kx * self.dilations[1])
                                    .checked_sub(self.pads[1]);
                                let Some(ix) = ix.filter(|&v| v < wd) else {
                                    continue;
                                };
                                gx[((b * c + ic) * h + iy) * wd + ix] +=
                                    qv * w[((oc * cg + ci) * kh + ky) * kw + kx];
                            }
                        }
                    }
                }
            }
        }
        Ok(gx)
    }
}
