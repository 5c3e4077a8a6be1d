//! Patch-embedding convolutions (kernel = stride, no padding) rewritten as
//! `Reshape → Transpose → Reshape → Linear → Reshape → Transpose`, so the quantized Linear and
//! its integer kernels serve the patch embedding too. Exact in f32 up to summation order.

use crate::graph::edit::{Input, Step, splice};
use qvit_device::graph::{Graph, Op};

/// Rewrites every patchifying Conv2d; returns the names of the Linear nodes created.
pub fn patchify_convs(g: &mut Graph) -> Vec<String> {
    let mut made = Vec::new();
    let mut i = 0;
    while i < g.nodes.len() {
        if let Some(steps) = rewrite(g, i) {
            let n = steps.len();
            made.push(steps[3].name.clone());
            // The weight [O, C, KH, KW] is already [O, C·KH·KW] row-major.
            let w = g.nodes[i].inputs[1] as usize;
            let s = g.values[w].shape.clone();
            g.values[w].shape = vec![s[0], s[1] * s[2] * s[3]];
            splice(g, i, steps);
            i += n;
        } else {
            i += 1;
        }
    }
    made
}

fn rewrite(g: &Graph, i: usize) -> Option<Vec<Step>> {
    let node = &g.nodes[i];
    let Op::Conv2d {
        strides,
        pads,
        dilations,
        group,
    } = node.op
    else {
        return None;
    };
    let (x, w) = (node.inputs[0], node.inputs[1]);
    let (&[b, c, h, wd], &[o, cw, kh, kw]) = (g.shape(x), g.shape(w)) else {
        return None;
    };
    let plain = pads == [0; 4] && dilations == [1, 1] && group == 1 && cw == c;
    if !plain || strides != [kh, kw] || h % kh != 0 || wd % kw != 0 {
        return None;
    }
    g.const_data(w)?;
    let (gh, gw) = (h / kh, wd / kw);
    let base = node.name.clone();
    let step = |suffix: &str, op: Op, inputs: Vec<Input>, shape: Vec<usize>| Step {
        name: format!("{base}#{suffix}"),
        op,
        inputs,
        out: (format!("{base}#{suffix}.out"), shape),
    };
    let patches = c * kh * kw;
    let mut steps = vec![
        step(
            "patches",
            Op::Reshape,
            vec![Input::Value(x)],
            vec![b, c, gh, kh, gw, kw],
        ),
        step(
            "patch_order",
            Op::Transpose {
                perm: vec![0, 2, 4, 1, 3, 5],
            },
            vec![Step::prev(1)],
            vec![b, gh, gw, c, kh, kw],
        ),
        step(
            "tokens",
            Op::Reshape,
            vec![Step::prev(2)],
            vec![b, gh * gw, patches],
        ),
    ];
    let mut lin_inputs = vec![Step::prev(3), Input::Value(w)];
    lin_inputs.extend(node.inputs.get(2).map(|&v| Input::Value(v)));
    steps.push(step("linear", Op::Linear, lin_inputs, vec![b, gh * gw, o]));
    steps.push(step(
        "grid",
        Op::Reshape,
        vec![Step::prev(4)],
        vec![b, gh, gw, o],
    ));
    steps.push(step(
        "nchw",
        Op::Transpose {
            perm: vec![0, 3, 1, 2],
        },
        vec![Step::prev(5)],
        vec![b, o, gh, gw],
    ));
    Some(steps)
}
