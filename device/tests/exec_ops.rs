//! Every executor op against a naive f64 implementation over multi-indices, on
//! proptest-generated shapes (rank 0..5, size-1 axes, scalars, odd sizes).

mod exec_util;

use exec_util::*;
use proptest::prelude::*;
use qvit_device::Tensor;
use qvit_device::graph::{BinaryOp, GeluKind, Op, ReduceOp, UnaryOp};

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    }
}

/// A shape of rank 0..=5 with dims 1..=5.
fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=5, 0..=5)
}

/// An output shape and two operand shapes broadcastable to it (trailing-aligned, some axes 1,
/// some leading axes dropped).
fn bcast_shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    shape().prop_flat_map(|out| {
        let r = out.len();
        let operand = move |out: Vec<usize>| {
            (0..=r, prop::collection::vec(any::<bool>(), r)).prop_map(move |(drop, ones)| {
                out.iter()
                    .zip(&ones)
                    .skip(drop)
                    .map(|(&d, &one)| if one { 1 } else { d })
                    .collect::<Vec<_>>()
            })
        };
        (Just(out.clone()), operand(out.clone()), operand(out))
    })
}

/// A naive f64 version of an element-wise op.
type Reference = fn(f64) -> f64;

fn binary_ref(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
    }
}

const BINARY: [BinaryOp; 7] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Pow,
    BinaryOp::Max,
    BinaryOp::Min,
];

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn binary_broadcasts((out, sa, sb) in bcast_shapes(), which in 0usize..7, seed in any::<u64>(), a_const in any::<bool>()) {
        let op = BINARY[which];
        let na: usize = sa.iter().product();
        let nb: usize = sb.iter().product();
        // Positive operands keep Pow and Div well defined.
        let a = rand_vec(na, seed, 0.5, 2.0);
        let b = rand_vec(nb, seed ^ 1, 0.5, 2.0);
        let mut g = Builder::default();
        let ia = if a_const { g.konst(&sa, a.clone()) } else { g.input(&sa) };
        let ib = g.input(&sb);
        let y = g.node(Op::Binary(op), &[ia, ib], &out);
        g.output(y);
        let mut ins = Vec::new();
        if !a_const { ins.push(Tensor::new(sa.clone(), a.clone()).unwrap()); }
        ins.push(Tensor::new(sb.clone(), b.clone()).unwrap());
        let got = run1(g.g, &ins);
        let (a64, b64) = (to64(&a), to64(&b));
        let want: Vec<f64> = indices(&out).iter().map(|i| binary_ref(op, bcast_get(&a64, &sa, i), bcast_get(&b64, &sb, i))).collect();
        prop_assert_eq!(&got.shape, &out);
        assert_close(&got.data, &want, 1e-6, 2e-6, &format!("{op:?} {sa:?} {sb:?} -> {out:?}"));
    }

    #[test]
    fn broadcast_op((out, sa, _) in bcast_shapes(), seed in any::<u64>()) {
        let a = rand_vec(sa.iter().product(), seed, -1.0, 1.0);
        let mut g = Builder::default();
        let x = g.input(&sa);
        let y = g.node(Op::Broadcast, &[x], &out);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(sa.clone(), a.clone()).unwrap()]);
        let a64 = to64(&a);
        let want: Vec<f64> = indices(&out).iter().map(|i| bcast_get(&a64, &sa, i)).collect();
        assert_close(&got.data, &want, 0.0, 0.0, "broadcast");
    }

    #[test]
    fn unary_ops(s in shape(), which in 0usize..12, seed in any::<u64>()) {
        let x = rand_vec(s.iter().product(), seed, 0.1, 3.0);
        // Odd ops also see negative inputs where they are defined there.
        let signed = !matches!(which, 0 | 1 | 2 | 10);
        let x: Vec<f32> = x.iter().enumerate().map(|(i, &v)| if signed && i % 2 == 1 { -v } else { v }).collect();
        let ops: [(Op, Reference); 12] = [
            (Op::Unary(UnaryOp::Sqrt), f64::sqrt),
            (Op::Unary(UnaryOp::Rsqrt), |v| 1.0 / v.sqrt()),
            (Op::Unary(UnaryOp::Recip), |v| 1.0 / v),
            (Op::Unary(UnaryOp::Exp), f64::exp),
            (Op::Unary(UnaryOp::Erf), erf64),
            (Op::Unary(UnaryOp::Tanh), f64::tanh),
            (Op::Unary(UnaryOp::Sigmoid), |v| 1.0 / (1.0 + (-v).exp())),
            (Op::Unary(UnaryOp::Abs), f64::abs),
            (Op::Unary(UnaryOp::Neg), |v| -v),
            (Op::Unary(UnaryOp::Square), |v| v * v),
            (Op::Unary(UnaryOp::Ln), f64::ln),
            (Op::Relu, |v| v.max(0.0)),
        ];
        let (op, f) = ops[which].clone();
        let mut g = Builder::default();
        let i = g.input(&s);
        let y = g.node(op.clone(), &[i], &s);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(s.clone(), x.clone()).unwrap()]);
        let want: Vec<f64> = x.iter().map(|&v| f(v as f64)).collect();
        assert_close(&got.data, &want, 1e-6, 2e-6, &format!("{op:?}"));
    }

    #[test]
    fn gelu_both_kinds(s in shape(), tanh in any::<bool>(), seed in any::<u64>()) {
        let x = rand_vec(s.iter().product(), seed, -4.0, 4.0);
        let kind = if tanh { GeluKind::Tanh } else { GeluKind::Erf };
        let mut g = Builder::default();
        let i = g.input(&s);
        let y = g.node(Op::Gelu(kind), &[i], &s);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(s.clone(), x.clone()).unwrap()]);
        let k = (2.0 / std::f64::consts::PI).sqrt();
        let want: Vec<f64> = x.iter().map(|&v| {
            let v = v as f64;
            if tanh { 0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh()) } else { 0.5 * v * (1.0 + erf64(v / 2f64.sqrt())) }
        }).collect();
        assert_close(&got.data, &want, 1e-6, 1e-5, "gelu");
    }

    #[test]
    fn reduce_any_axes(s in shape(), mask in prop::collection::vec(any::<bool>(), 5), which in 0usize..5, seed in any::<u64>()) {
        let ops = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min, ReduceOp::MeanOfSquares];
        let op = ops[which];
        let axes: Vec<usize> = (0..s.len()).filter(|&a| mask[a]).collect();
        let out: Vec<usize> = s.iter().enumerate().map(|(a, &d)| if axes.contains(&a) { 1 } else { d }).collect();
        let x = rand_vec(s.iter().product(), seed, -2.0, 2.0);
        let mut g = Builder::default();
        let i = g.input(&s);
        let y = g.node(Op::Reduce { op, axes: axes.clone() }, &[i], &out);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(s.clone(), x.clone()).unwrap()]);
        let mut acc = vec![Vec::new(); out.iter().product()];
        for idx in indices(&s) {
            let o: Vec<usize> = idx.iter().enumerate().map(|(a, &v)| if axes.contains(&a) { 0 } else { v }).collect();
            acc[offset(&out, &o)].push(x[offset(&s, &idx)] as f64);
        }
        let want: Vec<f64> = acc.iter().map(|v| {
            let n = v.len() as f64;
            match op {
                ReduceOp::Sum => v.iter().sum(),
                ReduceOp::Mean => v.iter().sum::<f64>() / n,
                ReduceOp::Max => v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                ReduceOp::Min => v.iter().cloned().fold(f64::INFINITY, f64::min),
                ReduceOp::MeanOfSquares => v.iter().map(|a| a * a).sum::<f64>() / n,
            }
        }).collect();
        assert_close(&got.data, &want, 1e-5, 1e-5, &format!("{op:?} {s:?} {axes:?}"));
    }

    #[test]
    fn transpose_any_perm(s in shape(), keys in prop::collection::vec(any::<u32>(), 5), seed in any::<u64>()) {
        let mut perm: Vec<usize> = (0..s.len()).collect();
        perm.sort_by_key(|&a| keys[a]);
        let out: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
        let x = rand_vec(s.iter().product(), seed, -1.0, 1.0);
        let mut g = Builder::default();
        let i = g.input(&s);
        let y = g.node(Op::Transpose { perm: perm.clone() }, &[i], &out);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(s.clone(), x.clone()).unwrap()]);
        let want: Vec<f64> = indices(&out).iter().map(|o| {
            let mut src = vec![0; s.len()];
            for (k, &p) in perm.iter().enumerate() { src[p] = o[k]; }
            x[offset(&s, &src)] as f64
        }).collect();
        assert_close(&got.data, &want, 0.0, 0.0, &format!("perm {perm:?}"));
    }

    #[test]
    fn slice_with_step(s in prop::collection::vec(1usize..=7, 1..=4), ax in 0usize..4, a in 0usize..7, b in 0usize..8, step in 1usize..4, seed in any::<u64>()) {
        let axis = ax % s.len();
        let start = a % s[axis];
        let end = (start + 1 + b).min(s[axis]);
        let n = (end - start).div_ceil(step);
        let mut out = s.clone();
        out[axis] = n;
        let x = rand_vec(s.iter().product(), seed, -1.0, 1.0);
        let mut g = Builder::default();
        let i = g.input(&s);
        let y = g.node(Op::Slice { axis, start, end, step }, &[i], &out);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(s.clone(), x.clone()).unwrap()]);
        let want: Vec<f64> = indices(&out).iter().map(|o| {
            let mut src = o.clone();
            src[axis] = start + o[axis] * step;
            x[offset(&s, &src)] as f64
        }).collect();
        assert_close(&got.data, &want, 0.0, 0.0, "slice");
    }

    #[test]
    fn concat_along_axis(s in prop::collection::vec(1usize..=4, 1..=4), ax in 0usize..4, sizes in prop::collection::vec(1usize..=3, 1..=3), seed in any::<u64>()) {
        let axis = ax % s.len();
        let mut g = Builder::default();
        let mut ids = Vec::new();
        let mut parts = Vec::new();
        for (k, &d) in sizes.iter().enumerate() {
            let mut sh = s.clone();
            sh[axis] = d;
            let data = rand_vec(sh.iter().product(), seed ^ k as u64, -1.0, 1.0);
            // Mix constants and inputs.
            ids.push(if k % 2 == 0 { g.input(&sh) } else { g.konst(&sh, data.clone()) });
            parts.push((sh, data));
        }
        let mut out = s.clone();
        out[axis] = sizes.iter().sum();
        let y = g.node(Op::Concat { axis }, &ids, &out);
        g.output(y);
        let ins: Vec<Tensor> = parts.iter().enumerate().filter(|(k, _)| k % 2 == 0).map(|(_, (sh, d))| Tensor::new(sh.clone(), d.clone()).unwrap()).collect();
        let got = run1(g.g, &ins);
        let want: Vec<f64> = indices(&out).iter().map(|o| {
            let mut at = o[axis];
            for (sh, d) in &parts {
                if at < sh[axis] {
                    let mut src = o.clone();
                    src[axis] = at;
                    return d[offset(sh, &src)] as f64;
                }
                at -= sh[axis];
            }
            unreachable!()
        }).collect();
        assert_close(&got.data, &want, 0.0, 0.0, "concat");
    }

    #[test]
    fn gather_indices(s in prop::collection::vec(1usize..=5, 1..=4), ax in 0usize..4, ishape in prop::collection::vec(1usize..=3, 0..=2), seed in any::<u64>()) {
        let axis = ax % s.len();
        let n: usize = ishape.iter().product();
        let idx: Vec<usize> = rand_vec(n, seed ^ 7, 0.0, s[axis] as f32).iter().map(|&v| (v as usize).min(s[axis] - 1)).collect();
        let out: Vec<usize> = s[..axis].iter().chain(&ishape).chain(&s[axis + 1..]).copied().collect();
        let x = rand_vec(s.iter().product(), seed, -1.0, 1.0);
        let mut g = Builder::default();
        let i = g.input(&s);
        let y = g.node(Op::Gather { axis, indices: idx.clone(), indices_shape: ishape.clone() }, &[i], &out);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(s.clone(), x.clone()).unwrap()]);
        let r = ishape.len();
        let want: Vec<f64> = indices(&out).iter().map(|o| {
            let j = offset(&ishape, &o[axis..axis + r]);
            let src: Vec<usize> = o[..axis].iter().copied().chain([idx[j]]).chain(o[axis + r..].iter().copied()).collect();
            x[offset(&s, &src)] as f64
        }).collect();
        assert_close(&got.data, &want, 0.0, 0.0, "gather");
    }

    #[test]
    fn pad_constant(s in prop::collection::vec(1usize..=4, 0..=4), p in prop::collection::vec((0usize..3, 0usize..3), 4), seed in any::<u64>()) {
        let pads: Vec<(usize, usize)> = p[..s.len()].to_vec();
        let out: Vec<usize> = s.iter().zip(&pads).map(|(&d, &(b, a))| d + b + a).collect();
        let x = rand_vec(s.iter().product(), seed, -1.0, 1.0);
        let mut g = Builder::default();
        let i = g.input(&s);
        let y = g.node(Op::Pad { pads: pads.clone(), value: 0.25 }, &[i], &out);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(s.clone(), x.clone()).unwrap()]);
        let want: Vec<f64> = indices(&out).iter().map(|o| {
            let src: Option<Vec<usize>> = o.iter().zip(&pads).zip(&s).map(|((&v, &(b, _)), &d)| v.checked_sub(b).filter(|&q| q < d)).collect();
            src.map_or(0.25, |src| x[offset(&s, &src)] as f64)
        }).collect();
        assert_close(&got.data, &want, 0.0, 0.0, "pad");
    }

    #[test]
    fn softmax_any_axis(s in prop::collection::vec(1usize..=6, 1..=4), ax in 0usize..4, seed in any::<u64>()) {
        let axis = ax % s.len();
        let x = rand_vec(s.iter().product(), seed, -5.0, 5.0);
        let mut g = Builder::default();
        let i = g.input(&s);
        let y = g.node(Op::Softmax { axis }, &[i], &s);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(s.clone(), x.clone()).unwrap()]);
        let want: Vec<f64> = indices(&s).iter().map(|o| {
            let at = |k: usize| { let mut q = o.clone(); q[axis] = k; x[offset(&s, &q)] as f64 };
            let m = (0..s[axis]).map(at).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..s[axis]).map(|k| (at(k) - m).exp()).sum();
            (at(o[axis]) - m).exp() / sum
        }).collect();
        assert_close(&got.data, &want, 1e-7, 1e-5, &format!("softmax {s:?} axis {axis}"));
    }

    #[test]
    fn layer_norm_last_axis(s in prop::collection::vec(1usize..=9, 1..=4), seed in any::<u64>()) {
        let c = *s.last().unwrap();
        let x = rand_vec(s.iter().product(), seed, -3.0, 3.0);
        let gamma = rand_vec(c, seed ^ 3, 0.5, 1.5);
        let beta = rand_vec(c, seed ^ 5, -0.5, 0.5);
        let eps = 1e-5;
        let mut g = Builder::default();
        let i = g.input(&s);
        let gm = g.konst(&[c], gamma.clone());
        let bt = g.konst(&[c], beta.clone());
        let y = g.node(Op::LayerNorm { eps }, &[i, gm, bt], &s);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(s.clone(), x.clone()).unwrap()]);
        let mut want = Vec::new();
        // f32 rounding of x and of its mean (a few ulps of |x| ≤ 3) is amplified by 1/σ: rows of
        // nearly equal values (σ² ≪ eps) are ill-conditioned, so the bound scales with 1/σ.
        let mut worst_inv_std = 0f64;
        for row in x.chunks(c) {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
            let inv_std = 1.0 / (var + eps as f64).sqrt();
            worst_inv_std = worst_inv_std.max(inv_std);
            for k in 0..c {
                want.push((row[k] as f64 - mean) * inv_std * gamma[k] as f64 + beta[k] as f64);
            }
        }
        let atol = 1e-5 + 4.0 * f32::EPSILON as f64 * 3.0 * 1.5 * worst_inv_std;
        assert_close(&got.data, &want, atol, 1e-5, "layernorm");
    }

    #[test]
    fn reshape_aliases(s in shape(), seed in any::<u64>()) {
        let n: usize = s.iter().product();
        let x = rand_vec(n, seed, -1.0, 1.0);
        let mut g = Builder::default();
        let i = g.input(&s);
        let r1 = g.node(Op::Reshape, &[i], &[n]);
        let neg = g.node(Op::Unary(UnaryOp::Neg), &[r1], &[n]);
        let r2 = g.node(Op::Reshape, &[neg], &[1, n, 1]);
        let r3 = g.node(Op::Reshape, &[r2], &s);
        g.output(r3);
        g.output(r2);
        let mut ex = qvit_device::exec::Executor::new(g.g, qvit_kernels::KernelSet::detect()).unwrap();
        let outs = ex.run(&[&Tensor::new(s.clone(), x.clone()).unwrap()]).unwrap();
        let want: Vec<f64> = x.iter().map(|&v| -(v as f64)).collect();
        prop_assert_eq!(&outs[0].shape, &s);
        prop_assert_eq!(&outs[1].shape, &vec![1, n, 1]);
        assert_close(&outs[0].data, &want, 0.0, 0.0, "reshape");
        assert_close(&outs[1].data, &want, 0.0, 0.0, "reshape");
    }

    #[test]
    fn linear_with_and_without_bias(lead in prop::collection::vec(1usize..=5, 0..=3), k in 1usize..=40, n in 1usize..=24, bias in any::<bool>(), w_const in any::<bool>(), seed in any::<u64>()) {
        let xs: Vec<usize> = lead.iter().copied().chain([k]).collect();
        let os: Vec<usize> = lead.iter().copied().chain([n]).collect();
        let x = rand_vec(xs.iter().product(), seed, -1.0, 1.0);
        let w = rand_vec(n * k, seed ^ 9, -1.0, 1.0);
        let b = rand_vec(n, seed ^ 11, -1.0, 1.0);
        let mut g = Builder::default();
        let i = g.input(&xs);
        // A constant weight is pre-transposed at plan time; an input weight is read by strides.
        let wi = if w_const { g.konst(&[n, k], w.clone()) } else { g.input(&[n, k]) };
        let mut ins = vec![i, wi];
        if bias { ins.push(g.konst(&[n], b.clone())); }
        let y = g.node(Op::Linear, &ins, &os);
        g.output(y);
        let mut feed = vec![Tensor::new(xs.clone(), x.clone()).unwrap()];
        if !w_const { feed.push(Tensor::new(vec![n, k], w.clone()).unwrap()); }
        let got = run1(g.g, &feed);
        let mut want = Vec::new();
        for row in x.chunks(k) {
            for o in 0..n {
                let dot: f64 = (0..k).map(|q| row[q] as f64 * w[o * k + q] as f64).sum();
                want.push(dot + if bias { b[o] as f64 } else { 0.0 });
            }
        }
        assert_close(&got.data, &want, 1e-5, 1e-5, "linear");
    }

    #[test]
    fn matmul_batched_broadcast((batch, ba, bb) in bcast_shapes(), m in 1usize..=9, k in 1usize..=17, n in 1usize..=9, tb in any::<bool>(), seed in any::<u64>()) {
        // Limit batch rank so the naive loop stays small.
        let keep = batch.len().min(3);
        let cut = |v: &Vec<usize>| v[v.len().saturating_sub(keep.min(v.len()))..].to_vec();
        let (batch, ba, bb) = (batch[batch.len() - keep..].to_vec(), cut(&ba), cut(&bb));
        let sa: Vec<usize> = ba.iter().copied().chain([m, k]).collect();
        let sb: Vec<usize> = bb.iter().copied().chain(if tb { [n, k] } else { [k, n] }).collect();
        let so: Vec<usize> = batch.iter().copied().chain([m, n]).collect();
        let a = rand_vec(sa.iter().product(), seed, -1.0, 1.0);
        let b = rand_vec(sb.iter().product(), seed ^ 13, -1.0, 1.0);
        let mut g = Builder::default();
        let ia = g.input(&sa);
        let ib = g.input(&sb);
        let y = g.node(Op::MatMul { transpose_b: tb }, &[ia, ib], &so);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(sa.clone(), a.clone()).unwrap(), Tensor::new(sb.clone(), b.clone()).unwrap()]);
        let bidx = |shape: &[usize], o: &[usize]| -> Vec<usize> {
            let lead = o.len() - shape.len();
            shape.iter().enumerate().map(|(j, &d)| if d == 1 { 0 } else { o[lead + j] }).collect()
        };
        let want: Vec<f64> = indices(&so).iter().map(|o| {
            let r = o.len();
            let (bo, i, j) = (&o[..r - 2], o[r - 2], o[r - 1]);
            let pa = bidx(&ba, bo);
            let pb = bidx(&bb, bo);
            (0..k).map(|q| {
                let ea: Vec<usize> = pa.iter().copied().chain([i, q]).collect();
                let eb: Vec<usize> = pb.iter().copied().chain(if tb { [j, q] } else { [q, j] }).collect();
                a[offset(&sa, &ea)] as f64 * b[offset(&sb, &eb)] as f64
            }).sum()
        }).collect();
        assert_close(&got.data, &want, 1e-5, 1e-5, &format!("matmul {sa:?} x {sb:?} tb={tb}"));
    }

    #[test]
    fn conv2d_general(
        batch in 1usize..=2, cg in 1usize..=3, og in 1usize..=3, group in 1usize..=2,
        h in 1usize..=7, w in 1usize..=7, kh in 1usize..=3, kw in 1usize..=3,
        sh in 1usize..=3, sw in 1usize..=3, dh in 1usize..=2, dw in 1usize..=2,
        pads in prop::array::uniform4(0usize..=2), bias in any::<bool>(), seed in any::<u64>(),
    ) {
        let (c, o) = (cg * group, og * group);
        let (ph, pw) = (h + pads[0] + pads[2], w + pads[1] + pads[3]);
        let (eh, ew) = ((kh - 1) * dh + 1, (kw - 1) * dw + 1);
        prop_assume!(ph >= eh && pw >= ew);
        let (oh, ow) = ((ph - eh) / sh + 1, (pw - ew) / sw + 1);
        let xs = vec![batch, c, h, w];
        let ws = vec![o, cg, kh, kw];
        let os = vec![batch, o, oh, ow];
        let x = rand_vec(xs.iter().product(), seed, -1.0, 1.0);
        let wt = rand_vec(ws.iter().product(), seed ^ 17, -1.0, 1.0);
        let b = rand_vec(o, seed ^ 19, -1.0, 1.0);
        let mut g = Builder::default();
        let i = g.input(&xs);
        let wi = g.konst(&ws, wt.clone());
        let mut ins = vec![i, wi];
        if bias { ins.push(g.konst(&[o], b.clone())); }
        let y = g.node(Op::Conv2d { strides: [sh, sw], pads, dilations: [dh, dw], group }, &ins, &os);
        g.output(y);
        let got = run1(g.g, &[Tensor::new(xs.clone(), x.clone()).unwrap()]);
        let want = naive_conv(&x, &xs, &wt, &ws, bias.then_some(&b[..]), [sh, sw], pads, [dh, dw], group, &os);
        assert_close(&got.data, &want, 1e-5, 1e-5, "conv2d");
    }
}

