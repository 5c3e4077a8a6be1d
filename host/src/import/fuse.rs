//! Pattern fusion on the device graph: LayerNorm from its primitives, Linear with its bias,
//! then removal of everything no output depends on.
//!
//! Fused ops matter beyond speed: quantization and relevance propagation need to see a
//! LayerNorm and a Linear as such, not as a dozen anonymous element-wise nodes.

use crate::graph::edit::add_const;
use crate::graph::{consumers, producer};
use qvit_device::graph::{
    BinaryOp, GeluKind, Graph, Op, ReduceOp, Source, UnaryOp, Value, ValueId,
};

/// Runs every fusion, then compacts the graph.
pub fn fuse(g: &mut Graph) {
    fuse_layer_norms(g);
    fuse_gelus(g);
    fuse_relus(g);
    fuse_linear_bias(g);
    collapse_reshapes(g);
    *g = compact(g);
}

/// Follows multiplications by scalar constants: `v = base · scale`.
fn scaled(g: &Graph, mut v: ValueId) -> (ValueId, f32) {
    let mut scale = 1.0;
    while let Some(p) = producer(g, v) {
        if !is_binary(g, p, BinaryOp::Mul) {
            break;
        }
        let Some((base, k)) = g.nodes[p]
            .inputs
            .iter()
            .find_map(|&i| Some((i, scalar(g, other(g, p, i)?)?)))
        else {
            break;
        };
        scale *= k;
        v = base;
    }
    (v, scale)
}

