//! QLinear (static and per-row dynamic activations) against an oracle that applies the
//! documented integer formulas in i64, on every kernel tier this CPU supports; invalid quantized
//! graphs; and quantized bundles through the encoder, the decoder and hostile edits. QMatMul's
//! oracles are in `exec_qmatmul.rs`.

mod common;

use common::{qmatmul_graph, run_on, tiers, uniform, value, weights};
use qvit_device::bundle::Bundle;
use qvit_device::exec::Executor;
use qvit_device::quant::{ActQuant, IntData, symmetric_max};
use qvit_device::{Graph, Node, Op, Source, Tensor};
use qvit_kernels::KernelSet;

fn int_weights(n: usize, k: usize, bits: u8, seed: u32) -> IntData {
    let max = symmetric_max(bits) as f32;
    IntData {
        bits,
        data: weights(n * k, seed)
            .iter()
            .map(|&w| (w * max).round() as i8)
            .collect(),
    }
}

/// `x [m, k] → QLinear(n)` with bias.
fn qlinear_graph(m: usize, k: usize, n: usize, wbits: u8, act: ActQuant) -> Graph {
    Graph {
        values: vec![
            value("x", vec![m, k], Source::Input(0)),
            value("w", vec![n, k], Source::Int(int_weights(n, k, wbits, 11))),
            value(
                "w_scale",
                vec![n],
                Source::Const(
                    weights(n, 12)
                        .iter()
                        .map(|s| 0.01 + s.abs() * 0.02)
                        .collect(),
                ),
            ),
            value("b", vec![n], Source::Const(weights(n, 13))),
            value("y", vec![m, n], Source::Node(0)),
        ],
        nodes: vec![Node {
            name: "fc".into(),
            op: Op::QLinear { act },
            inputs: vec![0, 1, 2, 3],
            output: 4,
        }],
        inputs: vec![0],
        outputs: vec![4],
    }
}

/// The QLinear contract in i64: levels, exact sum, then the documented f32 epilogue.
fn qlinear_oracle(g: &Graph, x: &[f32]) -> Vec<f32> {
    let Op::QLinear { act } = g.nodes[0].op else {
        unreachable!()
    };
    let ActQuant::Uniform { zero, scale, .. } = act else {
        unreachable!()
    };
    let w = g.int_data(1).unwrap();
    let (ws, b) = (g.const_data(2).unwrap(), g.const_data(3).unwrap());
    let (n, k) = (g.shape(1)[0], g.shape(1)[1]);
    let inv = 1.0 / scale;
    let q: Vec<i64> = x
        .iter()
        .map(|&v| act.level(v, inv) as i64 - zero as i64)
        .collect();
    let mut out = Vec::new();
    for row in q.chunks(k) {
        for j in 0..n {
            let acc: i64 = (0..k).map(|t| row[t] * w.data[j * k + t] as i64).sum();
            out.push(acc as i32 as f32 * (scale * ws[j]) + b[j]);
        }
    }
    out
}

/// `g` on `x` gives exactly `want`'s bits on every tier with 1 and 2 threads.
fn assert_bits_on_every_tier(g: &Graph, x: &Tensor, want: &[f32], what: &str) {
    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for ks in tiers() {
        for threads in [1, 2] {
            let got = run_on(g, ks, threads, &[x]);
            assert_eq!(
                bits(&got),
                bits(want),
                "{what} tier {} threads {threads}",
                ks.tier().name()
            );
        }
    }
}

#[test]
fn qlinear_equals_the_integer_oracle_on_every_tier_and_thread_count() {
    let cases = [(8, 8), (4, 8), (4, 4), (6, 6), (2, 3), (3, 4), (8, 2)];
    for (m, k, n) in [(1, 1, 1), (5, 17, 3), (37, 64, 29), (197, 96, 40)] {
        for (wb, ab) in cases {
            let g = qlinear_graph(m, k, n, wb, uniform(ab, -1.3, 2.1));
            g.validate().unwrap();
            // Inputs beyond the clip range and exactly on rounding ties.
            let mut x: Vec<f32> = weights(m * k, 21).iter().map(|v| v * 2.5).collect();
            x[0] = f32::NAN.min(3.0);
            let xt = Tensor::new(vec![m, k], x.clone()).unwrap();
            let want = qlinear_oracle(&g, &x);
            assert_bits_on_every_tier(&g, &xt, &want, &format!("m{m} k{k} n{n} W{wb}A{ab}"));
        }
    }
}

