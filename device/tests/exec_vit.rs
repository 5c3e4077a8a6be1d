//! A hand-built pre-norm ViT block run by the executor against a naive f64 evaluation of the
//! same math, plus the executor's run-time contract (observer, bad inputs, buffer reuse).

mod exec_util;

use exec_util::vit_block::*;
use exec_util::*;
use qvit_device::exec::Executor;
use qvit_device::{Error, Tensor, ValueId};
use qvit_kernels::KernelSet;

/// The same block in f64 with plain loops over tokens: rows of `x` are tokens.
fn block_naive(w: &Weights, x: &[f32]) -> Vec<f64> {
    let x = to64(x);
    let ln = |x: &[f64], p: &(Vec<f32>, Vec<f32>)| -> Vec<f64> {
        x.chunks(D)
            .flat_map(|r| {
                let m = r.iter().sum::<f64>() / D as f64;
                let v = r.iter().map(|a| (a - m).powi(2)).sum::<f64>() / D as f64;
                let s = 1.0 / (v + EPS as f64).sqrt();
                (0..D).map(move |c| (r[c] - m) * s * p.0[c] as f64 + p.1[c] as f64)
            })
            .collect()
    };
    let lin = |x: &[f64], p: &(Vec<f32>, Vec<f32>), n: usize, k: usize| -> Vec<f64> {
        x.chunks(k)
            .flat_map(|r| {
                (0..n).map(move |o| {
                    p.1[o] as f64 + (0..k).map(|j| r[j] * p.0[o * k + j] as f64).sum::<f64>()
                })
            })
            .collect()
    };
    let h1 = ln(&x, &w.ln1);
    let qkv = lin(&h1, &w.qkv, 3 * D, D);
    // qkv row t = [q(H×HD), k(H×HD), v(H×HD)].
    let at = |t: usize, part: usize, h: usize, e: usize| qkv[t * 3 * D + part * D + h * HD + e];
    let mut ctx = vec![0.0; T * D];
    for h in 0..H {
        for i in 0..T {
            let logits: Vec<f64> = (0..T)
                .map(|j| {
                    (0..HD)
                        .map(|e| at(i, 0, h, e) * at(j, 1, h, e))
                        .sum::<f64>()
                        / (HD as f64).sqrt()
                })
                .collect();
            let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
            for e in 0..HD {
                ctx[i * D + h * HD + e] = (0..T)
                    .map(|j| (logits[j] - m).exp() / z * at(j, 2, h, e))
                    .sum();
            }
        }
    }
    let proj = lin(&ctx, &w.proj, D, D);
    let r1: Vec<f64> = x.iter().zip(&proj).map(|(a, b)| a + b).collect();
    let h2 = ln(&r1, &w.ln2);
    let f1: Vec<f64> = lin(&h2, &w.fc1, F, D)
        .iter()
        .map(|&v| 0.5 * v * (1.0 + erf64(v / 2f64.sqrt())))
        .collect();
    let f2 = lin(&f1, &w.fc2, D, F);
    r1.iter().zip(&f2).map(|(a, b)| a + b).collect()
}

