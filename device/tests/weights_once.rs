//! Quantized weights are held once after loading: a loaded [`Model`] keeps only the packed
//! panels (checked against the kernels' own packing and against an executor that keeps the
//! canonical weights), runs the same bits, and its graph can no longer be encoded or planned.

mod common;

use common::{qlinear_chain, weights};
use qvit_device::bundle::Bundle;
use qvit_device::exec::{Executor, WeightMemory};
use qvit_device::model::Model;
use qvit_device::{Graph, Op, Source, Tensor};
use qvit_kernels::KernelSet;

/// W8A8, W4A8, W4A4 and W8A8 again, with sizes that leave partial panels.
const LAYERS: [(usize, u8, u8); 4] = [(48, 8, 8), (24, 4, 8), (33, 4, 4), (16, 8, 8)];

fn input(g: &Graph) -> Tensor {
    let shape = g.shape(g.inputs[0]).to_vec();
    let n = shape.iter().product();
    Tensor::new(shape, weights(n, 99).iter().map(|v| 4.0 * v).collect()).unwrap()
}

fn load(g: &Graph) -> (tempfile::TempDir, Model) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.qvit");
    Bundle::new("chain", g.clone()).write_file(&path).unwrap();
    let model = Model::load(&path).unwrap();
    (dir, model)
}

fn weight_ids(g: &Graph) -> Vec<(u32, u8)> {
    g.nodes
        .iter()
        .filter(|n| matches!(n.op, Op::QLinear { .. }))
        .map(|n| (n.inputs[1], g.int_data(n.inputs[1]).unwrap().bits))
        .collect()
}

fn by_bits(m: &[WeightMemory], bits: u8) -> WeightMemory {
    *m.iter().find(|m| m.bits == bits).unwrap()
}

#[test]
fn a_loaded_model_keeps_only_the_packed_weights() {
    let g = qlinear_chain(5, 40, &LAYERS);
    let ks = KernelSet::detect();
    let (_dir, mut model) = load(&g);
    for (id, bits) in weight_ids(&g) {
        assert_eq!(
            model.graph().values[id as usize].source,
            Source::PackedInt { bits }
        );
    }
    let mut kept = Executor::new(g.clone(), ks).unwrap();
    let (loaded, held) = (model.weight_memory(), kept.weight_memory());
    assert_eq!(loaded.iter().map(|m| m.bits).collect::<Vec<_>>(), [4, 8]);
    for bits in [4, 8] {
        let layers: Vec<usize> = (0..LAYERS.len()).filter(|&i| LAYERS[i].1 == bits).collect();
        let params: u64 = layers
            .iter()
            .map(|&i| g.int_data(g.nodes[i].inputs[1]).unwrap().data.len() as u64)
            .sum();
        let (l, h) = (by_bits(&loaded, bits), by_bits(&held, bits));
        assert_eq!((l.layers, l.params), (layers.len(), params));
        assert_eq!(l.canonical_bytes, 0, "{bits}-bit weights still held");
        assert_eq!(h.canonical_bytes, params, "one byte per canonical value");
        assert_eq!(
            (l.packed_bytes, l.scale_bytes),
            (h.packed_bytes, h.scale_bytes)
        );
        assert!(l.packed_bytes >= params * u64::from(bits) / 8);
        assert_eq!(l.resident_bytes(), l.packed_bytes + l.scale_bytes);
    }
    // The W8A8 layers' panels are exactly what the kernels pack from the canonical weights.
    let panels: usize = [0, 3]
        .iter()
        .map(|&i| {
            let w = g.int_data(g.nodes[i].inputs[1]).unwrap();
            let (n, k) = (
                g.shape(g.nodes[i].inputs[1])[0],
                g.shape(g.nodes[i].inputs[1])[1],
            );
            ks.pack_w8a8(&w.data, n, k).unwrap().resident_bytes()
        })
        .sum();
    assert_eq!(by_bits(&loaded, 8).packed_bytes, panels as u64);

    let x = input(&g);
    let want = kept.run(&[&x]).unwrap();
    assert_eq!(model.run(&x).unwrap(), want);
    // The node-by-node plan of observed runs is made later, from the packed layers alone.
    let mut released = Executor::new_releasing_weights(g.clone(), ks).unwrap();
    let mut seen = 0;
    let observed = released.run_observed(&[&x], &mut |_, _| seen += 1).unwrap();
    assert_eq!(observed, want);
    assert_eq!(seen, g.nodes.len());
}

#[test]
fn a_planned_graph_without_weights_is_refused_by_the_encoder_and_the_planner() {
    let (_dir, model) = load(&qlinear_chain(3, 16, &LAYERS[..2]));
    let g = model.graph().clone();
    g.validate().unwrap();
    let encoded = Bundle::new("again", g.clone()).encode().unwrap_err();
    assert!(encoded.to_string().contains("packed form"), "{encoded}");
    let planned = Executor::new(g, KernelSet::detect()).err().unwrap();
    assert!(planned.to_string().contains("packed form"), "{planned}");
}

#[test]
fn a_weight_read_by_two_layers_leaves_the_graph_after_both_are_packed() {
    // fc0 and fc1 read the same [32, 32] weight value.
    let mut g = qlinear_chain(4, 32, &[(32, 8, 8), (32, 8, 8)]);
    let shared = g.nodes[0].inputs[1];
    g.nodes[1].inputs[1] = shared;
    g.validate().unwrap();
    let ks = KernelSet::detect();
    let x = input(&g);
    let want = Executor::new(g.clone(), ks).unwrap().run(&[&x]).unwrap();
    let mut released = Executor::new_releasing_weights(g, ks).unwrap();
    assert_eq!(released.run(&[&x]).unwrap(), want);
    let mem = released.weight_memory();
    assert_eq!(
        (mem.len(), mem[0].layers, mem[0].canonical_bytes),
        (1, 2, 0)
    );
    assert_eq!(
        released.graph().values[shared as usize].source,
        Source::PackedInt { bits: 8 }
    );
}
