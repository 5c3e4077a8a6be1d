//! The graph toolkit every pipeline step shares: who reads and who writes a value, what a
//! value is (attention probabilities, class logits), what kind of layer a node is ([`kinds`]),
//! and edits ([`edit`]). It knows the device graph only; nothing here depends on a pipeline
//! module, so import, quantization, relevance and comparison all build on it.

pub mod edit;
pub mod kinds;

use qvit_device::graph::{Graph, Op, Source, ValueId};

/// For every value, the (node, input position) pairs that read it.
pub fn consumers(g: &Graph) -> Vec<Vec<(usize, usize)>> {
    let mut c = vec![Vec::new(); g.values.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        for (pos, &v) in n.inputs.iter().enumerate() {
            c[v as usize].push((i, pos));
        }
    }
    c
}

/// The node that computes `v` (none for inputs and constants).
pub fn producer(g: &Graph, v: ValueId) -> Option<usize> {
    match g.values[v as usize].source {
        Source::Node(i) => Some(i),
        _ => None,
    }
}

/// The node that computes `v`, looking through nodes whose op `see_through` accepts (following
/// their first input).
pub fn producer_through(
    g: &Graph,
    mut v: ValueId,
    see_through: impl Fn(&Op) -> bool,
) -> Option<usize> {
    loop {
        let i = producer(g, v)?;
        if !see_through(&g.nodes[i].op) {
            return Some(i);
        }
        v = g.nodes[i].inputs[0];
    }
}

/// The node producing `v`, looking through Reshape aliases.
pub fn producer_through_reshapes(g: &Graph, v: ValueId) -> Option<usize> {
    producer_through(g, v, |op| *op == Op::Reshape)
}

/// Whether `v` is attention probabilities: a Softmax output, seen through Reshape aliases.
pub fn is_softmax_output(g: &Graph, v: ValueId) -> bool {
    producer_through_reshapes(g, v).is_some_and(|p| matches!(g.nodes[p].op, Op::Softmax { .. }))
}

/// Whether a MatMul's operands `a`, `b` have equal batch axes (what QMatMul supports).
pub fn equal_batch(g: &Graph, a: ValueId, b: ValueId) -> bool {
    let (sa, sb) = (g.shape(a), g.shape(b));
    sa.len() == sb.len() && sa.len() >= 2 && sa[..sa.len() - 2] == sb[..sb.len() - 2]
}

/// Whether `g`'s first output is a single vector per image (class logits), as opposed to
/// tokens or feature maps.
pub fn is_classifier(g: &Graph) -> bool {
    let shape = g.outputs.first().map(|&o| g.shape(o)).unwrap_or(&[]);
    shape[..shape.len().saturating_sub(1)]
        .iter()
        .product::<usize>()
        == 1
}

/// The name of the layer a node belongs to: `L` for the nodes `L#g0`, `L#g1`, … of a layer split
/// into activation groups (`quant::groups`), `name` itself for any other node.
pub fn layer_name(name: &str) -> &str {
    match name.rsplit_once("#g") {
        Some((layer, g)) if !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()) => layer,
        _ => name,
    }
}
