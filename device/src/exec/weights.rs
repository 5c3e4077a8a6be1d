//! The weights of quantized Linear layers: packed once per layer before planning, optionally
//! moved out of the graph as they are packed, and what they keep in memory.

use super::plan::{Kernel, kernel_for};
use super::quantized::QLinearPlan;
use crate::bit_packed::BitPackedWeights;
use crate::graph::{Graph, Node, Op, Source, ValueId};
use qvit_kernels::KernelSet;
use std::sync::Arc;

/// The memory the quantized Linear weights of one bit width hold in a planned executor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WeightMemory {
    /// Weight bit width.
    pub bits: u8,
    /// Quantized Linear layers with weights of this width.
    pub layers: usize,
    /// Weight values of those layers.
    pub params: u64,
    /// Bytes of the kernels' packed panels and column sums
    /// ([`qvit_kernels::gemm::PackedW8::resident_bytes`]).
    pub packed_bytes: u64,
    /// Bytes of the per-channel factors of the dequantizing epilogue.
    pub scale_bytes: u64,
    /// Bytes of canonical weights the graph still holds beside the packed ones (one byte per
    /// value; 0 once [`super::Executor::new_releasing_weights`] has moved them out).
    pub canonical_bytes: u64,
}

impl WeightMemory {
    /// Every byte these weights keep resident.
    pub fn resident_bytes(&self) -> u64 {
        self.packed_bytes + self.scale_bytes + self.canonical_bytes
    }
}

/// Whether node `node` is a quantized Linear that can be packed before planning: every value
/// it names exists and its weight is an integer constant the graph or `kept` holds. Others are
/// left to [`super::plan::plan`], which reports what is wrong with them in its order of checks.
fn packable(graph: &Graph, kept: &BitPackedWeights, node: &Node) -> bool {
    let nv = graph.values.len();
    matches!(node.op, Op::QLinear { .. })
        && (node.output as usize) < nv
        && node.inputs.iter().all(|&v| (v as usize) < nv)
        && node
            .inputs
            .get(1)
            .is_some_and(|&w| graph.int_data(w).is_some() || kept.contains(w))
}

/// Packs every packable quantized Linear (by node; `None` for other nodes and for layers whose
/// packing fails, which planning then reports). With `release`, a weight leaves the graph
/// ([`Source::PackedInt`]) as soon as its last reader is packed, so loading never holds every
/// layer's canonical weights beside every layer's panels. A weight still bit-packed in `kept`
/// is unpacked into the graph for one layer's packing at a time and leaves `kept` after its
/// last reader, so at most one layer is ever held at a byte per value.
pub(super) fn pack_linears(
    graph: &mut Graph,
    ks: &KernelSet,
    release: bool,
    mut kept: BitPackedWeights,
) -> Vec<Option<Arc<QLinearPlan>>> {
    let mut readers = vec![0usize; graph.values.len()];
    for node in &graph.nodes {
        if packable(graph, &kept, node) {
            readers[node.inputs[1] as usize] += 1;
        }
    }
    let mut linears = Vec::with_capacity(graph.nodes.len());
    for i in 0..graph.nodes.len() {
        if !packable(graph, &kept, &graph.nodes[i]) {
            linears.push(None);
            continue;
        }
        let w = graph.nodes[i].inputs[1];
        let unpacked = graph.int_data(w).is_none();
        if unpacked && let Some(d) = kept.unpack(w) {
            graph.values[w as usize].source = Source::Int(d);
        }
        // On failure an unpacked weight stays in the graph, for planning to report the error.
        let plan = match kernel_for(graph, ks, i) {
            Ok(Kernel::QLinear(p)) => p,
            _ => {
                linears.push(None);
                continue;
            }
        };
        linears.push(Some(plan));
        let w = w as usize;
        readers[w] -= 1;
        if readers[w] == 0 {
            kept.remove(w as ValueId);
        }
        if ((release && readers[w] == 0) || unpacked)
            && let Source::Int(d) = &graph.values[w].source
        {
            graph.values[w].source = Source::PackedInt { bits: d.bits };
        }
    }
    linears
}

/// What the packed layers of `linears` (by node of `graph`) and the canonical weights still in
/// `graph` hold, one entry per weight bit width, narrowest first.
pub(super) fn memory(graph: &Graph, linears: &[Option<Arc<QLinearPlan>>]) -> Vec<WeightMemory> {
    let mut by_bits: Vec<WeightMemory> = Vec::new();
    for (node, plan) in graph.nodes.iter().zip(linears) {
        let Some(p) = plan else { continue };
        let Some(bits) = graph.int_bits(node.inputs[1]) else {
            continue;
        };
        let e = entry(&mut by_bits, bits);
        e.layers += 1;
        e.params += (p.n() * p.k()) as u64;
        e.packed_bytes += p.packed_bytes() as u64;
        e.scale_bytes += p.epilogue_bytes() as u64;
    }
    // A weight read by several layers is held once.
    let mut seen = vec![false; graph.values.len()];
    for (node, plan) in graph.nodes.iter().zip(linears) {
        if plan.is_none() {
            continue;
        }
        let w = node.inputs[1] as usize;
        if let Source::Int(d) = &graph.values[w].source
            && !std::mem::replace(&mut seen[w], true)
        {
            entry(&mut by_bits, d.bits).canonical_bytes += d.data.capacity() as u64;
        }
    }
    by_bits
}

/// The entry of `bits` in `by_bits` (sorted by bits), added when missing.
fn entry(by_bits: &mut Vec<WeightMemory>, bits: u8) -> &mut WeightMemory {
    let k = match by_bits.binary_search_by_key(&bits, |m| m.bits) {
        Ok(k) => k,
        Err(k) => {
            let m = WeightMemory {
                bits,
                ..Default::default()
            };
            by_bits.insert(k, m);
            k
        }
    };
    &mut by_bits[k]
}