#[allow(clippy::too_many_arguments)]
fn naive_conv(
    x: &[f32],
    xs: &[usize],
    w: &[f32],
    ws: &[usize],
    b: Option<&[f32]>,
    s: [usize; 2],
    p: [usize; 4],
    d: [usize; 2],
    group: usize,
    os: &[usize],
) -> Vec<f64> {
    let (cg, og) = (ws[1], os[1] / group);
    indices(os)
        .iter()
        .map(|o| {
            let (n, oc, y, xx) = (o[0], o[1], o[2], o[3]);
            let g = oc / og;
            let mut acc = b.map_or(0.0, |b| b[oc] as f64);
            for ci in 0..cg {
                for i in 0..ws[2] {
                    for j in 0..ws[3] {
                        let iy = (y * s[0] + i * d[0]) as isize - p[0] as isize;
                        let ix = (xx * s[1] + j * d[1]) as isize - p[1] as isize;
                        if iy < 0 || ix < 0 || iy >= xs[2] as isize || ix >= xs[3] as isize {
                            continue;
                        }
                        let xv = x[offset(xs, &[n, g * cg + ci, iy as usize, ix as usize])] as f64;
                        acc += xv * w[offset(ws, &[oc, ci, i, j])] as f64;
                    }
                }
            }
            acc
        })
        .collect()
}

