//! The f32 graph executor: the reference engine of calibration, relevance and evaluation.
//!
//! [`Executor::new`] plans once (shape checks, per-node kernel plans with precomputed strides,
//! and a liveness-based buffer arena); every [`Executor::run`] after that reuses the same
//! buffers, so inference allocates only the returned output tensors. Matrix products go through
//! the `gemm` crate; LayerNorm, softmax and GELU through the [`KernelSet`].

mod conv;
mod elementwise;
mod layout;
mod matmul;
mod movement;
mod norm;
mod plan;
mod profile;
mod quantized;
mod reduce;

use crate::{Error, Graph, Result, Tensor, ValueId};
/// The f32 matrix product the executor runs on, for host passes (relevance) that need the same
/// products backwards.
pub use matmul::{Strides, gemm_f32};
use plan::{Kernel, Loc, Plan};
pub use profile::{OpTime, Profile, StepTime};
use qvit_kernels::KernelSet;

/// The callback of [`Executor::run_observed`]: a node's output value and its data.
type Observer<'a> = dyn FnMut(ValueId, &[f32]) + 'a;

/// A graph planned for execution: buffers allocated once, reused by every run.
pub struct Executor {
    graph: Graph,
    kernels: KernelSet,
    plan: Plan,
    arena: Vec<Vec<f32>>,
    scratch: Vec<f32>,
    qscratch: quantized::QScratch,
    threads: usize,
    pool: Option<rayon::ThreadPool>,
}

