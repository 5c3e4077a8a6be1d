//! Incremental construction of a device [`Graph`] in execution order.

use qvit_device::graph::{Graph, Node, Op, Source, Value, ValueId};

/// Appends values and nodes to a graph under construction.
#[derive(Default)]
pub struct Builder {
    /// The graph so far.
    pub graph: Graph,
}

impl Builder {
    /// Declares the next graph input.
    pub fn input(&mut self, name: &str, shape: Vec<usize>) -> ValueId {
        let ix = self.graph.inputs.len();
        let v = self.push(name, shape, Source::Input(ix));
        self.graph.inputs.push(v);
        v
    }

    /// Adds a constant value.
    pub fn constant(&mut self, name: &str, shape: Vec<usize>, data: Vec<f32>) -> ValueId {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        self.push(name, shape, Source::Const(data))
    }

    /// Adds a node and returns its output value.
    pub fn node(&mut self, name: &str, op: Op, inputs: Vec<ValueId>, shape: Vec<usize>) -> ValueId {
        let ix = self.graph.nodes.len();
        let output = self.push(name, shape, Source::Node(ix));
        self.graph.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs,
            output,
        });
        output
    }

    /// Marks a value as a graph output.
    pub fn output(&mut self, v: ValueId) {
        self.graph.outputs.push(v);
    }

    fn push(&mut self, name: &str, shape: Vec<usize>, source: Source) -> ValueId {
        self.graph.values.push(Value {
            name: name.to_string(),
            shape,
            source,
        });
        (self.graph.values.len() - 1) as ValueId
    }

    /// Shape of a value.
    pub fn shape(&self, v: ValueId) -> &[usize] {
        self.graph.shape(v)
    }

    /// A reshape, skipped when the shape already matches.
    pub fn reshape(&mut self, name: &str, x: ValueId, shape: Vec<usize>) -> ValueId {
        if self.shape(x) == shape.as_slice() {
            return x;
        }
        if let Some(data) = self.graph.const_data(x) {
            let data = data.to_vec();
            return self.constant(name, shape, data);
        }
        self.node(name, Op::Reshape, vec![x], shape)
    }

    /// A transpose, skipped when `perm` is the identity; constants are permuted at import.
    pub fn transpose(&mut self, name: &str, x: ValueId, perm: Vec<usize>) -> ValueId {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return x;
        }
        let in_shape = self.shape(x).to_vec();
        let shape: Vec<usize> = perm.iter().map(|&p| in_shape[p]).collect();
        // Moving only size-1 axes leaves the data order unchanged: that is a reshape.
        let moved: Vec<usize> = perm.iter().copied().filter(|&p| in_shape[p] != 1).collect();
        if moved.windows(2).all(|w| w[0] < w[1]) {
            return self.reshape(name, x, shape);
        }
        if let Some(data) = self.graph.const_data(x) {
            let data = permute(data, &in_shape, &perm);
            return self.constant(name, shape, data);
        }
        self.node(name, Op::Transpose { perm }, vec![x], shape)
    }
}

/// Row-major permutation of `data` (shape `shape`): output axis `i` is input axis `perm[i]`.
pub fn permute(data: &[f32], shape: &[usize], perm: &[usize]) -> Vec<f32> {
    let rank = shape.len();
    let mut in_strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * shape[i + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; rank];
    for _ in 0..data.len() {
        out.push(data[idx.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
        for ax in (0..rank).rev() {
            idx[ax] += 1;
            if idx[ax] < out_shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    out
}