/// The dynamic QLinear contract written out independently: each row's range `[min(0, min x),
/// max(0, max x)]` over `2^bits − 1` steps, zero point `round_half_even(−lo/step)`, levels
/// `clamp(round_half_even(x/step) + zero)`, the exact sum in i64, then
/// `acc·(step·w_scale) + bias` in f32.
fn dynamic_oracle(g: &Graph, x: &[f32]) -> Vec<f32> {
    let Op::QLinear {
        act: ActQuant::Dynamic { bits },
    } = g.nodes[0].op
    else {
        unreachable!()
    };
    let w = g.int_data(1).unwrap();
    let (ws, b) = (g.const_data(2).unwrap(), g.const_data(3).unwrap());
    let (n, k) = (g.shape(1)[0], g.shape(1)[1]);
    let max = ((1u32 << bits) - 1) as f32;
    let mut out = Vec::new();
    for row in x.chunks(k) {
        let lo = row
            .iter()
            .filter(|v| !v.is_nan())
            .fold(0f32, |a, &v| a.min(v));
        let hi = row
            .iter()
            .filter(|v| !v.is_nan())
            .fold(0f32, |a, &v| a.max(v));
        let (step, inv) = if hi > lo {
            let s = (hi - lo) / max;
            (s, 1.0 / s)
        } else {
            (1.0, 1.0)
        };
        let zero = (-lo * inv).round_ties_even().clamp(0.0, max) as i64;
        let q: Vec<i64> = row
            .iter()
            .map(|&v| {
                let v = if v.is_nan() { 0.0 } else { v * inv };
                (v.round_ties_even() as i64 + zero).clamp(0, max as i64) - zero
            })
            .collect();
        for j in 0..n {
            let acc: i64 = (0..k).map(|t| q[t] * w.data[j * k + t] as i64).sum();
            out.push(acc as i32 as f32 * (step * ws[j]) + b[j]);
        }
    }
    out
}

#[test]
fn dynamic_qlinear_equals_the_per_row_oracle_on_every_tier_and_thread_count() {
    let cases = [(8, 8), (4, 8), (4, 4), (6, 6), (2, 3), (8, 2)];
    for (m, k, n) in [(1, 1, 1), (5, 17, 3), (37, 64, 29), (197, 96, 40)] {
        for (wb, ab) in cases {
            let g = qlinear_graph(m, k, n, wb, ActQuant::Dynamic { bits: ab });
            g.validate().unwrap();
            // Rows of very different ranges (a high-norm token every 7th row), an all-positive
            // row, a zero row and a NaN.
            let mut x: Vec<f32> = weights(m * k, 21).iter().map(|v| v * 2.5).collect();
            for (r, row) in x.chunks_mut(k).enumerate() {
                match r % 7 {
                    3 => row.iter_mut().for_each(|v| *v *= 60.0),
                    4 => row.iter_mut().for_each(|v| *v = v.abs() + 0.5),
                    5 => row.fill(0.0),
                    _ => {}
                }
            }
            x[0] = f32::NAN;
            let xt = Tensor::new(vec![m, k], x.clone()).unwrap();
            let want = dynamic_oracle(&g, &x);
            let what = format!("dynamic m{m} k{k} n{n} W{wb}A{ab}");
            assert_bits_on_every_tier(&g, &xt, &want, &what);
        }
    }
}

/// `y0 + y1` of two dynamic QLinears on one input where the Add's other operand (`y1`) is
/// produced after `y0`'s layer: the planner may fuse the Add into the second layer's epilogue
/// only, never into the first's (whose step would read a value not yet computed).
#[test]
fn a_sum_of_two_layers_is_fused_only_after_both_operands_exist() {
    let (m, k, n) = (37, 64, 29);
    let (a, b) = (
        qlinear_graph(m, k, n, 4, ActQuant::Dynamic { bits: 4 }),
        qlinear_graph(m, k, n, 8, ActQuant::Dynamic { bits: 6 }),
    );
    let mut values = a.values.clone();
    values.extend(b.values[1..].iter().cloned());
    values[8].source = Source::Node(1);
    values.push(value("sum", vec![m, n], Source::Node(2)));
    let layer = |op: &Op, name: &str, inputs: Vec<u32>, output: u32| Node {
        name: name.into(),
        op: op.clone(),
        inputs,
        output,
    };
    let g = Graph {
        values,
        nodes: vec![
            layer(&a.nodes[0].op, "fc0", vec![0, 1, 2, 3], 4),
            layer(&b.nodes[0].op, "fc1", vec![0, 5, 6, 7], 8),
            layer(
                &Op::Binary(qvit_device::graph::BinaryOp::Add),
                "sum",
                vec![4, 8],
                9,
            ),
        ],
        inputs: vec![0],
        outputs: vec![9],
    };
    g.validate().unwrap();
    let x: Vec<f32> = weights(m * k, 23).iter().map(|v| v * 2.5).collect();
    let want: Vec<f32> = dynamic_oracle(&a, &x)
        .iter()
        .zip(dynamic_oracle(&b, &x))
        .map(|(p, q)| p + q)
        .collect();
    let xt = Tensor::new(vec![m, k], x).unwrap();
    assert_bits_on_every_tier(&g, &xt, &want, "y0 + y1");
}

