//! `--act-groups`: a per-token QLinear split into groups of input features runs on the device
//! as the documented per-group formula, on every kernel tier and thread count, and resolves a
//! token with an outlier feature better than one step for the whole token.

use qvit_device::exec::Executor;
use qvit_device::quant::{ActQuant, IntData};
use qvit_device::{Graph, Node, Op, Source, Tensor, Value};
use qvit_host::quant::groups;
use qvit_kernels::{KernelSet, Tier};

/// Deterministic values in (−1, 1).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn value(name: &str, shape: Vec<usize>, source: Source) -> Value {
    Value {
        name: name.into(),
        shape,
        source,
    }
}

/// `x [m, k] → QLinear(n)` with a per-token `bits`-bit input, 4-bit weights and a bias.
fn layer(m: usize, k: usize, n: usize, bits: u8) -> Graph {
    let codes: Vec<i8> = noise(n * k, 3)
        .iter()
        .map(|w| (w * 7.0).round() as i8)
        .collect();
    let scales = noise(n, 4).iter().map(|s| 0.01 + 0.02 * s.abs()).collect();
    Graph {
        values: vec![
            value("x", vec![m, k], Source::Input(0)),
            value(
                "w",
                vec![n, k],
                Source::Int(IntData {
                    bits: 4,
                    data: codes,
                }),
            ),
            value("w_scale", vec![n], Source::Const(scales)),
            value("b", vec![n], Source::Const(noise(n, 5))),
            value("y", vec![m, n], Source::Node(0)),
        ],
        nodes: vec![Node {
            name: "fc".into(),
            op: Op::QLinear {
                act: ActQuant::Dynamic { bits },
            },
            inputs: vec![0, 1, 2, 3],
            output: 4,
        }],
        inputs: vec![0],
        outputs: vec![4],
    }
}

/// The per-group contract written out: each token's slice of `group` features gets its own
/// range `[min(0, min), max(0, max)]` over `2^bits − 1` steps; the exact integer sum per group
/// is dequantized as `acc·(step·w_scale)` (plus the bias in the first group) and the groups
/// are summed in order in f32.
fn oracle(x: &[f32], k: usize, group: usize, bits: u8, g: &Graph) -> Vec<f32> {
    let w = &g.int_data(1).unwrap().data;
    let (ws, b) = (g.const_data(2).unwrap(), g.const_data(3).unwrap());
    let n = ws.len();
    let max = ((1u32 << bits) - 1) as f32;
    let mut out = Vec::new();
    for row in x.chunks(k) {
        let mut y = vec![0f32; n];
        for (gi, part) in row.chunks(group).enumerate() {
            let lo = part.iter().fold(0f32, |a, &v| a.min(v));
            let hi = part.iter().fold(0f32, |a, &v| a.max(v));
            let step = if hi > lo { (hi - lo) / max } else { 1.0 };
            let inv = 1.0 / step;
            let zero = (-lo * inv).round_ties_even().clamp(0.0, max) as i64;
            let q: Vec<i64> = part
                .iter()
                .map(|&v| ((v * inv).round_ties_even() as i64 + zero).clamp(0, max as i64) - zero)
                .collect();
            for (j, yj) in y.iter_mut().enumerate() {
                let acc: i64 = (0..group)
                    .map(|t| q[t] * w[j * k + gi * group + t] as i64)
                    .sum();
                let part = acc as i32 as f32 * (step * ws[j]);
                *yj = if gi == 0 { part + b[j] } else { *yj + part };
            }
        }
        out.extend(y);
    }
    out
}

fn run(g: &Graph, ks: KernelSet, threads: usize, x: &Tensor) -> Vec<f32> {
    let mut ex = Executor::new(g.clone(), ks).unwrap();
    ex.set_threads(threads);
    ex.run(&[x]).unwrap().remove(0).data
}

/// Tokens of ordinary features, every fifth with one outlier feature 40 times larger.
fn tokens(m: usize, k: usize) -> Vec<f32> {
    let mut x: Vec<f32> = noise(m * k, 9);
    for (r, row) in x.chunks_mut(k).enumerate().filter(|(r, _)| r % 5 == 2) {
        row[(r * 37) % k] *= 40.0;
    }
    x
}

