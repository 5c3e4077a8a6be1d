//! The integer dataflow on a quantized ViT block under every kernel tier (under qemu too, where
//! the NEON, SDOT and I8MM tiers run): the fused executor gives the node-by-node executor's
//! bits, at 1 and 2 threads, and the block does run fused (LayerNorm and Linear epilogues
//! writing integers, one attention step, residual adds in epilogues).

mod common;
mod exec_util;

use common::uniform;
use exec_util::vit_block::{D, F, T, block_graph, weights};
use exec_util::*;
use qvit_device::exec::{Executor, Profile};
use qvit_device::graph::{Graph, Op, Source, Value};
use qvit_device::quant::{ActQuant, IntData, symmetric_max};
use qvit_device::{Tensor, ValueId};
use qvit_kernels::{KernelSet, Tier};

/// Per-row symmetric int weights of `bits` for a `[n, k]` f32 matrix, and their scales.
fn quantize_rows(w: &[f32], k: usize, bits: u8) -> (IntData, Vec<f32>) {
    let m = symmetric_max(bits) as f32;
    let mut data = Vec::with_capacity(w.len());
    let mut scales = Vec::new();
    for row in w.chunks(k) {
        let s = row.iter().fold(1e-6f32, |a, v| a.max(v.abs())) / m;
        scales.push(s);
        data.extend(row.iter().map(|v| (v / s).round().clamp(-m, m) as i8));
    }
    (IntData { bits, data }, scales)
}

/// The block with every Linear a QLinear and both attention products QMatMuls (probabilities
/// on the log quantizer), at `bits` bits; ranges are fixed guesses (fidelity is not the
/// point, equal bits are). `attn` says which attention operands take run-time steps instead.
fn quantized_block(bits: u8, attn: AttnSteps) -> Graph {
    let mut g = block_graph(&weights());
    let sym = |scale: f32| ActQuant::Symmetric { bits, scale };
    for i in 0..g.nodes.len() {
        let node = g.nodes[i].clone();
        match node.op {
            Op::Linear => {
                let w = node.inputs[1];
                let (n, k) = (g.shape(w)[0], g.shape(w)[1]);
                let (ints, scales) = quantize_rows(g.const_data(w).unwrap(), k, bits);
                g.values[w as usize].source = Source::Int(ints);
                let s = g.values.len() as ValueId;
                g.values.push(Value {
                    name: format!("{}.w_scale", node.name),
                    shape: vec![n],
                    source: Source::Const(scales),
                });
                g.nodes[i].inputs = vec![node.inputs[0], w, s, node.inputs[2]];
                g.nodes[i].op = Op::QLinear {
                    act: uniform(bits, -3.0, 3.0),
                };
            }
            Op::MatMul { transpose_b } => {
                let probs = matches!(g.values[node.inputs[0] as usize].source,
                    Source::Node(j) if matches!(g.nodes[j].op, Op::Softmax { .. }));
                let a = match (probs, attn) {
                    (true, _) => ActQuant::Log2 { bits, scale: 1.0 },
                    (false, AttnSteps::Static) => uniform(bits, -2.5, 2.5),
                    (false, _) => ActQuant::Dynamic { bits },
                };
                let b = match attn {
                    AttnSteps::All => ActQuant::DynamicSymmetric { bits },
                    _ => sym(2.5 / symmetric_max(bits) as f32),
                };
                g.nodes[i].op = Op::QMatMul { transpose_b, a, b };
            }
            _ => {}
        }
    }
    g.validate().unwrap();
    g
}

/// Which attention operands take run-time steps.
#[derive(Clone, Copy, Debug, PartialEq)]
enum AttnSteps {
    /// None: every operand has a calibrated step.
    Static,
    /// Q, K and V.
    All,
    /// Q only (a step and zero point per token) against static K and V.
    QueryOnly,
}

fn bits_of(t: &[Tensor]) -> Vec<u32> {
    t.iter()
        .flat_map(|t| t.data.iter().map(|v| v.to_bits()))
        .collect()
}

#[test]
fn fused_block_equals_node_by_node_on_every_tier() {
    let x = Tensor::new(vec![1, T, D], rand_vec(T * D, 3, -2.0, 2.0)).unwrap();
    use AttnSteps::{All, QueryOnly, Static};
    let cases = [
        (8u8, Static),
        (4, Static),
        (8, All),
        (4, All),
        (4, QueryOnly),
    ];
    for (bits, attn) in cases {
        let g = quantized_block(bits, attn);
        for tier in Tier::ALL {
            let Ok(ks) = KernelSet::with_tier(tier) else {
                println!("SKIPPED tier {tier}: not supported here");
                continue;
            };
            let mut ex = Executor::new(g.clone(), ks).unwrap();
            let want = bits_of(&ex.run_observed(&[&x], &mut |_, _| {}).unwrap());
            for threads in [1, 2] {
                ex.set_threads(threads);
                let mut profile = Profile::default();
                let got = bits_of(&ex.run_profiled(&[&x], &mut profile).unwrap());
                assert_eq!(got, want, "W{bits}A{bits} tier {tier} {threads} threads");
                let ops: Vec<&str> = profile.steps().iter().map(|s| s.op.as_str()).collect();
                if attn != Static {
                    // Q, K and V reach the attention step in f32 (their steps need whole rows),
                    // which still runs as one step.
                    assert!(ops.iter().any(|o| o.starts_with("Attention")), "{ops:?}");
                    assert!(!ops.contains(&"Softmax"), "{ops:?}");
                    continue;
                }
                for op in [
                    "LayerNorm→int8",
                    "QLinear→int8",
                    "Attention→int8",
                    "QLinear+Add",
                    "QLinear+Gelu→int8",
                ] {
                    assert!(ops.contains(&op), "tier {tier}: no {op} step in {ops:?}");
                }
                assert_eq!(ops.len(), 7, "{ops:?}");
            }
            println!(
                "W{bits}A{bits} (run-time attention steps: {attn:?}) tier {tier}: fused = \
                 node by node ({F} hidden)"
            );
        }
    }
}
