//! Relevance propagation: LRP-0 equals gradient × input on a piecewise-linear net (closed-form
//! gradient), relevance is conserved exactly through every conserving rule, the drift on real
//! models is bounded, passes are deterministic, and an op use without a rule is an error.

use qvit_device::graph::{BinaryOp, GeluKind};
use qvit_device::{Graph, Node, Op, Source, Tensor, Value};
use qvit_host::fixtures::SeededRng;
use qvit_host::fixtures::load_weightless;
use qvit_host::import::{import_path, import_proto};
use qvit_host::lrp::scores::{Statistic, layer_scores};
use qvit_host::lrp::{AttnRule, Lrp, LrpOptions, Seed};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A graph under construction: values are added in order, nodes in execution order.
struct Builder {
    g: Graph,
    rng: SeededRng,
}

impl Builder {
    fn new(input: Vec<usize>, seed: u64) -> (Builder, u32) {
        let mut b = Builder {
            g: Graph::default(),
            rng: SeededRng::new(seed),
        };
        let x = b.value("x", input, Source::Input(0));
        b.g.inputs.push(x);
        (b, x)
    }

    fn value(&mut self, name: &str, shape: Vec<usize>, source: Source) -> u32 {
        self.g.values.push(Value {
            name: name.into(),
            shape,
            source,
        });
        (self.g.values.len() - 1) as u32
    }

    fn constant(&mut self, shape: Vec<usize>, std: f32) -> u32 {
        let n = shape.iter().product();
        let data = self.rng.normals(n, std);
        self.value("c", shape, Source::Const(data))
    }

    fn node(&mut self, op: Op, inputs: Vec<u32>, shape: Vec<usize>) -> u32 {
        let out = self.value(
            &format!("v{}", self.g.values.len()),
            shape,
            Source::Node(self.g.nodes.len()),
        );
        self.g.nodes.push(Node {
            name: format!("n{}", self.g.nodes.len()),
            op,
            inputs,
            output: out,
        });
        out
    }

    fn linear(&mut self, x: u32, n: usize, bias: bool) -> u32 {
        let mut shape = self.g.shape(x).to_vec();
        let k = *shape.last().unwrap();
        let w = self.constant(vec![n, k], 1.0 / (k as f32).sqrt());
        let mut inputs = vec![x, w];
        if bias {
            inputs.push(self.constant(vec![n], 0.5));
        }
        *shape.last_mut().unwrap() = n;
        self.node(Op::Linear, inputs, shape)
    }

    fn finish(mut self, out: u32) -> Graph {
        self.g.outputs.push(out);
        self.g
    }
}

fn input(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape.to_vec(), SeededRng::new(seed).normals(n, 1.0)).unwrap()
}

fn lrp0() -> LrpOptions {
    LrpOptions {
        eps: 0.0,
        attn: AttnRule::AttnLrp,
        gradient: false,
        weight_noise: false,
    }
}