fn check_block(got: &[f32], want: &[f64]) {
    let dot: f64 = got.iter().zip(want).map(|(&a, b)| a as f64 * b).sum();
    let na: f64 = got.iter().map(|&a| (a as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = want.iter().map(|b| b * b).sum::<f64>().sqrt();
    let cos = dot / (na * nb);
    assert!(cos >= 0.99999, "cosine {cos}");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let max_rel = got
        .iter()
        .zip(want)
        .map(|(&a, b)| (a as f64 - b).abs() / scale)
        .fold(0.0, f64::max);
    assert!(
        max_rel <= 1e-5,
        "max error relative to the output's range: {max_rel}"
    );
}

fn input(seed: u64) -> Tensor {
    Tensor::new(vec![1, T, D], rand_vec(T * D, seed, -2.0, 2.0)).unwrap()
}

#[test]
fn vit_block_matches_naive_f64() {
    let w = weights();
    let mut ex = Executor::new(block_graph(&w), KernelSet::detect()).unwrap();
    for threads in [1, 2] {
        ex.set_threads(threads);
        let x = input(42);
        let y = ex.run(&[&x]).unwrap();
        assert_eq!(y[0].shape, vec![1, T, D]);
        check_block(&y[0].data, &block_naive(&w, &x.data));
    }
}

#[test]
fn arena_reuse_keeps_runs_independent() {
    let w = weights();
    let mut ex = Executor::new(block_graph(&w), KernelSet::detect()).unwrap();
    // Fewer buffers than values proves that buffers are shared.
    let node_values = ex.graph().nodes.len();
    let (a, b) = (input(1), input(2));
    let ya = ex.run(&[&a]).unwrap();
    let yb = ex.run(&[&b]).unwrap();
    let ya2 = ex.run(&[&a]).unwrap();
    check_block(&ya[0].data, &block_naive(&w, &a.data));
    check_block(&yb[0].data, &block_naive(&w, &b.data));
    assert_eq!(
        ya, ya2,
        "a second run on the same input must give the same bits"
    );
    let all_values: usize = ex
        .graph()
        .nodes
        .iter()
        .map(|n| ex.graph().shape(n.output).iter().product::<usize>())
        .sum();
    assert!(
        ex.arena_len() < all_values,
        "arena {} vs {} elements over {node_values} node values",
        ex.arena_len(),
        all_values
    );
}

#[test]
fn observer_sees_every_node_output_in_order() {
    let w = weights();
    let g = block_graph(&w);
    let mut ex = Executor::new(g.clone(), KernelSet::detect()).unwrap();
    let x = input(3);
    let mut seen: Vec<(ValueId, Vec<f32>)> = Vec::new();
    let y = ex
        .run_observed(&[&x], &mut |id, data| seen.push((id, data.to_vec())))
        .unwrap();
    let order: Vec<ValueId> = g.nodes.iter().map(|n| n.output).collect();
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), order);
    for (id, data) in &seen {
        assert_eq!(
            data.len(),
            g.shape(*id).iter().product::<usize>(),
            "value {id}"
        );
    }
    // The last observed value is the output, with the same data.
    assert_eq!(seen.last().unwrap().1, y[0].data);
    // Observed values are snapshots at compute time: the residual stream r1 is the input of
    // the final Add, so recomputing that Add from the observed values must give the output.
    let last = g.nodes.last().unwrap();
    let get = |id: ValueId| &seen.iter().find(|s| s.0 == id).unwrap().1;
    let sum: Vec<f64> = get(last.inputs[0])
        .iter()
        .zip(get(last.inputs[1]))
        .map(|(&a, &b)| (a + b) as f64)
        .collect();
    assert_close(&y[0].data, &sum, 0.0, 0.0, "recomputed final add");
}

#[test]
fn bad_inputs_are_errors() {
    let w = weights();
    let mut ex = Executor::new(block_graph(&w), KernelSet::detect()).unwrap();
    let x = input(4);
    assert!(matches!(ex.run(&[]), Err(Error::BadInput(_))));
    assert!(matches!(ex.run(&[&x, &x]), Err(Error::BadInput(_))));
    let wrong = Tensor::new(vec![1, D, T], x.data.clone()).unwrap();
    assert!(matches!(ex.run(&[&wrong]), Err(Error::BadInput(_))));
    let lying = Tensor {
        shape: vec![1, T, D],
        data: vec![0.0; 3],
    };
    assert!(matches!(ex.run(&[&lying]), Err(Error::BadInput(_))));
    // The executor still works after rejected calls.
    check_block(&ex.run(&[&x]).unwrap()[0].data, &block_naive(&w, &x.data));
}

#[test]
fn inconsistent_graphs_are_rejected_at_plan_time() {
    let w = weights();
    let good = block_graph(&w);
    let ks = KernelSet::detect();
    // Output shape that the op cannot produce.
    let mut g = good.clone();
    let out = g.nodes[1].output as usize;
    g.values[out].shape = vec![1, T, 3 * D + 1];
    assert!(matches!(
        Executor::new(g, ks),
        Err(Error::InvalidGraph { node: 1, .. })
    ));
    // Reference to a value that does not exist.
    let mut g = good.clone();
    g.nodes[0].inputs[1] = 10_000;
    assert!(matches!(
        Executor::new(g, ks),
        Err(Error::InvalidGraph { node: 0, .. })
    ));
    // A node reading a value computed later.
    let mut g = good.clone();
    let later = g.nodes[5].output;
    g.nodes[2].inputs[0] = later;
    assert!(Executor::new(g, ks).is_err());
    // Constant data that does not match its shape.
    let mut g = good;
    let c = g.nodes[0].inputs[1] as usize;
    g.values[c].source = qvit_device::Source::Const(vec![1.0; D - 1]);
    assert!(Executor::new(g, ks).is_err());
}
