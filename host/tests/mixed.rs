//! Mixed precision on the default model: every allocator respects the budget (recomputed from the
//! quantized graph itself), the graph carries the allocated bits, lrp is deterministic, and the
//! extremes of the budget give the extreme allocations.

use qvit_device::{Graph, Op, Tensor};
use qvit_host::data::Dataset;
use qvit_host::lrp::scores::Statistic;
use qvit_host::prep::{PrepArgs, Preset};
use qvit_host::quant::mixed::{Allocator, MixedOptions, MixedReport, allocate_bits};
use qvit_host::quant::{QuantOptions, quantize};
use std::path::Path;

fn model_and_calib(n: usize) -> (Graph, Vec<Tensor>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fashion-vit");
    let prep = PrepArgs {
        preset: Some(Preset::FashionMnist),
        ..Default::default()
    };
    let b =
        qvit_host::source::float_bundle(&dir.join("fashion_vit.onnx"), None, &prep, None).unwrap();
    let pre = b.header.preprocess.clone().unwrap();
    let ds = Dataset::open(&dir.join("calib512-images-idx3-ubyte")).unwrap();
    (
        b.graph,
        (0..n).map(|i| ds.sample(i, &pre).unwrap().input).collect(),
    )
}

fn options(budget: f64, allocator: Allocator) -> MixedOptions {
    MixedOptions {
        budget,
        abudget: budget,
        choices: vec![2, 3, 4, 5, 6, 8],
        allocator,
        lrp: Default::default(),
        target: "auto".into(),
        statistic: Statistic::AbsIn,
        lrp_gamma: 1.0,
        lrp_images: 8,
        sensitivity_images: 4,
    }
}

/// Quantizes with the allocation and returns, from the quantized graph alone, the
/// parameter-weighted weight bits and element-weighted activation bits of the allocated layers.
fn achieved(
    g: &Graph,
    calib: &[Tensor],
    report: &MixedReport,
    bits: &qvit_host::quant::mixed::LayerBits,
) -> (f64, f64) {
    let opts = QuantOptions {
        layer_bits: bits.clone(),
        ..Default::default()
    };
    let q = quantize(g, calib, &opts).unwrap().graph;
    let (mut wsum, mut wcount, mut asum, mut acount) = (0.0, 0.0, 0.0, 0.0);
    for layer in &report.layers {
        let node = q
            .nodes
            .iter()
            .find(|n| n.name == layer.name)
            .expect("layer in graph");
        let numel = |v: u32| q.shape(v).iter().product::<usize>() as f64;
        match &node.op {
            Op::QLinear { act } => {
                let w = q.int_data(node.inputs[1]).unwrap();
                assert_eq!(Some(w.bits), layer.wbits, "{}", layer.name);
                assert_eq!(act.bits(), layer.abits, "{}", layer.name);
                wsum += w.bits as f64 * w.data.len() as f64;
                wcount += w.data.len() as f64;
                asum += act.bits() as f64 * numel(node.inputs[0]);
                acount += numel(node.inputs[0]);
            }
            Op::QMatMul { a, b, .. } => {
                assert_eq!(
                    (a.bits(), b.bits()),
                    (layer.abits, layer.abits),
                    "{}",
                    layer.name
                );
                let e = numel(node.inputs[0]) + numel(node.inputs[1]);
                asum += a.bits() as f64 * e;
                acount += e;
            }
            other => panic!("{} was not quantized: {other:?}", layer.name),
        }
    }
    (wsum / wcount, asum / acount)
}

#[test]
fn every_allocator_respects_the_budget_and_the_graph_carries_its_bits() {
    let (g, calib) = model_and_calib(16);
    for allocator in [
        Allocator::Uniform,
        Allocator::Random(3),
        Allocator::Lrp,
        Allocator::Sensitivity,
    ] {
        for budget in [3.0, 3.5, 4.0] {
            let (bits, report) = allocate_bits(
                &g,
                &calib,
                &QuantOptions::default(),
                &options(budget, allocator),
            )
            .unwrap();
            let (w, a) = achieved(&g, &calib, &report, &bits);
            assert!(
                w <= budget + 1e-9 && a <= budget + 1e-9,
                "{allocator} at {budget}: W {w} A {a}"
            );
            assert!(
                (w - report.achieved_wbits).abs() < 1e-9,
                "{allocator}: {w} vs {}",
                report.achieved_wbits
            );
            assert!(
                (a - report.achieved_abits).abs() < 1e-9,
                "{allocator}: {a} vs {}",
                report.achieved_abits
            );
            if allocator != Allocator::Uniform {
                // A free allocation uses the budget: within one layer's worth of bits of it.
                assert!(
                    w > budget - 1.0,
                    "{allocator} at {budget}: only {w} bits used"
                );
            }
        }
    }
}

#[test]
fn lrp_allocation_is_deterministic_and_follows_relevance() {
    let (g, calib) = model_and_calib(8);
    let run = || {
        allocate_bits(
            &g,
            &calib,
            &QuantOptions::default(),
            &options(3.5, Allocator::Lrp),
        )
        .unwrap()
    };
    let (a, ra) = run();
    let (b, _) = run();
    assert_eq!(a, b);
    let scores: Vec<f64> = ra.layers.iter().map(|l| l.score.unwrap()).collect();
    assert!(scores.iter().all(|&s| s >= 0.0) && scores.iter().sum::<f64>() > 0.5);
}

/// `--lrp-gamma 0` flattens every score to 1 (only the error model decides), 0.5 takes roots.
#[test]
fn gamma_tempers_the_scores() {
    let (g, calib) = model_and_calib(4);
    let scores = |gamma: f64| -> Vec<f64> {
        let mut o = options(3.5, Allocator::Lrp);
        o.lrp_gamma = gamma;
        let (_, r) = allocate_bits(&g, &calib, &QuantOptions::default(), &o).unwrap();
        r.layers.iter().map(|l| l.score.unwrap()).collect()
    };
    let (one, half, zero) = (scores(1.0), scores(0.5), scores(0.0));
    assert!(zero.iter().all(|&s| s == 1.0), "{zero:?}");
    for (a, b) in one.iter().zip(&half) {
        assert!((a.sqrt() - b).abs() < 1e-12, "{a} {b}");
    }
}

#[test]
fn budget_extremes_give_extreme_allocations() {
    let (g, calib) = model_and_calib(4);
    for (budget, want) in [(8.0, 8), (2.0, 2)] {
        let (bits, _) = allocate_bits(
            &g,
            &calib,
            &QuantOptions::default(),
            &options(budget, Allocator::Lrp),
        )
        .unwrap();
        assert!(
            bits.values().all(|&(w, a)| w == want && a == want),
            "{budget}: {bits:?}"
        );
    }
    let mut below = options(1.5, Allocator::Lrp);
    below.abudget = 1.5;
    assert!(allocate_bits(&g, &calib, &QuantOptions::default(), &below).is_err());
}
