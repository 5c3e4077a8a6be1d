//! The graph executor: the engine of inference, and of calibration, relevance and evaluation
//! on the host.
//!
//! [`Executor::new`] plans once (shape checks, per-node kernel plans with precomputed strides,
//! and a liveness-based buffer arena); every [`Executor::run`] after that reuses the same
//! buffers, so inference allocates only the returned output tensors. f32 matrix products go
//! through the `gemm` crate; quantized ones, LayerNorm, softmax and GELU through the
//! [`KernelSet`].
//!
//! Runs use the integer dataflow (module `fuse`): quantized layers hand each other integers and
//! the attention core is one step. [`Executor::run_observed`], which must see every node's f32
//! output, runs a second, node-by-node plan of the same graph (made on first use, sharing the
//! packed weights). Both compute the same operations in the same order: the same bits.

mod conv;
mod dynamic;
mod elementwise;
mod fuse;
mod layout;
mod matmul;
mod movement;
mod norm;
mod plan;
mod pool;
mod profile;
mod quantized;
mod reduce;
mod step;
mod weights;

use crate::{Error, Graph, Result, Tensor, ValueId};
/// The f32 matrix product the executor runs on, for host passes (relevance) that need the same
/// products backwards.
pub use matmul::{Strides, gemm_f32};
use plan::{Loc, Plan};
pub use profile::{OpTime, Profile, StepTime};
use qvit_kernels::KernelSet;
use std::sync::Arc;
pub use weights::WeightMemory;

/// The callback of [`Executor::run_observed`]: a node's output value and its data.
type Observer<'a> = dyn FnMut(ValueId, &[f32]) + 'a;

/// A plan with its buffers.
struct Program {
    plan: Plan,
    arena: Vec<Vec<f32>>,
    ints: Vec<Vec<i8>>,
    scratch: Vec<f32>,
    qscratch: quantized::QScratch,
    /// The packed K and V of the attention core running; cores run one after another, so
    /// one state serves them all (one per core held a copy per transformer block).
    attention: fuse::AttnState,
    /// The integer buffers a step writes, reused by every step.
    sinks: Vec<fuse::Shared<i8>>,
}

impl Program {
    fn new(plan: Plan) -> Program {
        Program {
            arena: plan.buffers.iter().map(|&n| vec![0.0; n]).collect(),
            ints: plan.int_buffers.iter().map(|&n| vec![0; n]).collect(),
            scratch: vec![0.0; plan.scratch],
            qscratch: Default::default(),
            attention: Default::default(),
            sinks: Vec::new(),
            plan,
        }
    }
}

/// A graph planned for execution: buffers allocated once, reused by every run.
pub struct Executor {
    graph: Graph,
    kernels: KernelSet,
    /// Every quantized Linear, packed once (by node), for both plans.
    linears: Vec<Option<Arc<quantized::QLinearPlan>>>,
    fused: Program,
    /// The node-by-node plan of observed runs, made on first use.
    observed: Option<Program>,
    scratches: fuse::Scratches,
    threads: usize,
    pool: Option<rayon::ThreadPool>,
    /// Spinning workers of the fused steps (short, back to back).
    spin: Option<pool::SpinPool>,
}

/// What a kernel needs besides its operands: the float kernels and the threads it may use.
pub(crate) struct Ctx<'a> {
    ks: KernelSet,
    pool: Option<&'a rayon::ThreadPool>,
    spin: Option<&'a pool::SpinPool>,
    threads: usize,
}

impl Ctx<'_> {
    /// Runs `f(parallel)` inside the executor's pool when it has one, serially otherwise.
    fn maybe_parallel(&self, f: impl FnOnce(bool) + Send) {
        match self.pool {
            Some(pool) => pool.install(|| f(true)),
            None => f(false),
        }
    }
}

impl Executor {
    /// Plans `graph` with the given kernels. Fails with [`Error::InvalidGraph`] when a node's
    /// shapes do not fit its op or a value is used before it is produced. The graph keeps its
    /// quantized weights beside their packed form, for passes that read them
    /// ([`Executor::graph`]).
    pub fn new(graph: Graph, kernels: KernelSet) -> Result<Self> {
        Self::plan(graph, kernels, false, Default::default())
    }

