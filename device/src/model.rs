//! A loaded model: bundle header plus a planned executor.

use crate::bundle::{BitPackedWeights, Bundle, Header};
use crate::exec::{Executor, WeightMemory};
use crate::graph::{Graph, Op, Source};
use crate::{Error, Result, Tensor};
use qvit_kernels::KernelSet;
use std::path::Path;

/// A model ready to run: the bundle's header and an executor planned for this CPU.
///
/// Quantized weights are held once, in the kernels' packed form: planning moves them out of
/// the graph ([`Executor::new_releasing_weights`]). Passes that read the weights themselves
/// plan an [`Executor`] of their own.
pub struct Model {
    header: Header,
    executor: Executor,
}

impl Model {
    /// Reads, decodes, validates and plans a bundle file with the kernels detected on this CPU,
    /// one constant at a time, so the file is never held beside them, and with the quantized
    /// weights left bit-packed until their layer is packed ([`Bundle::read_file_bit_packed`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let (bundle, kept, _) = Bundle::read_file_bit_packed(path)?;
        Self::from_bit_packed(bundle, kept)
    }

    /// Plans an already decoded bundle (validating it again, since a `Bundle` can be built by
    /// hand).
    pub fn from_bundle(bundle: Bundle) -> Result<Model> {
        Self::with_kernels(bundle, KernelSet::detect())
    }

    /// Plans a bundle read by [`Bundle::read_file_bit_packed`], with its bit-packed weights
    /// (see [`Executor::with_bit_packed_weights`]).
    pub fn from_bit_packed(bundle: Bundle, kept: BitPackedWeights) -> Result<Model> {
        Self::plan(bundle, kept, KernelSet::detect())
    }

    /// Plans a bundle with a given kernel set (for A/B tests of tiers).
    pub fn with_kernels(bundle: Bundle, kernels: KernelSet) -> Result<Model> {
        Self::plan(bundle, BitPackedWeights::default(), kernels)
    }

    fn plan(bundle: Bundle, kept: BitPackedWeights, kernels: KernelSet) -> Result<Model> {
        bundle.graph.validate()?;
        bundle.header.validate(&bundle.graph)?;
        let executor = Executor::with_bit_packed_weights(bundle.graph, kept, kernels)?;
        Ok(Model {
            header: bundle.header,
            executor,
        })
    }

    /// The bundle header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The graph being run; its quantized weights are [`crate::Source::PackedInt`] (shapes
    /// and bit widths, no values).
    pub fn graph(&self) -> &Graph {
        self.executor.graph()
    }

    /// What the quantized weights hold in memory, per weight bit width (see
    /// [`Executor::weight_memory`]).
    pub fn weight_memory(&self) -> Vec<WeightMemory> {
        self.executor.weight_memory()
    }

    /// Name of the kernel tier in use, e.g. `reference`.
    pub fn tier(&self) -> String {
        self.executor.kernels().tier().to_string()
    }

    /// Number of worker threads [`run`](Self::run) uses; at least 1.
    pub fn threads(&self) -> usize {
        self.executor.threads()
    }

    /// Sets the number of worker threads (0 is treated as 1; stays 1 if no pool can be made).
    pub fn set_threads(&mut self, n: usize) {
        self.executor.set_threads(n);
    }

    /// Runs the model on its single input and returns every graph output.
    pub fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>> {
        self.run_many(&[input])
    }

    /// [`Model::run_many`] adding the time of every executed step to `profile`.
    pub fn run_profiled(
        &mut self,
        inputs: &[&Tensor],
        profile: &mut crate::exec::Profile,
    ) -> Result<Vec<Tensor>> {
        self.check_inputs(inputs)?;
        self.executor.run_profiled(inputs, profile)
    }

    /// Runs the model on one tensor per graph input.
    pub fn run_many(&mut self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        self.check_inputs(inputs)?;
        self.executor.run(inputs)
    }

    /// [`Model::run_many`] into `outputs`, reusing their storage (see
    /// [`crate::exec::Executor::run_into`]).
    pub fn run_into(&mut self, inputs: &[&Tensor], outputs: &mut Vec<Tensor>) -> Result<()> {
        self.check_inputs(inputs)?;
        self.executor.run_into(inputs, outputs)
    }

    fn check_inputs(&self, inputs: &[&Tensor]) -> Result<()> {
        let graph = self.executor.graph();
        if inputs.len() != graph.inputs.len() {
            return Err(Error::BadInput(format!(
                "model takes {} inputs, got {}",
                graph.inputs.len(),
                inputs.len()
            )));
        }
        for (k, (t, &id)) in inputs.iter().zip(&graph.inputs).enumerate() {
            if t.shape != graph.shape(id) || t.data.len() != t.shape.iter().product::<usize>() {
                return Err(Error::BadInput(format!(
                    "input {k} has shape {:?}, the model takes {:?}",
                    t.shape,
                    graph.shape(id)
                )));
            }
        }
        Ok(())
    }

    /// Class probabilities for one input, every class, most probable first.
    ///
    /// Reads the first output's first row (the last axis is the class axis; batch 1). Applies a
    /// softmax unless the graph already ends in a softmax over that axis. Truncate the result
    /// for a top-k.
    pub fn classify(&mut self, input: &Tensor) -> Result<Vec<(usize, f32)>> {
        let mut outputs = self.run(input)?;
        let logits = outputs.swap_remove(0);
        let classes = logits.shape.last().copied().unwrap_or(1);
        let row = logits.data.get(..classes).ok_or_else(|| {
            Error::BadInput(format!("output shape {:?} has no class row", logits.shape))
        })?;
        let probs = if self.ends_in_softmax() {
            row.to_vec()
        } else {
            softmax(&self.executor.kernels(), row)?
        };
        let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(ranked)
    }

    /// Whether the first output is produced by a softmax over its last axis.
    fn ends_in_softmax(&self) -> bool {
        let g = self.executor.graph();
        let Some(&out) = g.outputs.first() else {
            return false;
        };
        let Source::Node(i) = g.values[out as usize].source else {
            return false;
        };
        matches!(g.nodes[i].op, Op::Softmax { axis } if axis + 1 == g.shape(out).len())
    }
}

/// Numerically stable softmax.
/// Class probabilities of one logit row, with the model's own softmax kernel.
fn softmax(kernels: &KernelSet, x: &[f32]) -> Result<Vec<f32>> {
    let mut p = x.to_vec();
    kernels
        .softmax_f32(&mut p, x.len())
        .map_err(|e| Error::BadInput(format!("softmax over the class row: {e}")))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_matches_closed_form() {
        let ks = KernelSet::detect();
        let p = softmax(&ks, &[0.0, 1.0, 2.0]).unwrap();
        let z = 1.0 + 1f32.exp() + 2f32.exp();
        for (got, want) in p.iter().zip([1.0 / z, 1f32.exp() / z, 2f32.exp() / z]) {
            assert!((got - want).abs() < 1e-6);
        }
        // Large logits do not overflow.
        let p = softmax(&ks, &[1000.0, 1000.0]).unwrap();
        assert_eq!(p, [0.5, 0.5]);
    }
}