/// On `Linear → ReLU → Linear` with biases, LRP-0 is gradient × input, and the gradient has
/// the closed form `W2[t] ⊙ 1[h > 0] · W1`.
#[test]
fn lrp0_is_gradient_times_input_on_linear_relu() {
    for seed in 0..20 {
        let (mut b, x) = Builder::new(vec![1, 7], seed);
        let h = b.linear(x, 9, true);
        let r = b.node(Op::Relu, vec![h], vec![1, 9]);
        let y = b.linear(r, 4, true);
        let g = b.finish(y);
        let w1 = g.const_data(g.nodes[0].inputs[1]).unwrap().to_vec();
        let w2 = g.const_data(g.nodes[2].inputs[1]).unwrap().to_vec();
        let xin = input(&[1, 7], 100 + seed);

        let mut lrp = Lrp::new(g.clone(), lrp0()).unwrap();
        let rel = lrp.run(&xin, Seed::Logit(None)).unwrap();
        let t = rel.target.unwrap();
        let logits = &rel.outputs[0].data;
        assert_eq!(t, qvit_host::lrp::argmax(logits));

        let mut ex =
            qvit_device::exec::Executor::new(g, qvit_kernels::KernelSet::detect()).unwrap();
        let mut hidden = Vec::new();
        ex.run_observed(&[&xin], &mut |id, d| {
            if id == h {
                hidden = d.to_vec();
            }
        })
        .unwrap();
        for i in 0..7 {
            let grad: f32 = (0..9)
                .filter(|&j| hidden[j] > 0.0)
                .map(|j| w2[t * 9 + j] * w1[j * 7 + i])
                .sum();
            let want = xin.data[i] * grad;
            let got = rel.input.data[i];
            assert!(
                (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "seed {seed} input {i}: LRP-0 {got} vs gradient × input {want}"
            );
        }
    }
}

/// Without biases and with ε = 0, every rule below conserves relevance exactly: Linear, Add,
/// LayerNorm (β = 0, σ held constant), Transpose, a product of two activations (uniform rule),
/// Reshape, GELU (identity rule), Slice/Concat and Gather. Every cut carries the target logit.
#[test]
fn conserving_rules_conserve_relevance_exactly() {
    for seed in 0..10 {
        let (mut b, x) = Builder::new(vec![1, 4, 6], seed);
        let a = b.linear(x, 6, false);
        let c = b.linear(x, 6, false);
        let s = b.node(Op::Binary(BinaryOp::Add), vec![a, c], vec![1, 4, 6]);
        let gamma = b.constant(vec![6], 1.0);
        let beta = b.value("beta", vec![6], Source::Const(vec![0.0; 6]));
        let n = b.node(
            Op::LayerNorm { eps: 1e-5 },
            vec![s, gamma, beta],
            vec![1, 4, 6],
        );
        let t = b.node(
            Op::Transpose {
                perm: vec![0, 2, 1],
            },
            vec![n],
            vec![1, 6, 4],
        );
        let m = b.node(Op::MatMul { transpose_b: false }, vec![n, t], vec![1, 4, 4]);
        let r = b.node(Op::Reshape, vec![m], vec![1, 16]);
        let ge = b.node(Op::Gelu(GeluKind::Erf), vec![r], vec![1, 16]);
        let slice = |start, end| Op::Slice {
            axis: 1,
            start,
            end,
            step: 1,
        };
        let lo = b.node(slice(0, 8), vec![ge], vec![1, 8]);
        let hi = b.node(slice(8, 16), vec![ge], vec![1, 8]);
        let cat = b.node(Op::Concat { axis: 1 }, vec![hi, lo], vec![1, 16]);
        let gather = Op::Gather {
            axis: 1,
            indices: (0..16).rev().collect(),
            indices_shape: vec![16],
        };
        let gt = b.node(gather, vec![cat], vec![1, 16]);
        let y = b.linear(gt, 3, false);
        let g = b.finish(y);
        let mut lrp = Lrp::new(g, lrp0()).unwrap();
        let rel = lrp
            .run(&input(&[1, 4, 6], 50 + seed), Seed::Logit(None))
            .unwrap();
        assert!(rel.cuts.len() >= 6, "cuts: {:?}", rel.cuts);
        for (name, sum) in &rel.cuts {
            let drift = (sum - rel.total).abs() / rel.total.abs().max(1e-3);
            assert!(
                drift < 2e-4,
                "seed {seed}: Σ R at {name} = {sum}, logit {}",
                rel.total
            );
        }
    }
}

/// A use of an op that no rule covers is refused before any pass.
#[test]
fn op_without_a_rule_is_an_error() {
    let (mut b, x) = Builder::new(vec![1, 3], 1);
    let p = b.node(Op::Binary(BinaryOp::Pow), vec![x, x], vec![1, 3]);
    let g = b.finish(p);
    let err = Lrp::new(g, LrpOptions::default())
        .err()
        .expect("Pow(x, x) has no rule");
    assert!(format!("{err:#}").contains("no relevance rule"), "{err:#}");
}

fn fashion_inputs(n: usize) -> (Graph, Vec<Tensor>) {
    let dir = repo().join("models/fashion-vit");
    let prep = qvit_host::prep::PrepOptions {
        preset: Some(qvit_host::prep::Preset::FashionMnist),
        ..Default::default()
    };
    let b =
        qvit_host::source::float_bundle(&dir.join("fashion_vit.onnx"), None, &prep, None).unwrap();
    let pre = b.header.preprocess.clone().unwrap();
    let ds = qvit_host::data::Dataset::open(&dir.join("test1k-images-idx3-ubyte")).unwrap();
    let xs = (0..n).map(|i| ds.sample(i, &pre).unwrap().input).collect();
    (b.graph, xs)
}

/// On the default model and the shared MNIST ViT: the relevance at every cut stays within a bounded fraction of the
/// logit (biases, the position embedding and ε absorb the rest), reaches the logit at the head,
/// and two passes give bit-identical results.
#[test]
fn real_model_drift_is_bounded_and_passes_are_deterministic() {
    let (g, xs) = fashion_inputs(8);
    drift_is_bounded("fashion", g, &xs);
    let mnist = repo().join("../shared");
    let imp = import_path(&mnist.join("models/vit-mnist/vit_mnist.onnx"), None).unwrap();
    let ds =
        qvit_host::data::Dataset::open(&mnist.join("data/mnist/t10k-images-idx3-ubyte")).unwrap();
    let pre = qvit_device::Preprocess::mnist();
    let xs: Vec<Tensor> = (0..8).map(|i| ds.sample(i, &pre).unwrap().input).collect();
    drift_is_bounded("mnist", imp.graph, &xs);
}

fn drift_is_bounded(name: &str, g: Graph, xs: &[Tensor]) {
    let mut lrp = Lrp::new(g, LrpOptions::default()).unwrap();
    let mut worst: f64 = 1.0;
    for x in xs {
        let a = lrp.run(x, Seed::Logit(None)).unwrap();
        let b = lrp.run(x, Seed::Logit(None)).unwrap();
        assert_eq!(a.input.data, b.input.data, "relevance is not deterministic");
        let ratios: Vec<f64> = a.cuts.iter().map(|(_, s)| s / a.total).collect();
        assert!((ratios.last().unwrap() - 1.0).abs() < 1e-3, "{ratios:?}");
        for r in &ratios {
            assert!(
                (0.2..=1.8).contains(r),
                "relevance drifted to {r} of the logit: {ratios:?}"
            );
            worst = worst.min(*r).min(2.0 - r);
        }
    }
    eprintln!("{name}: worst cut ratio {worst:.3}");
}

/// CP-LRP sends no relevance through the attention probabilities, so QKᵀ scores 0, while
/// AttnLRP gives it a share.
#[test]
fn cp_rule_stops_relevance_at_attention_probabilities() {
    let (g, xs) = fashion_inputs(4);
    let qk = |attn| {
        let opts = LrpOptions {
            attn,
            ..Default::default()
        };
        let mut lrp = Lrp::new(g.clone(), opts).unwrap();
        let s = layer_scores(
            &mut lrp,
            &xs,
            Seed::Logit(None),
            Statistic::AbsIn,
            |_, _| {},
        )
        .unwrap();
        s.by_kind["qk"]
    };
    assert_eq!(qk(AttnRule::Cp), 0.0);
    assert!(qk(AttnRule::AttnLrp) > 0.01);
}

/// Every op of the DeiT, Swin and dynamo-exported ViT fixtures has a rule; relevance is finite
/// and the head carries the seeded logit.
#[test]
fn fixtures_of_three_architectures_have_rules_for_every_op() {
    for name in ["deit_tiny_op17", "swin_tiny_op17", "vit_dynamo_op18"] {
        let dir = repo().join("models/fixtures");
        let path = dir.join(format!("{name}.onnx"));
        // DeiT's weights are not committed (see models/fixtures/README.md): synthesise them.
        let imp = if name.starts_with("deit") {
            import_proto(&load_weightless(&path, 17).unwrap(), None).unwrap()
        } else {
            import_path(&path, None).unwrap()
        };
        let x = qvit_device::npy::read(dir.join(format!("{name}.input_real.npy"))).unwrap();
        let mut lrp = Lrp::new(imp.graph, LrpOptions::default()).unwrap();
        let r = lrp.run(&x, Seed::Logit(None)).unwrap();
        assert!(r.input.data.iter().all(|v| v.is_finite()), "{name}");
        assert!(r.layers.iter().any(|l| l.abs_in > 0.0), "{name}");
        let last = r.cuts.last().unwrap().1 / r.total;
        assert!((last - 1.0).abs() < 1e-3, "{name}: {last}");
        eprintln!(
            "{name}: {} layers, input Σ R / logit = {:.3}",
            r.layers.len(),
            r.cuts[0].1 / r.total
        );
    }
}

/// The plain-gradient mode is the model's true gradient: `Σ R ⊙ m = ⟨∇f, x ⊙ m⟩` matches
/// central finite differences along `x ⊙ m` for random masks `m`, on the default model (GELU,
/// LayerNorm with σ's gradient, softmax, both attention products).
#[test]
fn gradient_mode_matches_finite_differences() {
    let (g, xs) = fashion_inputs(3);
    let opts = LrpOptions {
        gradient: true,
        ..Default::default()
    };
    let mut lrp = Lrp::new(g.clone(), opts).unwrap();
    let mut ex = qvit_device::exec::Executor::new(g, qvit_kernels::KernelSet::detect()).unwrap();
    let mut rng = SeededRng::new(9);
    for x in &xs {
        let r = lrp.run(x, Seed::Logit(None)).unwrap();
        let t = r.target.unwrap();
        for _ in 0..4 {
            let m: Vec<f32> = (0..x.data.len()).map(|_| rng.normal()).collect();
            let analytic: f64 = r
                .input
                .data
                .iter()
                .zip(&m)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
            let h = 1e-2f32;
            let mut at = |s: f32| {
                let d: Vec<f32> = x
                    .data
                    .iter()
                    .zip(&m)
                    .map(|(&v, &k)| v + s * h * v * k)
                    .collect();
                let xt = Tensor::new(x.shape.clone(), d).unwrap();
                ex.run(&[&xt]).unwrap()[0].data[t] as f64
            };
            let fd = (at(1.0) - at(-1.0)) / (2.0 * h as f64);
            assert!(
                (analytic - fd).abs() <= 2e-2 * (1.0 + fd.abs()),
                "gradient {analytic} vs finite differences {fd}"
            );
        }
    }
}

/// Layer kinds come from the graph's structure: every transformer block of three exporters'
/// naming styles (timm DeiT, lucidrains' MNIST ViT, Hugging Face DINOv2) has one attention input
/// projection set, both attention products, one output projection, fc1 and fc2.
#[test]
fn every_block_has_each_layer_kind_once() {
    use qvit_host::graph::kinds::{block_of, kind};
    let deit = repo().join("models/fixtures/deit_tiny_op17.onnx");
    let graphs = [
        import_proto(&load_weightless(&deit, 17).unwrap(), None)
            .unwrap()
            .graph,
        import_path(
            &repo().join("../shared/models/vit-mnist/vit_mnist.onnx"),
            None,
        )
        .unwrap()
        .graph,
        import_path(
            &repo().join("../shared/models/vit-s14-dinov2/vit_s14_backbone.onnx"),
            None,
        )
        .unwrap()
        .graph,
    ];
    for g in &graphs {
        let mut blocks: std::collections::BTreeMap<usize, Vec<&str>> = Default::default();
        for (j, n) in g.nodes.iter().enumerate() {
            if qvit_host::lrp::is_layer(&n.op)
                && let Some(b) = block_of(&n.name)
            {
                blocks.entry(b).or_default().push(kind(g, j));
            }
        }
        assert!(blocks.len() >= 2);
        for (b, mut kinds) in blocks {
            kinds.sort_unstable();
            let qkv_or_split =
                kinds.contains(&"qkv") || ["q", "k", "v"].iter().all(|k| kinds.contains(k));
            assert!(qkv_or_split, "block {b}: {kinds:?}");
            kinds.retain(|k| !["qkv", "q", "k", "v"].contains(k));
            assert_eq!(kinds, ["av", "fc1", "fc2", "proj", "qk"], "block {b}");
        }
    }
}

/// The per-token seed gives every output token one unit of relevance, conserved through a
/// bias-free Linear to the input.
#[test]
fn token_seed_gives_each_token_one_unit() {
    let (mut b, x) = Builder::new(vec![1, 4, 6], 3);
    let y = b.linear(x, 3, false);
    let g = b.finish(y);
    let mut lrp = Lrp::new(g, lrp0()).unwrap();
    let r = lrp.run(&input(&[1, 4, 6], 4), Seed::Tokens).unwrap();
    assert_eq!(r.total, 4.0);
    let sum: f64 = r.input.data.iter().map(|&v| v as f64).sum();
    assert!((sum - 4.0).abs() < 1e-4, "{sum}");
    for row in r.input.data.chunks(6) {
        let s: f32 = row.iter().sum();
        assert!((s - 1.0).abs() < 1e-4, "token relevance {s}");
    }
}

/// The noise statistics have closed forms on one Linear seeded at logit `t`: `g_y = e_t`, so
/// `act_noise = mean(x²)·‖W_t‖²` and `weight_noise = mean(W²)·‖x‖²`.
#[test]
fn noise_statistics_match_their_closed_forms() {
    let (mut b, x) = Builder::new(vec![1, 5], 8);
    let y = b.linear(x, 3, true);
    let g = b.finish(y);
    let w = g.const_data(g.nodes[0].inputs[1]).unwrap().to_vec();
    let opts = LrpOptions {
        weight_noise: true,
        ..lrp0()
    };
    let mut lrp = Lrp::new(g, opts).unwrap();
    let xin = input(&[1, 5], 9);
    let r = lrp.run(&xin, Seed::Logit(Some(2))).unwrap();
    let sq = |v: &[f32]| v.iter().map(|&a| (a as f64).powi(2)).sum::<f64>();
    let act = sq(&xin.data) / 5.0 * sq(&w[10..15]);
    let weight = sq(&w) / 15.0 * sq(&xin.data);
    let l = &r.layers[0];
    assert!(
        (l.act_noise - act).abs() <= 1e-5 * act,
        "{} vs {act}",
        l.act_noise
    );
    assert!(
        (l.weight_noise - weight).abs() <= 1e-5 * weight,
        "{} vs {weight}",
        l.weight_noise
    );
}

/// The attention error model finds `softmax(c·QKᵀ)·V` behind every QKᵀ of the DeiT and
/// dynamo-exported ViT fixtures and of the default model: the probabilities it recomputes from
/// the recorded Q and K with the factor `c` it found are those the model computed.
#[test]
fn every_attention_logit_product_leads_to_its_attention() {
    use qvit_host::quant::layer_error::{logits_path, record_operands};
    let dir = repo().join("models/fixtures");
    let input = |name: &str| qvit_device::npy::read(dir.join(format!("{name}.input_real.npy")));
    let deit = import_proto(
        &load_weightless(&dir.join("deit_tiny_op17.onnx"), 17).unwrap(),
        None,
    )
    .unwrap()
    .graph;
    let vit = import_path(&dir.join("vit_dynamo_op18.onnx"), None)
        .unwrap()
        .graph;
    let (fashion, xs) = fashion_inputs(1);
    let models = [
        (deit, input("deit_tiny_op17").unwrap()),
        (vit, input("vit_dynamo_op18").unwrap()),
        (fashion, xs[0].clone()),
    ];
    for (g, x) in models {
        let qk: Vec<usize> = (0..g.nodes.len())
            .filter(|&j| qvit_host::graph::kinds::kind(&g, j) == "qk")
            .collect();
        assert!(!qk.is_empty());
        for j in qk {
            let name = &g.nodes[j].name;
            let (c, av) = logits_path(&g, j).unwrap_or_else(|| panic!("{name}: no attention"));
            assert_eq!(qvit_host::graph::kinds::kind(&g, av), "av", "{name}");
            let ops = record_operands(&g, &[j, av], std::slice::from_ref(&x)).unwrap();
            let ((q, k), (probs, _)) = (&ops[&j][0], &ops[&av][0]);
            let (qs, ks) = (g.shape(g.nodes[j].inputs[0]), g.shape(g.nodes[j].inputs[1]));
            let (m, d) = (qs[qs.len() - 2], qs[qs.len() - 1]);
            let Op::MatMul { transpose_b } = g.nodes[j].op else {
                panic!("{name} is not a MatMul")
            };
            let n = if transpose_b {
                ks[ks.len() - 2]
            } else {
                ks[ks.len() - 1]
            };
            let mut worst = 0.0f64;
            for (h, (qh, kh)) in q.chunks(m * d).zip(k.chunks(n * d)).enumerate() {
                for i in 0..m {
                    let logit = |t: usize| -> f64 {
                        let kv = |l: usize| kh[if transpose_b { t * d + l } else { l * n + t }];
                        c as f64
                            * (0..d)
                                .map(|l| qh[i * d + l] as f64 * kv(l) as f64)
                                .sum::<f64>()
                    };
                    let top = (0..n).map(logit).fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = (0..n).map(|t| (logit(t) - top).exp()).sum();
                    for t in 0..n {
                        let p = (logit(t) - top).exp() / sum;
                        worst = worst.max((p - probs[(h * m + i) * n + t] as f64).abs());
                    }
                }
            }
            assert!(
                worst < 1e-4,
                "{name}: probabilities differ by {worst} (c = {c})"
            );
        }
    }
}