    /// [`Executor::new`], moving the values of every quantized Linear's weights out of the
    /// graph as the layer is packed: they become [`crate::Source::PackedInt`], so the
    /// weights are held once, in the kernels' packed form, and loading never holds all of
    /// them twice. For running a model; [`Executor::graph`] then has no weight values to read.
    pub fn new_releasing_weights(graph: Graph, kernels: KernelSet) -> Result<Self> {
        Self::plan(graph, kernels, true, Default::default())
    }

    /// [`Executor::new_releasing_weights`] for a graph whose quantized weights are still in a
    /// bundle's bit-packed form, in `kept` (`Bundle::read_file_bit_packed`):
    /// each is unpacked when a layer that reads it is packed, and freed after its last reader,
    /// so one layer at a time is held at a byte per value.
    pub fn with_bit_packed_weights(
        graph: Graph,
        kept: crate::bit_packed::BitPackedWeights,
        kernels: KernelSet,
    ) -> Result<Self> {
        Self::plan(graph, kernels, true, kept)
    }

    fn plan(
        mut graph: Graph,
        kernels: KernelSet,
        release: bool,
        kept: crate::bit_packed::BitPackedWeights,
    ) -> Result<Self> {
        let linears = weights::pack_linears(&mut graph, &kernels, release, kept);
        let plan = plan::plan(&graph, &kernels, true, &linears)?;
        let mut ex = Executor {
            graph,
            kernels,
            linears,
            fused: Program::new(plan),
            observed: None,
            scratches: fuse::Scratches::new(1),
            threads: 1,
            pool: None,
            spin: None,
        };
        ex.reserve_scratch();
        Ok(ex)
    }

    /// Grows every thread's scratch to the largest block of every fused step.
    fn reserve_scratch(&mut self) {
        let ks = self.kernels;
        let kernels = &self.fused.plan.kernels;
        self.scratches.reserve(|t| {
            for k in kernels {
                match k {
                    plan::Kernel::FusedQLinear(f) => f.reserve(t),
                    plan::Kernel::LayerNormSinks(l) => l.reserve(t),
                    plan::Kernel::Attention(a) => a.reserve(&ks, t),
                    _ => {}
                }
            }
        });
    }

    /// The graph this executor runs. Made by [`Executor::new_releasing_weights`], its
    /// quantized weights are [`crate::Source::PackedInt`]: shapes and bit widths only.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// What the quantized Linear weights hold in memory, per weight bit width (narrowest
    /// first): packed panels, epilogue factors, and canonical values still in the graph.
    pub fn weight_memory(&self) -> Vec<WeightMemory> {
        weights::memory(&self.graph, &self.linears)
    }

    /// The kernel set in use.
    pub fn kernels(&self) -> KernelSet {
        self.kernels
    }

    /// Threads used by later runs: 1 runs everything on the calling thread; more splits rows,
    /// heads and batched products over a private pool of that many threads. 0 counts as 1. If
    /// the pool cannot be created the executor stays single-threaded.
    pub fn set_threads(&mut self, n: usize) {
        let n = n.max(1);
        if n == self.threads {
            return;
        }
        self.pool = if n > 1 {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().ok();
            // Runs once on every rayon thread so all have started (and made their start-up
            // allocations) now: on a loaded machine a late start landed inside the
            // allocation-free steady state (host/tests/alloc_free.rs).
            if let Some(p) = &pool {
                p.broadcast(|_| ());
            }
            pool
        } else {
            None
        };
        self.spin = if n > 1 { pool::SpinPool::new(n) } else { None };
        self.threads = if self.pool.is_some() && self.spin.is_some() {
            n
        } else {
            self.pool = None;
            self.spin = None;
            1
        };
        self.scratches = fuse::Scratches::new(self.threads);
        self.reserve_scratch();
    }

    /// Threads in use (see [`Executor::set_threads`]).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Total f32 elements held by the buffer arena of runs (activations only, weights
    /// excluded).
    pub fn arena_len(&self) -> usize {
        self.fused.plan.buffers.iter().sum()
    }