#[test]
fn a_split_layer_runs_the_per_group_formula_on_every_tier() {
    let (m, k, n, group) = (23, 256, 40, 64);
    for bits in [4u8, 8] {
        let whole = layer(m, k, n, bits);
        let mut g = whole.clone();
        assert_eq!(groups::split(&mut g, group), vec!["fc".to_string()]);
        g.validate().unwrap();
        // Four slices, four layers, three adds; one weight value per group, none left over.
        assert_eq!(g.nodes.len(), 11);
        let weight_elems: usize = g
            .values
            .iter()
            .filter_map(|v| match &v.source {
                Source::Int(d) => Some(d.data.len()),
                _ => None,
            })
            .sum();
        assert_eq!(weight_elems, n * k);

        let x = tokens(m, k);
        let want = oracle(&x, k, group, bits, &whole);
        let xt = Tensor::new(vec![m, k], x).unwrap();
        let tiers = Tier::supported();
        eprintln!("tiers under test: {tiers:?}");
        for tier in tiers {
            for threads in [1, 2] {
                let got = run(&g, KernelSet::with_tier(tier).unwrap(), threads, &xt);
                assert_eq!(got, want, "{bits} bits, {tier:?}, {threads} threads");
            }
        }
    }
}

#[test]
fn groups_resolve_an_outlier_token_better_than_one_step_per_token() {
    let (m, k, n) = (20, 256, 32);
    let whole = layer(m, k, n, 4);
    let mut split = whole.clone();
    groups::split(&mut split, 64);
    let x = tokens(m, k);
    // The exact f32 layer: dequantized weights times the unquantized input.
    let g = &whole;
    let (w, ws, b) = (
        &g.int_data(1).unwrap().data,
        g.const_data(2).unwrap(),
        g.const_data(3).unwrap(),
    );
    let exact: Vec<f64> = x
        .chunks(k)
        .flat_map(|row| {
            (0..n).map(move |j| {
                (0..k)
                    .map(|t| row[t] as f64 * w[j * k + t] as f64 * ws[j] as f64)
                    .sum::<f64>()
                    + b[j] as f64
            })
        })
        .collect();
    let xt = Tensor::new(vec![m, k], x).unwrap();
    let ks = KernelSet::detect();
    let err = |y: &[f32], rows: &dyn Fn(usize) -> bool| -> f64 {
        y.iter()
            .zip(&exact)
            .enumerate()
            .filter(|(i, _)| rows(i / n))
            .map(|(_, (&a, &e))| (a as f64 - e).powi(2))
            .sum::<f64>()
    };
    let (y_whole, y_split) = (run(&whole, ks, 1, &xt), run(&split, ks, 1, &xt));
    let outliers = |r: usize| r % 5 == 2;
    let (e_whole, e_split) = (err(&y_whole, &outliers), err(&y_split, &outliers));
    eprintln!("outlier tokens: squared error whole {e_whole:.4e}, groups {e_split:.4e}");
    // One step per token spends 15 levels on the outlier's range; groups confine that to its
    // group of 64, so the other 192 features keep a fine step.
    assert!(e_split * 4.0 < e_whole, "{e_split} vs {e_whole}");
}

#[test]
fn layers_that_do_not_divide_into_groups_stay_whole() {
    for (k, group) in [(96, 64), (64, 64), (32, 64)] {
        let mut g = layer(4, k, 8, 4);
        let before = g.clone();
        assert!(
            groups::split(&mut g, group).is_empty(),
            "k {k} group {group}"
        );
        assert_eq!(g, before);
    }
    // A weight two layers read stays whole (the split would rewrite it under the other).
    let mut g = layer(4, 256, 8, 4);
    g.values.push(value("y2", vec![4, 8], Source::Node(1)));
    let mut twin = g.nodes[0].clone();
    (twin.name, twin.output) = ("fc2".into(), 5);
    g.nodes.push(twin);
    g.outputs.push(5);
    g.validate().unwrap();
    assert!(groups::split(&mut g, 64).is_empty());
    // A static input scale has no rows to split.
    let mut g = layer(4, 256, 8, 4);
    g.nodes[0].op = Op::QLinear {
        act: ActQuant::Uniform {
            bits: 4,
            scale: 0.1,
            zero: 8,
        },
    };
    assert!(groups::split(&mut g, 64).is_empty());
}

#[test]
fn the_nodes_of_a_split_carry_their_layer_name() {
    let mut g = layer(3, 256, 8, 4);
    groups::split(&mut g, 128);
    let layers: Vec<&str> = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::QLinear { .. }))
        .map(|n| groups::layer_name(&n.name))
        .collect();
    assert_eq!(layers, ["fc", "fc"]);
    for other in ["patch/Conv#linear", "fc#g", "fc#gx", "fc"] {
        assert_eq!(groups::layer_name(other), other);
    }
}
