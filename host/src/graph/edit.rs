//! Graph surgery shared by import and the quantization passes: appending constants and
//! splicing node sequences in place.

use qvit_device::graph::{Graph, Node, Op, Source, Value, ValueId};

/// Appends a constant value and returns its id.
pub fn add_const(g: &mut Graph, name: String, shape: Vec<usize>, source: Source) -> ValueId {
    g.values.push(Value {
        name,
        shape,
        source,
    });
    (g.values.len() - 1) as ValueId
}

/// One node of a replacement sequence: its op, inputs, and output (`None` = a new value of the
/// given name and shape; the last step of a sequence writes the replaced node's output).
pub struct Step {
    /// Node name.
    pub name: String,
    /// Operation.
    pub op: Op,
    /// Inputs; [`Step::prev`] refers to the previous step's output.
    pub inputs: Vec<Input>,
    /// Name and shape of the output value (ignored for the last step).
    pub out: (String, Vec<usize>),
}

/// A step input: an existing value or the output of an earlier step.
#[derive(Clone, Copy)]
pub enum Input {
    /// An existing value.
    Value(ValueId),
    /// The output of step `k` of the same sequence.
    Step(usize),
}

impl Step {
    /// Input referring to the previous step of a sequence being built at index `k`.
    pub fn prev(k: usize) -> Input {
        Input::Step(k - 1)
    }
}

/// Replaces node `i` by `steps`, renumbering later nodes. The last step produces node `i`'s
/// output value, so consumers are untouched.
pub fn splice(g: &mut Graph, i: usize, steps: Vec<Step>) {
    let extra = steps.len() - 1;
    for v in &mut g.values {
        if let Source::Node(j) = &mut v.source
            && *j > i
        {
            *j += extra;
        }
    }
    let final_out = g.nodes[i].output;
    let mut outs: Vec<ValueId> = Vec::new();
    let mut new_nodes = Vec::new();
    let last = steps.len() - 1;
    for (k, s) in steps.into_iter().enumerate() {
        let output = if k == last {
            final_out
        } else {
            g.values.push(Value {
                name: s.out.0,
                shape: s.out.1,
                source: Source::Node(i + k),
            });
            (g.values.len() - 1) as ValueId
        };
        outs.push(output);
        let inputs = s
            .inputs
            .iter()
            .map(|x| match *x {
                Input::Value(v) => v,
                Input::Step(j) => outs[j],
            })
            .collect();
        new_nodes.push(Node {
            name: s.name,
            op: s.op,
            inputs,
            output,
        });
    }
    g.values[final_out as usize].source = Source::Node(i + last);
    g.nodes.splice(i..=i, new_nodes);
}
