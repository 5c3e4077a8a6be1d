//! The f32 graph executor. (API sketch; the implementation lands in this module.)

use crate::{Graph, Result, Tensor};
use qvit_kernels::KernelSet;

/// A graph planned for execution: buffers allocated once, reused by every run.
pub struct Executor {
    graph: Graph,
    kernels: KernelSet,
}

impl Executor {
    /// Plans `graph` (validated by the caller) with the given kernels.
    pub fn new(graph: Graph, kernels: KernelSet) -> Result<Self> {
        Ok(Executor { graph, kernels })
    }

    /// The graph this executor runs.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The kernel set in use.
    pub fn kernels(&self) -> KernelSet {
        self.kernels
    }

    /// Runs the graph on `inputs` (one per graph input, matching shapes) and returns the outputs.
    pub fn run(&mut self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let _ = inputs;
        Err(crate::Error::BadInput("executor not implemented yet".into()))
    }
}