/// `(1 + erf(x/√2))`, possibly scaled; returns `x`.
fn one_plus_erf(g: &Graph, v: ValueId) -> Option<ValueId> {
    let add = producer(g, v)?;
    if !is_binary(g, add, BinaryOp::Add) {
        return None;
    }
    let e = g.nodes[add]
        .inputs
        .iter()
        .copied()
        .find(|&i| other(g, add, i).and_then(|k| scalar(g, k)) == Some(1.0))?;
    let erf = producer(g, e)?;
    if g.nodes[erf].op != Op::Unary(UnaryOp::Erf) {
        return None;
    }
    let (x, s) = scaled(g, g.nodes[erf].inputs[0]);
    ((s - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6).then_some(x)
}

/// Exact GELU written out as `0.5 · x · (1 + erf(x/√2))` (the dynamo exporter's form).
fn fuse_gelus(g: &mut Graph) {
    for i in 0..g.nodes.len() {
        if !is_binary(g, i, BinaryOp::Mul) {
            continue;
        }
        let [p, q] = g.nodes[i].inputs[..] else {
            continue;
        };
        let ((bp, sp), (bq, sq)) = (scaled(g, p), scaled(g, q));
        let x = match (one_plus_erf(g, bp), one_plus_erf(g, bq)) {
            (Some(x), _) if x == bq => x,
            (_, Some(x)) if x == bp => x,
            _ => continue,
        };
        if (sp * sq - 0.5).abs() > 1e-6 {
            continue;
        }
        let node = &mut g.nodes[i];
        node.op = Op::Gelu(GeluKind::Erf);
        node.inputs = vec![x];
    }
}

/// `max(x, 0)` → Relu.
fn fuse_relus(g: &mut Graph) {
    for i in 0..g.nodes.len() {
        if !is_binary(g, i, BinaryOp::Max) {
            continue;
        }
        let [a, b] = g.nodes[i].inputs[..] else {
            continue;
        };
        let x = match (scalar(g, a), scalar(g, b)) {
            (_, Some(0.0)) => a,
            (Some(0.0), _) => b,
            _ => continue,
        };
        if g.shape(x) == g.shape(g.nodes[i].output) {
            g.nodes[i].op = Op::Relu;
            g.nodes[i].inputs = vec![x];
        }
    }
}

/// A reshape of a reshape reads the original directly.
fn collapse_reshapes(g: &mut Graph) {
    for i in 0..g.nodes.len() {
        if g.nodes[i].op != Op::Reshape {
            continue;
        }
        while let Some(p) = producer(g, g.nodes[i].inputs[0]) {
            if g.nodes[p].op != Op::Reshape {
                break;
            }
            g.nodes[i].inputs[0] = g.nodes[p].inputs[0];
        }
    }
}

/// The scalar value of a constant with a single element.
fn scalar(g: &Graph, v: ValueId) -> Option<f32> {
    match g.const_data(v) {
        Some([x]) => Some(*x),
        _ => None,
    }
}

/// A constant broadcast only along its last axis, of `c` elements: a per-channel vector.
fn channel_vector(g: &Graph, v: ValueId, c: usize) -> Option<Vec<f32>> {
    let d = g.const_data(v)?;
    let s = g.shape(v);
    (d.len() == c && s.last() == Some(&c)).then(|| d.to_vec())
}

/// Other operand of a commutative binary node, given one operand.
fn other(g: &Graph, node: usize, this: ValueId) -> Option<ValueId> {
    let n = &g.nodes[node];
    match n.inputs.as_slice() {
        [a, b] if *a == this => Some(*b),
        [a, b] if *b == this => Some(*a),
        _ => None,
    }
}

fn is_binary(g: &Graph, node: usize, op: BinaryOp) -> bool {
    g.nodes[node].op == Op::Binary(op)
}

fn last_axis_reduce(g: &Graph, node: usize, op: ReduceOp) -> bool {
    let n = &g.nodes[node];
    let rank = g.shape(n.inputs[0]).len();
    n.op == Op::Reduce {
        op,
        axes: vec![rank - 1],
    }
}

/// Mean over the last axis of `x`, computed as `Reduce<Mean>` or `Reduce<Sum> · (1/C)`.
fn is_mean_of(g: &Graph, mean: ValueId, x: ValueId) -> bool {
    let Some(p) = producer(g, mean) else {
        return false;
    };
    let c = *g.shape(x).last().unwrap_or(&0) as f32;
    if last_axis_reduce(g, p, ReduceOp::Mean) && g.nodes[p].inputs[0] == x {
        return true;
    }
    if !is_binary(g, p, BinaryOp::Mul) {
        return false;
    }
    g.nodes[p].inputs.iter().any(|&s| {
        producer(g, s)
            .is_some_and(|r| last_axis_reduce(g, r, ReduceOp::Sum) && g.nodes[r].inputs[0] == x)
            && other(g, p, s)
                .and_then(|k| scalar(g, k))
                .is_some_and(|k| (k * c - 1.0).abs() < 1e-5)
    })
}

/// Matches `d · rsqrt(mean(d²) + eps)` with `d = x - mean(x)` ending at node `mul`;
/// returns `(x, d, eps)`.
fn match_normalize(g: &Graph, mul: usize) -> Option<(ValueId, ValueId, f32)> {
    if !is_binary(g, mul, BinaryOp::Mul) {
        return None;
    }
    for &inv in &g.nodes[mul].inputs {
        let d = other(g, mul, inv)?;
        let r = producer(g, inv)?;
        if g.nodes[r].op != Op::Unary(UnaryOp::Rsqrt) {
            continue;
        }
        let add = producer(g, g.nodes[r].inputs[0])?;
        if !is_binary(g, add, BinaryOp::Add) {
            continue;
        }
        let (ms, eps) = g.nodes[add].inputs.iter().find_map(|&v| {
            let e = scalar(g, other(g, add, v)?)?;
            Some((v, e))
        })?;
        let msn = producer(g, ms)?;
        if !last_axis_reduce(g, msn, ReduceOp::MeanOfSquares) || g.nodes[msn].inputs[0] != d {
            continue;
        }
        let sub = producer(g, d)?;
        if !is_binary(g, sub, BinaryOp::Sub) {
            continue;
        }
        let [x, mean] = g.nodes[sub].inputs[..] else {
            continue;
        };
        if is_mean_of(g, mean, x) {
            return Some((x, d, eps));
        }
    }
    None
}

fn fuse_layer_norms(g: &mut Graph) {
    for i in 0..g.nodes.len() {
        let Some((x, _d, eps)) = match_normalize(g, i) else {
            continue;
        };
        let c = *g.shape(x).last().unwrap_or(&0);
        let cons = consumers(g);
        let mut end = i;
        let mut gamma = vec![1.0; c];
        let mut beta = vec![0.0; c];
        // Absorb `· gamma` and `+ beta` when they are the sole consumers.
        let single_next = |end: usize| {
            let out = g.nodes[end].output;
            match cons[out as usize].as_slice() {
                [(n, _)] if !g.outputs.contains(&out) => Some(*n),
                _ => None,
            }
        };
        if let Some(n) = single_next(end)
            && is_binary(g, n, BinaryOp::Mul)
            && let Some(v) = other(g, n, g.nodes[end].output).and_then(|k| channel_vector(g, k, c))
        {
            gamma = v;
            end = n;
        }
        if let Some(n) = single_next(end)
            && is_binary(g, n, BinaryOp::Add)
            && let Some(v) = other(g, n, g.nodes[end].output).and_then(|k| channel_vector(g, k, c))
        {
            beta = v;
            end = n;
        }
        let name = layer_norm_name(&g.nodes[end].name);
        let gv = add_const(g, format!("{name}.gamma"), vec![c], Source::Const(gamma));
        let bv = add_const(g, format!("{name}.beta"), vec![c], Source::Const(beta));
        let node = &mut g.nodes[end];
        node.op = Op::LayerNorm { eps };
        node.inputs = vec![x, gv, bv];
        node.name = name;
    }
}

/// `/blocks.0/norm1/LayerNormalization.y_internal` → `/blocks.0/norm1/LayerNormalization`.
fn layer_norm_name(n: &str) -> String {
    match n.rsplit_once('/') {
        Some((dir, last)) => format!("{dir}/{}", last.split('.').next().unwrap_or(last)),
        None => n.to_string(),
    }
}

fn fuse_linear_bias(g: &mut Graph) {
    for i in 0..g.nodes.len() {
        if g.nodes[i].op != Op::Linear || g.nodes[i].inputs.len() != 2 {
            continue;
        }
        let y = g.nodes[i].output;
        let n = g.shape(y).last().copied().unwrap_or(0);
        let cons = consumers(g);
        let [(next, _)] = cons[y as usize][..] else {
            continue;
        };
        if g.outputs.contains(&y) {
            continue;
        }
        // A reshape that keeps the channel axis may sit between the Linear and its bias.
        let through =
            g.nodes[next].op == Op::Reshape && g.shape(g.nodes[next].output).last() == Some(&n);
        if through {
            let r = g.nodes[next].output;
            let [(add, _)] = cons[r as usize][..] else {
                continue;
            };
            if g.outputs.contains(&r)
                || !is_binary(g, add, BinaryOp::Add)
                || g.shape(g.nodes[add].output) != g.shape(r)
            {
                continue;
            }
            let Some(bias) = other(g, add, r).and_then(|k| channel_vector(g, k, n)) else {
                continue;
            };
            let bv = add_const(
                g,
                format!("{}.bias", g.nodes[i].name),
                vec![n],
                Source::Const(bias),
            );
            g.nodes[i].inputs.push(bv);
            // The Add becomes a same-shape reshape of the (now biased) reshape output.
            g.nodes[add].op = Op::Reshape;
            g.nodes[add].inputs = vec![r];
            continue;
        }
        let add = next;
        if !is_binary(g, add, BinaryOp::Add) || g.shape(g.nodes[add].output) != g.shape(y) {
            continue;
        }
        let Some(bias) = other(g, add, y).and_then(|k| channel_vector(g, k, n)) else {
            continue;
        };
        let bv = add_const(
            g,
            format!("{}.bias", g.nodes[i].name),
            vec![n],
            Source::Const(bias),
        );
        let out = g.nodes[add].output;
        g.nodes[i].inputs.push(bv);
        g.nodes[i].output = out;
        g.values[out as usize].source = Source::Node(i);
        // The Add is now dead: make it a no-op reading its own old input so compaction drops it.
        g.nodes[add].output = y;
        g.values[y as usize].source = Source::Node(add);
    }
}

/// Keeps only the nodes and values the outputs depend on, renumbered, in execution order.
pub fn compact(g: &Graph) -> Graph {
    let mut live_node = vec![false; g.nodes.len()];
    let mut live_value = vec![false; g.values.len()];
    let mut stack: Vec<ValueId> = g.outputs.clone();
    stack.extend(&g.inputs);
    while let Some(v) = stack.pop() {
        if std::mem::replace(&mut live_value[v as usize], true) {
            continue;
        }
        if let Source::Node(n) = g.values[v as usize].source
            && !live_node[n]
        {
            live_node[n] = true;
            stack.extend(&g.nodes[n].inputs);
        }
    }
    let mut out = Graph::default();
    let mut remap = vec![u32::MAX; g.values.len()];
    let add_value = |out: &mut Graph, v: ValueId, source: Source| {
        let old = &g.values[v as usize];
        out.values.push(Value {
            name: old.name.clone(),
            shape: old.shape.clone(),
            source,
        });
        (out.values.len() - 1) as ValueId
    };
    for (ix, &v) in g.inputs.iter().enumerate() {
        remap[v as usize] = add_value(&mut out, v, Source::Input(ix));
        out.inputs.push(remap[v as usize]);
    }
    for (v, val) in g.values.iter().enumerate() {
        if live_value[v] && matches!(val.source, Source::Const(_)) {
            remap[v] = add_value(&mut out, v as ValueId, val.source.clone());
        }
    }
    for (i, n) in g.nodes.iter().enumerate() {
        if !live_node[i] {
            continue;
        }
        let mut n = n.clone();
        n.inputs.iter_mut().for_each(|v| *v = remap[*v as usize]);
        let node_ix = out.nodes.len();
        let new_out = add_value(&mut out, n.output, Source::Node(node_ix));
        remap[n.output as usize] = new_out;
        n.output = new_out;
        out.nodes.push(n);
    }
    out.outputs = g.outputs.iter().map(|&v| remap[v as usize]).collect();
    out
}