#[test]
fn invalid_quantized_graphs_are_rejected() {
    let good = qlinear_graph(2, 8, 3, 8, uniform(8, -1.0, 1.0));
    good.validate().unwrap();
    let mut g = good.clone();
    g.nodes[0].op = Op::QLinear {
        act: ActQuant::Symmetric {
            bits: 8,
            scale: 0.1,
        },
    };
    assert!(g.validate().is_err());
    let mut g = good.clone();
    g.values[1].source = Source::Const(vec![0.0; 24]);
    assert!(g.validate().is_err() && Executor::new(g, KernelSet::detect()).is_err());
    let mut g = good.clone();
    if let Source::Int(q) = &mut g.values[1].source {
        q.data[0] = -128;
    }
    assert!(g.validate().is_err() && Executor::new(g, KernelSet::detect()).is_err());
    let mut g = good.clone();
    // An integer constant anywhere but a QLinear weight.
    g.values[3].source = Source::Int(IntData {
        bits: 8,
        data: vec![1; 3],
    });
    assert!(g.validate().is_err() && Executor::new(g, KernelSet::detect()).is_err());
    let mut g = good.clone();
    // An integer weight as a graph output: it has no f32 values to hand out.
    g.outputs = vec![1];
    assert!(g.validate().is_err() && Executor::new(g, KernelSet::detect()).is_err());
    let mut g = good;
    g.values[2].shape = vec![2];
    g.values[2].source = Source::Const(vec![1.0; 2]);
    assert!(g.validate().is_err());
    let bad_mm = qmatmul_graph(
        2,
        3,
        4,
        5,
        false,
        uniform(8, -1.0, 1.0),
        uniform(8, -1.0, 1.0),
    );
    assert!(bad_mm.validate().is_err());
    // Run-time steps: affine per row on a product's left side, symmetric per column on its
    // right side, not the other way round; at 2..=8 bits.
    let (dy, dys) = (
        ActQuant::Dynamic { bits: 8 },
        ActQuant::DynamicSymmetric { bits: 8 },
    );
    qmatmul_graph(2, 3, 4, 5, false, dy, dys)
        .validate()
        .unwrap();
    assert!(
        qmatmul_graph(2, 3, 4, 5, false, dys, dys)
            .validate()
            .is_err()
    );
    assert!(qmatmul_graph(2, 3, 4, 5, false, dy, dy).validate().is_err());
    let dys9 = ActQuant::DynamicSymmetric { bits: 9 };
    assert!(
        qmatmul_graph(2, 3, 4, 5, true, dy, dys9)
            .validate()
            .is_err()
    );
    let lin_dys = qlinear_graph(2, 8, 3, 8, dys);
    assert!(lin_dys.validate().is_err());
    assert!(
        qlinear_graph(2, 8, 3, 8, ActQuant::Dynamic { bits: 9 })
            .validate()
            .is_err()
    );
}

#[test]
fn quantized_bundles_round_trip_and_survive_hostile_edits() {
    for bits in [2, 3, 4, 5, 6, 7, 8] {
        // Odd widths with a per-row (dynamic) input quantizer, the others static.
        let act = if bits % 2 == 1 {
            ActQuant::Dynamic { bits: 6 }
        } else {
            uniform(6, -1.0, 1.0)
        };
        let mut g = qlinear_graph(3, 19, 7, bits, act);
        // A bias of f16-exact values is stored in 2 bytes per value, losslessly.
        if let Source::Const(b) = &mut g.values[3].source {
            b.iter_mut()
                .for_each(|x| *x = qvit_device::quant::round_to_f16(*x));
        }
        let bundle = Bundle::new("q", g.clone());
        let (bytes, stats) = bundle.encode_with_stats().unwrap();
        let back = Bundle::decode(&bytes).unwrap();
        assert_eq!(back.graph, g);
        assert_eq!(
            stats.int_weights as usize,
            (7 * 19 * bits as usize).div_ceil(8)
        );
        assert_eq!(stats.scales, 7 * 4);
        assert_eq!(stats.float_consts, 7 * 2);
        // Random edits behind a recomputed checksum: errors, never panics, never an
        // out-of-range weight.
        use rand_xoshiro::rand_core::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(bits as u64);
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..3 {
                let s = rng.next_u64();
                let i = 32 + (s as usize) % (b.len() - 36);
                b[i] = (s >> 32) as u8;
            }
            let body = b.len() - 4;
            let crc = crc32fast::hash(&b[..body]);
            b[body..].copy_from_slice(&crc.to_le_bytes());
            if let Ok(d) = Bundle::decode(&b) {
                assert!(d.graph.validate().is_ok());
            }
        }
    }
    // Both run-time quantizers of the attention products survive the bundle.
    let mm = qmatmul_graph(
        2,
        5,
        8,
        5,
        true,
        ActQuant::Dynamic { bits: 4 },
        ActQuant::DynamicSymmetric { bits: 4 },
    );
    let back = Bundle::decode(&Bundle::new("mm", mm.clone()).encode().unwrap()).unwrap();
    assert_eq!(back.graph, mm);
}
