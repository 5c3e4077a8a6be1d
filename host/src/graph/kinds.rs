//! What kind of layer a node is (qkv, proj, fc1, head, …), read from the graph's structure
//! (what feeds the layer and what it feeds) with the exporter's names to tell q, k and v apart,
//! and which transformer block it belongs to.

use qvit_device::graph::{BinaryOp, Graph, Node, Op, ValueId};

/// Ops that only move or add data, seen through when asking what feeds what.
fn is_passthrough(op: &Op) -> bool {
    matches!(
        op,
        Op::Reshape
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Gather { .. }
            | Op::Concat { .. }
            | Op::Broadcast
            | Op::Binary(BinaryOp::Add)
            | Op::Binary(BinaryOp::Mul)
            | Op::Binary(BinaryOp::Div)
    )
}

/// The first non-pass-through producer of `v`'s data (its first input at each step; binary
/// ops are not seen through).
fn data_producer(g: &Graph, v: ValueId) -> Option<usize> {
    super::producer_through(g, v, |op| {
        is_passthrough(op) && !matches!(op, Op::Binary(_))
    })
}

/// Whether node `j`'s output reaches a node satisfying `f` through pass-through ops only.
fn feeds(g: &Graph, j: usize, f: &dyn Fn(&Node) -> bool) -> bool {
    let mut stack = vec![g.nodes[j].output];
    let mut seen = 0;
    while let Some(v) = stack.pop() {
        seen += 1;
        if seen > 64 {
            return false;
        }
        for n in g.nodes.iter().filter(|n| n.inputs.contains(&v)) {
            if f(n) {
                return true;
            }
            // Binary ops are followed only with a constant other side (scaling, a bias), so a
            // residual add does not lead into the next block.
            let with_const = n.inputs.iter().any(|&i| g.const_data(i).is_some());
            if is_passthrough(&n.op) && (!matches!(n.op, Op::Binary(_)) || with_const) {
                stack.push(n.output);
            }
        }
    }
    false
}

/// For a node making attention logits (a q or k projection, or QKᵀ itself), the attn·V
/// product whose probabilities those logits become; `None` for every other node (v included).
pub fn attention_of(g: &Graph, j: usize) -> Option<usize> {
    let is_softmax = |n: &Node| matches!(n.op, Op::Softmax { .. });
    let act_product = |n: &Node| {
        matches!(n.op, Op::MatMul { .. } | Op::QMatMul { .. })
            && g.const_data(n.inputs[1]).is_none()
    };
    let mut stack = vec![(g.nodes[j].output, false)];
    let mut seen = 0;
    while let Some((v, after_softmax)) = stack.pop() {
        seen += 1;
        if seen > 256 {
            return None;
        }
        for (i, n) in g
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.contains(&v))
        {
            let with_const = n.inputs.iter().any(|&i| g.const_data(i).is_some());
            if act_product(n) {
                if after_softmax && n.inputs[0] == v {
                    return Some(i);
                }
                // Logits pass QKᵀ once; a product met after it (or V's) ends the search.
                if !after_softmax && !super::is_softmax_output(g, n.inputs[0]) {
                    stack.push((n.output, false));
                }
            } else if is_softmax(n) {
                stack.push((n.output, true));
            } else if is_passthrough(&n.op) && (!matches!(n.op, Op::Binary(_)) || with_const) {
                stack.push((n.output, after_softmax));
            }
        }
    }
    None
}

/// The layer kind: from the graph's structure (what feeds the layer and what it feeds), with
/// the exporter's names (timm, torchvision, Hugging Face) to tell q, k and v apart.
pub fn kind(g: &Graph, j: usize) -> &'static str {
    let node = &g.nodes[j];
    let name = node.name.to_ascii_lowercase();
    let has = |keys: &[&str]| keys.iter().any(|k| name.contains(k));
    let probs = |n: usize| super::is_softmax_output(g, g.nodes[n].inputs[0]);
    let act_product = |n: &Node| {
        matches!(n.op, Op::MatMul { .. } | Op::QMatMul { .. })
            && g.const_data(n.inputs[1]).is_none()
    };
    if act_product(node) {
        return if probs(j) { "av" } else { "qk" };
    }
    let nonlinear = |op: &Op| matches!(op, Op::Gelu(_) | Op::Relu | Op::Unary(_));
    let from = data_producer(g, node.inputs[0]).map(|p| &g.nodes[p]);
    let outside_blocks = block_of(&node.name).is_none();
    if matches!(node.op, Op::Conv2d { .. }) || from.is_none() || has(&["patch", "embed", "stem"]) {
        "patch_embed"
    } else if outside_blocks && has(&["head", "classifier", "fc_norm", "pre_logits"]) {
        "head"
    } else if from.is_some_and(|p| act_product(p) && probs(data_producer(g, p.output).unwrap_or(0)))
    {
        "proj"
    } else if from.is_some_and(|p| nonlinear(&p.op)) {
        "fc2"
    } else if feeds(g, j, &|n| nonlinear(&n.op)) {
        "fc1"
    } else if feeds(g, j, &act_product) {
        if has(&["query", "q_proj", "/q/"]) {
            "q"
        } else if has(&["key", "k_proj", "/k/"]) {
            "k"
        } else if has(&["value", "v_proj", "/v/"]) {
            "v"
        } else {
            "qkv"
        }
    } else if outside_blocks {
        "head"
    } else {
        "linear"
    }
}

/// The block index in names like `/blocks.3/…`, `/encoder/layer.3/…`, `layers_3`.
pub fn block_of(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    for key in ["blocks", "block", "layers", "layer", "encoder_layer_"] {
        let mut rest = lower.as_str();
        while let Some(at) = rest.find(key) {
            let after = &rest[at + key.len()..];
            let digits: String = after
                .trim_start_matches(['.', '_', '/'])
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if !digits.is_empty() {
                return digits.parse().ok();
            }
            rest = after;
        }
    }
    None
}
