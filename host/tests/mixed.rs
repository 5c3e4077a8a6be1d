//! Mixed precision on the default model: every allocator respects the budget (recomputed from the
//! quantized graph itself), the graph carries the allocated bits, lrp is deterministic, and the
//! extremes of the budget give the extreme allocations.

use qvit_device::{Graph, Op, Tensor};
use qvit_host::data::Dataset;
use qvit_host::lrp::scores::Statistic;
use qvit_host::prep::{PrepOptions, Preset};
use qvit_host::quant::mixed::{Allocator, MixedOptions, MixedReport, allocate_bits};
use qvit_host::quant::select::softmax_kl;
use qvit_host::quant::{QuantOptions, quantize};
use std::path::Path;

fn model_and_calib(n: usize) -> (Graph, Vec<Tensor>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fashion-vit");
    let prep = PrepOptions {
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
        lrp_gammas: vec![1.0],
        select_images: 0,
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

/// The knapsack sees the error model times score^γ: γ = 0 leaves the error model alone, and
/// the penalties at γ = 1 are those at γ = 0.5 times √score.
#[test]
fn gamma_tempers_the_scores() {
    let (g, calib) = model_and_calib(4);
    let report = |gamma: f64| -> MixedReport {
        let mut o = options(3.5, Allocator::Lrp);
        o.lrp_gammas = vec![gamma];
        allocate_bits(&g, &calib, &QuantOptions::default(), &o)
            .unwrap()
            .1
    };
    let (one, half, zero) = (report(1.0), report(0.5), report(0.0));
    for ((a, b), z) in one.layers.iter().zip(&half.layers).zip(&zero.layers) {
        let s = a.score.unwrap();
        for ((pa, pb), pz) in a.apenalty.iter().zip(&b.apenalty).zip(&z.apenalty) {
            assert!(
                (pa - pb * s.sqrt()).abs() <= 1e-12 * pa.abs().max(1e-30),
                "{}",
                a.name
            );
            assert!(
                (pa - pz * s).abs() <= 1e-12 * pa.abs().max(1e-30),
                "{}",
                a.name
            );
        }
        assert_eq!(a.apenalty.len(), 6);
        assert_eq!(a.wpenalty.len(), if a.wbits.is_some() { 6 } else { 0 });
    }
}

/// Run end to end, the proposals (three γ and uniform, for weights and activations) are judged
/// by the fidelity the quantized model really reaches (KL for this classifier): the winner is
/// the best trial, or uniform when its edge is noise, and `quantize` with the chosen bits
/// reproduces its KL and cosine.
#[test]
fn selection_takes_the_best_trial_and_it_is_what_quantize_builds() {
    let (g, calib) = model_and_calib(16);
    let base = QuantOptions {
        reparam: false,
        f16_consts: false,
        ..Default::default()
    };
    let mut o = options(3.0, Allocator::Lrp);
    o.lrp_gammas = vec![0.5, 1.0, 2.0];
    o.select_images = 12;
    let (bits, r) = allocate_bits(&g, &calib, &base, &o).unwrap();
    assert!(r.trials.len() >= 2, "{:?}", r.trials);
    assert_eq!(r.selection_images, 12);
    // The Fashion ViT is a classifier: judged by KL, reported with the cosine too.
    assert_eq!(r.selection_metric, "kl");
    let best = r.trials.iter().map(|t| t.kl).fold(f64::MAX, f64::min);
    let uniform = r
        .trials
        .iter()
        .find(|t| is_uniform(&t.weights) && is_uniform(&t.activations))
        .expect("uniform is always tried");
    assert!(best <= uniform.kl);
    let chosen = r
        .trials
        .iter()
        .find(|t| t.weights == r.weights_from && t.activations == r.activations_from)
        .unwrap();
    // The best trial, or uniform when the best one's edge is within the calibration noise.
    let adv = r.advantage.clone().unwrap();
    if adv.kept {
        assert_eq!(chosen.kl, best);
        assert!(adv.mean > 2.0 * adv.standard_error);
    } else {
        assert_eq!(chosen.kl, uniform.kl);
    }
    assert!((uniform.kl - best - adv.mean).abs() <= 1e-12, "{adv:?}");
    let want = chosen.kl;

    let quantized = quantize(
        &g,
        &calib,
        &QuantOptions {
            layer_bits: bits,
            ..base.clone()
        },
    )
    .unwrap()
    .graph;
    let run = |graph: Graph| qvit_host::quant::select::outputs(graph, &calib[..12]).unwrap();
    let (yq, yf) = (run(quantized), run(g.clone()));
    let mean = |f: fn(&[f32], &[f32]) -> f64| {
        yq.iter().zip(&yf).map(|(q, f32)| f(q, f32)).sum::<f64>() / 12.0
    };
    let cosine = mean(qvit_host::compare::cosine);
    let kl = mean(|q, f32| softmax_kl(f32, q));
    assert!((kl - want).abs() <= 1e-9 * want, "{kl} vs {want}");
    assert!(
        (cosine - chosen.cosine).abs() < 1e-9,
        "{cosine} vs {}",
        chosen.cosine
    );

    let (_, u) = allocate_bits(&g, &calib, &base, &options(3.0, Allocator::Uniform)).unwrap();
    assert!(u.trials.is_empty() && u.weights_from == "uniform");
}

fn is_uniform(label: &str) -> bool {
    label.split(" = ").any(|l| l == "uniform")
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

/// The KL divergence matches its closed form on two-class logits, is zero for equal and
/// shift-equal logits (softmax ignores a constant), and positive otherwise.
#[test]
fn softmax_kl_matches_the_closed_form() {
    let (p, q) = ([0.0f32, 1.0], [0.5f32, -0.5]);
    let sm = |x: &[f32; 2]| {
        let e = [(x[0] as f64).exp(), (x[1] as f64).exp()];
        [e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1])]
    };
    let (a, b) = (sm(&p), sm(&q));
    let want = a[0] * (a[0] / b[0]).ln() + a[1] * (a[1] / b[1]).ln();
    assert!((softmax_kl(&p, &q) - want).abs() < 1e-12);
    assert!(softmax_kl(&p, &[10.0, 11.0]).abs() < 1e-12);
    assert!(softmax_kl(&q, &p) > 0.0);
}

/// The best trial is kept only when its paired per-image advantage over uniform clears two
/// standard errors: a constant gain does, an equal mean gain drowned in per-image swings does
/// not, and uniform itself being best keeps uniform.
#[test]
fn choose_keeps_the_best_trial_only_beyond_the_noise() {
    use qvit_host::quant::select::{Fidelity, choose};
    let trial = |cos: Vec<f64>| Fidelity {
        kls: cos.iter().map(|c| 1.0 - c).collect(),
        cosines: cos,
    };
    let uniform = trial(vec![0.5, 0.6, 0.7, 0.8]);
    let steady = trial(vec![0.52, 0.62, 0.72, 0.82]);
    let noisy = trial(vec![0.9, 0.2, 1.1, 0.48]); // the same +0.02 mean gain
    for classifier in [false, true] {
        let (i, a) = choose(&[steady.clone(), uniform.clone()], 1, classifier);
        assert_eq!((i, a.kept), (0, true));
        assert!((a.mean - 0.02).abs() < 1e-12 && a.standard_error < 1e-12);
        let (i, a) = choose(&[noisy.clone(), uniform.clone()], 1, classifier);
        assert_eq!((i, a.kept), (1, false), "{a:?}");
        assert!((a.mean - 0.02).abs() < 1e-12 && a.standard_error > 0.1);
        let (i, a) = choose(&[uniform.clone(), trial(vec![0.4; 4])], 0, classifier);
        assert_eq!((i, a.kept), (0, false));
    }
}