    /// Runs the graph on `inputs` (one per graph input, matching shapes) and returns the outputs.
    pub fn run(&mut self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        self.execute(inputs, None, None, &mut out)?;
        Ok(out)
    }

    /// [`Executor::run`] writing the outputs into `outputs`, whose storage is reused when the
    /// shapes match: a steady-state loop of single-threaded runs allocates nothing.
    pub fn run_into(&mut self, inputs: &[&Tensor], outputs: &mut Vec<Tensor>) -> Result<()> {
        self.execute(inputs, None, None, outputs)
    }

    /// Like [`Executor::run`], and adds the wall time of every step to `profile`.
    pub fn run_profiled(
        &mut self,
        inputs: &[&Tensor],
        profile: &mut Profile,
    ) -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        self.execute(inputs, None, Some(profile), &mut out)?;
        Ok(out)
    }

    /// Like [`Executor::run`], and calls `observer` with every node's output value and data
    /// right after the node is computed (Reshape outputs included, seen through their alias).
    /// Runs node by node, so every value exists; the outputs are the same bits as
    /// [`Executor::run`]'s.
    pub fn run_observed(
        &mut self,
        inputs: &[&Tensor],
        observer: &mut dyn FnMut(ValueId, &[f32]),
    ) -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        self.execute(inputs, Some(observer), None, &mut out)?;
        Ok(out)
    }

    fn check_inputs(&self, inputs: &[&Tensor]) -> Result<()> {
        if inputs.len() != self.graph.inputs.len() {
            return Err(Error::BadInput(format!(
                "graph takes {} inputs, got {}",
                self.graph.inputs.len(),
                inputs.len()
            )));
        }
        for (n, (t, &id)) in inputs.iter().zip(&self.graph.inputs).enumerate() {
            let want = self.graph.shape(id);
            if t.shape != want || t.data.len() != self.fused.plan.lens[id as usize] {
                return Err(Error::BadInput(format!(
                    "input {n} ({}) must have shape {want:?}, got {:?} with {} elements",
                    self.graph.values[id as usize].name,
                    t.shape,
                    t.data.len()
                )));
            }
        }
        Ok(())
    }

    fn execute(
        &mut self,
        inputs: &[&Tensor],
        observer: Option<&mut Observer<'_>>,
        profile: Option<&mut Profile>,
        outputs: &mut Vec<Tensor>,
    ) -> Result<()> {
        self.check_inputs(inputs)?;
        let integer_dataflow = observer.is_none() && !self.fused.plan.int_buffers.is_empty();
        let program = if observer.is_some() {
            if self.observed.is_none() {
                let plan = plan::plan(&self.graph, &self.kernels, false, &self.linears)?;
                self.observed = Some(Program::new(plan));
            }
            self.observed
                .as_mut()
                .ok_or(Error::BadInput("no plan".into()))?
        } else {
            &mut self.fused
        };
        // The steps of a quantized model's integer dataflow share out their work on the spin
        // pool; the few ops left node by node around them (patch embedding, final norm, head)
        // run serially there, because rayon's job queues allocate as they cycle and steady-state
        // runs must not allocate (host/tests/alloc_free.rs).
        let ctx = Ctx {
            ks: self.kernels,
            pool: if integer_dataflow {
                None
            } else {
                self.pool.as_ref()
            },
            spin: self.spin.as_ref(),
            threads: self.threads,
        };
        step::run(
            &self.graph,
            program,
            &ctx,
            &self.scratches,
            inputs,
            observer,
            profile,
            outputs,
        )
    }
}

/// The elements of value `id` in its planned storage.
fn view<'a>(
    graph: &'a Graph,
    plan: &Plan,
    inputs: &[&'a Tensor],
    arena: &'a [Vec<f32>],
    id: ValueId,
) -> &'a [f32] {
    let len = plan.lens[id as usize];
    match plan.locs[id as usize] {
        Loc::Const(c) => &graph.const_data(c).unwrap_or(&[])[..len],
        Loc::Input(n) => &inputs[n].data[..len],
        Loc::Arena(b) => &arena[b][..len],
        Loc::Unset => &[],
    }
}
