//! One run of a [`Program`]: every node's kernel in order, with the integer buffers and
//! per-step state of the fused kernels.

use super::fuse::{AttnArgs, Epilogue, Input, LinearArgs, Operand, Scratches, Shared};
use super::plan::{Kernel, Loc};
use super::{Ctx, Observer, Profile, Program, elementwise, norm, view};
use crate::{Error, Graph, Result, Tensor};

/// Runs `program` (planned for `graph`) on `inputs` and writes the graph's outputs into
/// `outputs`, reusing their storage.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    graph: &Graph,
    program: &mut Program,
    ctx: &Ctx,
    scratches: &Scratches,
    inputs: &[&Tensor],
    mut observer: Option<&mut Observer<'_>>,
    mut profile: Option<&mut Profile>,
    outputs: &mut Vec<Tensor>,
) -> Result<()> {
    if let Some(p) = profile.as_mut() {
        p.begin_run();
    }
    let mut step = 0;
    for (i, node) in graph.nodes.iter().enumerate() {
        let plan = &program.plan;
        let kernel = &plan.kernels[i];
        match kernel {
            Kernel::Skip => continue,
            Kernel::Alias => {
                if let Some(obs) = observer.as_mut() {
                    obs(
                        node.output,
                        view(graph, plan, inputs, &program.arena, node.output),
                    );
                }
                continue;
            }
            _ => {}
        }
        let started = std::time::Instant::now();
        let invalid = |reason: String| Error::InvalidGraph {
            node: i,
            name: node.name.clone(),
            reason,
        };
        // The f32 buffer this step writes is moved out, so its inputs (other buffers, by
        // planning) stay readable.
        let (out_buf, len) = match plan.writes[i] {
            Some(w) => match plan.locs[w as usize] {
                Loc::Arena(b) => (Some(b), plan.lens[w as usize]),
                _ => return Err(invalid("output has no buffer".into())),
            },
            None => (None, 0),
        };
        let mut out_vec = out_buf
            .map(|b| std::mem::take(&mut program.arena[b]))
            .unwrap_or_default();
        let out = &mut out_vec[..len];
        // Integer buffers this step writes, as shared destinations of its row blocks.
        program.sinks.clear();
        let sink_bufs = match kernel {
            Kernel::FusedQLinear(f) => match &f.epilogue {
                Epilogue::Sinks { sinks, .. } => sinks.as_slice(),
                _ => &[],
            },
            Kernel::LayerNormSinks(l) => l.sinks.as_slice(),
            Kernel::Attention(a) => a.sinks.as_slice(),
            _ => &[],
        };
        for s in sink_bufs {
            let at = plan.int_locs[s.buf];
            program.sinks.push(Shared::new(&mut program.ints[at]));
        }
        let plan = &program.plan;
        let arena = &program.arena;
        let ints = &program.ints;
        let int = |b: usize| ints[plan.int_locs[b]].as_slice();
        let inp = |k: usize| view(graph, plan, inputs, arena, node.inputs[k]);
        let opt = |k: usize| {
            node.inputs
                .get(k)
                .map(|&v| view(graph, plan, inputs, arena, v))
        };
        let res = match kernel {
            Kernel::Skip | Kernel::Alias => Ok(()),
            Kernel::Linear(p) => {
                p.run(ctx, inp(0), inp(1), opt(2), out);
                Ok(())
            }
            Kernel::MatMul(p) => {
                p.run(ctx, inp(0), inp(1), out);
                Ok(())
            }
            Kernel::Conv(p) => {
                p.run(ctx, inp(0), inp(1), opt(2), out, &mut program.scratch);
                Ok(())
            }
            Kernel::LayerNorm(eps) => norm::layer_norm(ctx, inp(0), inp(1), inp(2), *eps, out),
            Kernel::Gelu(kind) => {
                out.copy_from_slice(inp(0));
                norm::gelu(ctx, *kind, out);
                Ok(())
            }
            Kernel::Relu => {
                out.copy_from_slice(inp(0));
                elementwise::relu_in_place(out);
                Ok(())
            }
            Kernel::Softmax(p) => p.run(ctx, inp(0), out, &mut program.scratch),
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
            Kernel::QLinear(p) => p.run(ctx, &mut program.qscratch, inp(0), opt(3), out),
            Kernel::QMatMul(p) => p.run(ctx, &mut program.qscratch, inp(0), inp(1), out),
            Kernel::FusedQLinear(f) => {
                let args = LinearArgs {
                    x: match f.input {
                        Input::F32 => inp(0),
                        Input::Int(_) => &[],
                    },
                    x_int: match f.input {
                        Input::Int(b) => int(b),
                        Input::F32 => &[],
                    },
                    bias: opt(3),
                    residual: match f.epilogue {
                        Epilogue::Add { residual } => view(graph, plan, inputs, arena, residual),
                        _ => &[],
                    },
                    out,
                    sinks: &program.sinks,
                };
                f.run(ctx, scratches, args)
            }
            Kernel::LayerNormSinks(l) => {
                l.run(ctx, scratches, (inp(0), inp(1), inp(2)), &program.sinks)
            }
            Kernel::Attention(a) => {
                let operand = |op: Operand, v: crate::ValueId| match op {
                    Operand::F32 => (view(graph, plan, inputs, arena, v), &[][..]),
                    Operand::Int(b) => (&[][..], int(b)),
                };
                let [qv, kv, vv] = a.values;
                let (q, q_int) = operand(a.q.0, qv);
                let (k, k_int) = operand(a.k.0, kv);
                let (v, v_int) = operand(a.v.0, vv);
                let args = AttnArgs {
                    q,
                    k,
                    v,
                    q_int,
                    k_int,
                    v_int,
                    out,
                    sinks: &program.sinks,
                };
                a.run(ctx, scratches, &mut program.attention, args)
            }
        };
        if let Some(b) = out_buf {
            program.arena[b] = out_vec;
        }
        res.map_err(|e| invalid(e.to_string()))?;
        if let (Some(obs), Some(b)) = (observer.as_mut(), out_buf) {
            obs(node.output, &program.arena[b][..len]);
        }
        if let Some(p) = profile.as_mut() {
            p.record(step, &node.name, step_name(graph, kernel, i), started);
            step += 1;
        }
    }
    outputs.truncate(graph.outputs.len());
    for (k, &id) in graph.outputs.iter().enumerate() {
        let data = view(graph, &program.plan, inputs, &program.arena, id);
        let shape = graph.shape(id);
        match outputs.get_mut(k) {
            Some(t) => {
                if t.shape != shape {
                    t.shape = shape.to_vec();
                }
                t.data.clear();
                t.data.extend_from_slice(data);
            }
            None => outputs.push(Tensor {
                shape: shape.to_vec(),
                data: data.to_vec(),
            }),
        }
    }
    Ok(())
}

/// The op kind a profile shows for a step: the node's op, or what a fused step does.
fn step_name(graph: &Graph, kernel: &Kernel, i: usize) -> &'static str {
    match kernel {
        Kernel::FusedQLinear(f) => match &f.epilogue {
            Epilogue::F32 => "QLinear",
            Epilogue::Add { .. } => "QLinear+Add",
            Epilogue::Sinks { gelu: None, .. } => "QLinear→int8",
            Epilogue::Sinks { gelu: Some(_), .. } => "QLinear+Gelu→int8",
        },
        Kernel::LayerNormSinks(_) => "LayerNorm→int8",
        Kernel::Attention(a) if a.sinks.is_empty() => "Attention",
        Kernel::Attention(_) => "Attention→int8",
        _ => graph.nodes[i].op.kind(),
    }
}