#[test]
fn conv2d_patch_embedding() {
    // The ViT stem: kernel = stride = 4, no padding, 3 → 8 channels on 12×12.
    let (xs, ws, os) = (vec![1, 3, 12, 12], vec![8, 3, 4, 4], vec![1, 8, 3, 3]);
    let x = rand_vec(432, 1, -1.0, 1.0);
    let w = rand_vec(384, 2, -1.0, 1.0);
    let b = rand_vec(8, 3, -1.0, 1.0);
    let mut g = Builder::default();
    let i = g.input(&xs);
    let wi = g.konst(&ws, w.clone());
    let bi = g.konst(&[8], b.clone());
    let y = g.node(
        Op::Conv2d {
            strides: [4, 4],
            pads: [0; 4],
            dilations: [1, 1],
            group: 1,
        },
        &[i, wi, bi],
        &os,
    );
    g.output(y);
    let got = run1(g.g, &[Tensor::new(xs.clone(), x.clone()).unwrap()]);
    let want = naive_conv(&x, &xs, &w, &ws, Some(&b), [4, 4], [0; 4], [1, 1], 1, &os);
    assert_close(&got.data, &want, 1e-5, 1e-5, "patch embedding");
}

#[test]
fn matmul_threads_agree_with_single_thread() {
    let (sa, sb, so) = (vec![3, 20, 16], vec![3, 24, 16], vec![3, 20, 24]);
    let mut g = Builder::default();
    let ia = g.input(&sa);
    let ib = g.input(&sb);
    let y = g.node(Op::MatMul { transpose_b: true }, &[ia, ib], &so);
    let z = g.node(Op::Softmax { axis: 2 }, &[y], &so);
    g.output(z);
    let a = Tensor::new(sa, rand_vec(960, 4, -1.0, 1.0)).unwrap();
    let b = Tensor::new(sb, rand_vec(1152, 5, -1.0, 1.0)).unwrap();
    let mut ex = qvit_device::exec::Executor::new(g.g, qvit_kernels::KernelSet::detect()).unwrap();
    let one = ex.run(&[&a, &b]).unwrap();
    ex.set_threads(2);
    let two = ex.run(&[&a, &b]).unwrap();
    assert_close(&two[0].data, &to64(&one[0].data), 1e-6, 1e-5, "threads");
}