/// What a kernel needs besides its operands: the float kernels and the threads it may use.
pub(crate) struct Ctx<'a> {
    ks: KernelSet,
    pool: Option<&'a rayon::ThreadPool>,
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
    /// shapes do not fit its op or a value is used before it is produced.
    pub fn new(graph: Graph, kernels: KernelSet) -> Result<Self> {
        let plan = plan::plan(&graph, &kernels)?;
        let arena = plan.buffers.iter().map(|&n| vec![0.0; n]).collect();
        let scratch = vec![0.0; plan.scratch];
        Ok(Executor {
            graph,
            kernels,
            plan,
            arena,
            scratch,
            qscratch: Default::default(),
            threads: 1,
            pool: None,
        })
    }

    /// The graph this executor runs.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The kernel set in use.
    pub fn kernels(&self) -> KernelSet {
        self.kernels
    }

    /// Threads used by later runs: 1 runs everything on the calling thread; more runs GEMMs,
    /// batched matrix products and large row ops on a private pool of that many threads.
    /// 0 counts as 1. If the pool cannot be created the executor stays single-threaded.
    pub fn set_threads(&mut self, n: usize) {
        let n = n.max(1);
        if n == self.threads {
            return;
        }
        self.pool = if n > 1 {
            rayon::ThreadPoolBuilder::new().num_threads(n).build().ok()
        } else {
            None
        };
        self.threads = if self.pool.is_some() { n } else { 1 };
    }

    /// Threads in use (see [`Executor::set_threads`]).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Total f32 elements held by the buffer arena (activations only, weights excluded).
    pub fn arena_len(&self) -> usize {
        self.plan.buffers.iter().sum()
    }

    /// Runs the graph on `inputs` (one per graph input, matching shapes) and returns the outputs.
    pub fn run(&mut self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        self.execute(inputs, None, None)
    }

    /// Like [`Executor::run`], and adds the wall time of every step to `profile`.
    pub fn run_profiled(
        &mut self,
        inputs: &[&Tensor],
        profile: &mut Profile,
    ) -> Result<Vec<Tensor>> {
        self.execute(inputs, None, Some(profile))
    }

    /// Like [`Executor::run`], and calls `observer` with every node's output value and data
    /// right after the node is computed (Reshape outputs included, seen through their alias).
    pub fn run_observed(
        &mut self,
        inputs: &[&Tensor],
        observer: &mut dyn FnMut(ValueId, &[f32]),
    ) -> Result<Vec<Tensor>> {
        self.execute(inputs, Some(observer), None)
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
            if t.shape != want || t.data.len() != self.plan.lens[id as usize] {
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
        mut observer: Option<&mut Observer<'_>>,
        mut profile: Option<&mut Profile>,
    ) -> Result<Vec<Tensor>> {
        self.check_inputs(inputs)?;
        if let Some(p) = profile.as_mut() {
            p.begin_run();
        }
        let mut step = 0;
        let ctx = Ctx {
            ks: self.kernels,
            pool: self.pool.as_ref(),
            threads: self.threads,
        };
        for (i, node) in self.graph.nodes.iter().enumerate() {
            let kernel = &self.plan.kernels[i];
            let started = std::time::Instant::now();
            let out_id = node.output as usize;
            let len = self.plan.lens[out_id];
            if let Kernel::Alias = kernel {
                if let Some(obs) = observer.as_mut() {
                    obs(
                        node.output,
                        view(&self.graph, &self.plan, inputs, &self.arena, node.output),
                    );
                }
                continue;
            }
            let Loc::Arena(buf) = self.plan.locs[out_id] else {
                return Err(Error::InvalidGraph {
                    node: i,
                    name: node.name.clone(),
                    reason: "output has no buffer".into(),
                });
            };
            // The output buffer is moved out so inputs (other buffers, by planning) stay readable.
            let mut out_buf = std::mem::take(&mut self.arena[buf]);
            let out = &mut out_buf[..len];
            let arena = &self.arena;
            let inp = |k: usize| view(&self.graph, &self.plan, inputs, arena, node.inputs[k]);
            let opt = |k: usize| {
                node.inputs
                    .get(k)
                    .map(|&v| view(&self.graph, &self.plan, inputs, arena, v))
            };
            let res = match kernel {
                Kernel::Alias => Ok(()),
                Kernel::Linear(p) => {
                    p.run(&ctx, inp(0), inp(1), opt(2), out);
                    Ok(())
                }
                Kernel::MatMul(p) => {
                    p.run(&ctx, inp(0), inp(1), out);
                    Ok(())
                }
                Kernel::Conv(p) => {
                    p.run(&ctx, inp(0), inp(1), opt(2), out, &mut self.scratch);
                    Ok(())
                }
                Kernel::LayerNorm(eps) => norm::layer_norm(&ctx, inp(0), inp(1), inp(2), *eps, out),
                Kernel::Gelu(kind) => {
                    out.copy_from_slice(inp(0));
                    norm::gelu(&ctx, *kind, out);
                    Ok(())
                }
                Kernel::Relu => {
                    out.copy_from_slice(inp(0));
                    elementwise::relu_in_place(out);
                    Ok(())
                }
                Kernel::Softmax(p) => p.run(&ctx, inp(0), out, &mut self.scratch),
                Kernel::Binary(p) => {
                    p.run(inp(0), inp(1), out);
                    Ok(())
                }
                Kernel::Unary(op) => {
                    out.copy_from_slice(inp(0));
                    elementwise::unary_in_place(*op, out);
                    Ok(())
                }
                Kernel::Reduce(p) => {
                    p.run(inp(0), out);
                    Ok(())
                }
                Kernel::Copy(c) => {
                    c.run(inp(0), out);
                    Ok(())
                }
                Kernel::Concat(copies) => {
                    for (k, c) in copies.iter().enumerate() {
                        c.run(inp(k), out);
                    }
                    Ok(())
                }
                Kernel::Gather(p) => {
                    p.run(inp(0), out);
                    Ok(())
                }
                Kernel::Pad(p) => {
                    p.run(inp(0), out);
                    Ok(())
                }
                Kernel::QLinear(p) => p.run(&ctx, &mut self.qscratch, inp(0), opt(3), out),
                Kernel::QMatMul(p) => p.run(&ctx, &mut self.qscratch, inp(0), inp(1), out),
            };
            self.arena[buf] = out_buf;
            res.map_err(|e| Error::InvalidGraph {
                node: i,
                name: node.name.clone(),
                reason: e.to_string(),
            })?;
            if let Some(obs) = observer.as_mut() {
                obs(node.output, &self.arena[buf][..len]);
            }
            if let Some(p) = profile.as_mut() {
                p.record(step, &node.name, node.op.kind(), started);
                step += 1;
            }
        }
        Ok(self
            .graph
            .outputs
            .iter()
            .map(|&id| Tensor {
                shape: self.graph.shape(id).to_vec(),
                data: view(&self.graph, &self.plan, inputs, &self.arena, id).to_vec(),
            })
            .collect())
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
    }
}
