//! Activation groups: a QLinear whose input takes a step per token at run time is split along
//! its input features into groups of `G`, each a QLinear of its own on a slice of the input, and
//! the partial outputs summed in f32. Each token then gets a step (and zero point) per group of
//! `G` features instead of one for all `K`: an outlier feature costs only its group's resolution.
//!
//! The weights are quantized (and GPTQ-rounded) over the whole `K` before the split, so the
//! codes and per-channel scales are those of the unsplit layer; only the activation grid is
//! finer. The device runs the split graph as it is (slices, QLinears, adds): no new operator,
//! and what the host measures is what the board computes.

use crate::graph::edit::{Input, Step, add_const, splice};
pub use crate::graph::layer_name;
use qvit_device::graph::{BinaryOp, Graph, Op, Source, ValueId};
use qvit_device::quant::{ActQuant, IntData};

/// Splits every QLinear with a per-token ([`ActQuant::Dynamic`]) input whose feature count is a
/// multiple of `group` and larger than it; returns the names of the layers split.
pub fn split(g: &mut Graph, group: usize) -> Vec<String> {
    let mut split = Vec::new();
    let mut j = 0;
    while j < g.nodes.len() {
        match splittable(g, j, group) {
            Some(k) => {
                split.push(g.nodes[j].name.clone());
                let steps = split_steps(g, j, k, group);
                let added = steps.len();
                splice(g, j, steps);
                j += added;
            }
            None => j += 1,
        }
    }
    split
}

/// The input feature count `K` of node `j` when it is a QLinear to split.
fn splittable(g: &Graph, j: usize, group: usize) -> Option<usize> {
    let n = &g.nodes[j];
    let Op::QLinear {
        act: ActQuant::Dynamic { .. },
    } = n.op
    else {
        return None;
    };
    let (k, w) = (*g.shape(n.inputs[0]).last()?, n.inputs[1]);
    let int = matches!(g.values[w as usize].source, Source::Int(_));
    // The first group takes the weight value over, so no other node may read it.
    let own = g.nodes.iter().filter(|m| m.inputs.contains(&w)).count() == 1;
    (group > 0 && k > group && k.is_multiple_of(group) && int && own).then_some(k)
}

/// The replacement of QLinear `j` (`k` input features): per group a slice and a QLinear, then
/// the running sum.
fn split_steps(g: &mut Graph, j: usize, k: usize, group: usize) -> Vec<Step> {
    let node = g.nodes[j].clone();
    let (x, w_id, s_id) = (node.inputs[0], node.inputs[1], node.inputs[2]);
    let bias = node.inputs.get(3).copied();
    let Source::Int(IntData { bits, data }) = g.values[w_id as usize].source.clone() else {
        unreachable!("splittable checked the weight");
    };
    let n = data.len() / k;
    let x_shape = g.shape(x).to_vec();
    let out_shape = g.shape(node.output).to_vec();
    let axis = x_shape.len() - 1;
    let mut steps = Vec::new();
    let mut sum: Option<usize> = None;
    for (gi, start) in (0..k).step_by(group).enumerate() {
        let codes: Vec<i8> = data
            .chunks_exact(k)
            .flat_map(|row| row[start..start + group].iter().copied())
            .collect();
        let codes = Source::Int(IntData { bits, data: codes });
        // The first group takes over the layer's weight value, so no unused copy remains.
        let wg: ValueId = if gi == 0 {
            let v = &mut g.values[w_id as usize];
            (v.shape, v.source) = (vec![n, group], codes);
            w_id
        } else {
            add_const(g, format!("{}.w#g{gi}", node.name), vec![n, group], codes)
        };
        let mut slice_shape = x_shape.clone();
        slice_shape[axis] = group;
        steps.push(Step {
            name: format!("{}#slice{gi}", node.name),
            op: Op::Slice {
                axis,
                start,
                end: start + group,
                step: 1,
            },
            inputs: vec![Input::Value(x)],
            out: (format!("{}#x{gi}", node.name), slice_shape),
        });
        let mut inputs = vec![
            Input::Step(steps.len() - 1),
            Input::Value(wg),
            Input::Value(s_id),
        ];
        // The bias once, in the first group.
        if let (0, Some(b)) = (gi, bias) {
            inputs.push(Input::Value(b));
        }
        steps.push(Step {
            name: format!("{}#g{gi}", node.name),
            op: node.op.clone(),
            inputs,
            out: (format!("{}#y{gi}", node.name), out_shape.clone()),
        });
        let part = steps.len() - 1;
        if let Some(prev) = sum {
            steps.push(Step {
                name: format!("{}#sum{gi}", node.name),
                op: Op::Binary(BinaryOp::Add),
                inputs: vec![Input::Step(prev), Input::Step(part)],
                out: (format!("{}#s{gi}", node.name), out_shape.clone()),
            });
        }
        sum = Some(steps.len() - 1);
    }
    steps
}
