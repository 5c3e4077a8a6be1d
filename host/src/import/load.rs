//! Loading an ONNX file with tract at a fixed input shape, decluttered and constant-folded.

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::path::Path;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::DimLike;

/// A decluttered tract model with concrete shapes, plus the facts the importer reports.
pub struct Loaded {
    /// The typed, decluttered model.
    pub model: TypedModel,
    /// The concrete input shape used.
    pub input_shape: Vec<usize>,
    /// The ONNX opset of the default domain.
    pub opset: i64,
}

/// Loads `path` (ONNX; external data next to it is found by tract).
pub fn load_path(path: &Path, input_shape: Option<&[usize]>) -> Result<Loaded> {
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_path(path)
        .with_context(|| format!("reading ONNX protobuf {}", path.display()))?;
    let opset = default_opset(&proto);
    let model = onnx
        .model_for_path(path)
        .with_context(|| format!("loading ONNX model {}", path.display()))?;
    finish(model, input_shape, opset)
}

/// Loads an in-memory ONNX model (all tensor data inline).
pub fn load_proto(proto: &ModelProto, input_shape: Option<&[usize]>) -> Result<Loaded> {
    let opset = default_opset(proto);
    let model = tract_onnx::onnx()
        .model_for_proto_model(proto)
        .context("loading ONNX model from memory")?;
    finish(model, input_shape, opset)
}

fn default_opset(proto: &ModelProto) -> i64 {
    proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(0)
}

fn finish(model: InferenceModel, input_shape: Option<&[usize]>, opset: i64) -> Result<Loaded> {
    if model.inputs.len() != 1 {
        bail!(
            "the model has {} inputs; qvit imports single-input vision models",
            model.inputs.len()
        );
    }
    let declared = declared_dims(&model)?;
    let shape = resolve_shape(&declared, input_shape)?;
    // Fixing the input fact up front is the common path. Exports whose value_info carries a
    // symbolic batch (e.g. DINOv2's `batch_size`) refuse to unify it with a number, so the
    // fallback types the model symbolically and substitutes the symbols afterwards.
    let typed = match fixed_input(model.clone(), &shape) {
        Ok(t) => t,
        Err(first) => symbolic_then_concrete(model, &declared, &shape).map_err(|second| {
            anyhow::anyhow!(
                "tract could not type the model at input shape {shape:?}: {first:#}; \
                 typing symbolically also failed: {second:#}"
            )
        })?,
    };
    let model = typed.into_decluttered().context("decluttering the model")?;
    Ok(Loaded {
        model,
        input_shape: shape,
        opset,
    })
}

/// The input's declared dims: `Some(n)` for a number, `None` for a symbol or an unknown.
fn declared_dims(model: &InferenceModel) -> Result<Vec<Option<usize>>> {
    let fact = model.input_fact(0)?;
    let Some(dims) = fact.shape.concretize() else {
        return Ok(vec![]);
    };
    Ok(dims.iter().map(|d| d.to_usize().ok()).collect())
}

fn resolve_shape(declared: &[Option<usize>], given: Option<&[usize]>) -> Result<Vec<usize>> {
    match given {
        Some(g) => {
            if !declared.is_empty() && declared.len() != g.len() {
                bail!(
                    "--input-shape has rank {} but the model's input has rank {}",
                    g.len(),
                    declared.len()
                );
            }
            for (i, (d, g)) in declared.iter().zip(g).enumerate() {
                if let Some(d) = d
                    && d != g
                {
                    bail!("--input-shape dimension {i} is {g} but the model fixes it to {d}");
                }
            }
            Ok(g.to_vec())
        }
        None => {
            if declared.is_empty() {
                bail!(
                    "the model does not declare its input shape; pass --input-shape, e.g. 1,3,224,224"
                );
            }
            // Symbolic dimensions (batch, usually) default to 1.
            Ok(declared.iter().map(|d| d.unwrap_or(1)).collect())
        }
    }
}

fn fixed_input(mut model: InferenceModel, shape: &[usize]) -> Result<TypedModel> {
    model.set_input_fact(0, f32::fact(shape).into())?;
    model.into_typed()
}

fn symbolic_then_concrete(
    model: InferenceModel,
    declared: &[Option<usize>],
    shape: &[usize],
) -> Result<TypedModel> {
    let input_dims: Vec<TDim> = model
        .input_fact(0)?
        .shape
        .concretize()
        .context("input shape unknown")?
        .to_vec();
    let typed = model.into_typed()?;
    let mut subs = HashMap::new();
    for (i, dim) in input_dims.iter().enumerate() {
        if declared.get(i).copied().flatten().is_none() {
            for sym in dim.symbols() {
                subs.insert(sym, TDim::Val(shape[i] as i64));
            }
        }
    }
    typed.set_symbols(&subs)
}
