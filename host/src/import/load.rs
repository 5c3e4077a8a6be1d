//! Loading an ONNX file with tract at a fixed input shape, decluttered and constant-folded.
//! Every tract call runs inside [`guard`], so a panic in tract is an error naming the step.

use super::guard::guard;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::path::Path;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::DimLike;

/// Most elements an imported model's input may have: 16 Mi (64 MiB of f32), far above any
/// ViT's (3×518×518 is 0.8 Mi) yet small enough that tract's typing and constant folding,
/// which size some tensors from the input shape, stay within a board's memory.
pub const MAX_INPUT_ELEMENTS: u64 = 1 << 24;
/// Highest input rank accepted (the device's limit).
pub const MAX_INPUT_RANK: usize = qvit_device::shape::MAX_RANK;

/// Where a fixed input shape comes from: named in messages, with what to do about a misfit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeFrom {
    /// `--input-shape` on the command line.
    Flag,
    /// The input shape recorded in a bundle (`qvit compare`, `qvit explain --reference`).
    Bundle,
}

impl ShapeFrom {
    fn name(self) -> &'static str {
        match self {
            ShapeFrom::Flag => "--input-shape",
            ShapeFrom::Bundle => "the bundle's input shape",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            ShapeFrom::Flag => "give the shape the model takes",
            ShapeFrom::Bundle => "was the bundle made from this model?",
        }
    }
}

/// A decluttered tract model with concrete shapes, plus the facts the importer reports.
pub struct Loaded {
    /// The typed, decluttered model.
    pub model: TypedModel,
    /// The concrete input shape used.
    pub input_shape: Vec<usize>,
    /// The ONNX opset of the default domain.
    pub opset: i64,
}

/// Checks an input shape against `MAX_INPUT_RANK` and `MAX_INPUT_ELEMENTS`, and that no
/// dimension is zero. `what` names it in messages (e.g. `--input-shape`).
pub fn check_input_shape(shape: &[usize], what: &str) -> Result<()> {
    if shape.is_empty() || shape.len() > MAX_INPUT_RANK {
        bail!(
            "{what} {shape:?} has rank {}; give 1 to {MAX_INPUT_RANK} dimensions, e.g. 1,3,224,224",
            shape.len()
        );
    }
    if let Some(i) = shape.iter().position(|&d| d == 0) {
        bail!("{what} {shape:?}: dimension {i} is 0; every dimension must be at least 1");
    }
    let elements = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
        .filter(|&n| n <= MAX_INPUT_ELEMENTS);
    if elements.is_none() {
        bail!(
            "{what} {shape:?} has {} elements, more than the {MAX_INPUT_ELEMENTS} (64 MiB of f32) \
             qvit accepts; give the shape of one image, e.g. 1,3,224,224",
            shape
                .iter()
                .map(|&d| d as u128)
                .try_fold(1u128, |n, d| n.checked_mul(d))
                .map_or("over 2^128".to_string(), |n| n.to_string())
        );
    }
    Ok(())
}

/// Loads `path` (ONNX; external data next to it is found by tract). `input_shape` comes from
/// `from` (named in messages).
pub fn load_path(path: &Path, input_shape: Option<&[usize]>, from: ShapeFrom) -> Result<Loaded> {
    let onnx = tract_onnx::onnx();
    let proto = guard("reading the ONNX protobuf", || {
        onnx.proto_model_for_path(path)
    })
    .with_context(|| format!("reading ONNX protobuf {}", path.display()))?;
    let opset = default_opset(&proto);
    let model = guard("loading the ONNX model", || onnx.model_for_path(path))
        .with_context(|| format!("loading ONNX model {}", path.display()))?;
    finish(model, input_shape, from, opset).with_context(|| format!("loading {}", path.display()))
}

/// Loads an in-memory ONNX model (all tensor data inline).
pub fn load_proto(proto: &ModelProto, input_shape: Option<&[usize]>) -> Result<Loaded> {
    let opset = default_opset(proto);
    let model = guard("loading the ONNX model", || {
        tract_onnx::onnx().model_for_proto_model(proto)
    })
    .context("loading ONNX model from memory")?;
    finish(model, input_shape, ShapeFrom::Flag, opset)
}

fn default_opset(proto: &ModelProto) -> i64 {
    proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(0)
}

fn finish(
    model: InferenceModel,
    input_shape: Option<&[usize]>,
    from: ShapeFrom,
    opset: i64,
) -> Result<Loaded> {
    if model.inputs.len() != 1 {
        bail!(
            "the model has {} inputs; qvit imports single-input vision models",
            model.inputs.len()
        );
    }
    let declared = declared_dims(&model)?;
    let shape = resolve_shape(&declared, input_shape, from)?;
    // Symbolic dimensions other than the batch were set to 1: a likely reason for failure.
    let guessed: Vec<usize> = (1..declared.len())
        .filter(|&i| input_shape.is_none() && declared[i].is_none())
        .collect();
    let hint = if guessed.is_empty() {
        String::new()
    } else {
        format!(
            "; the model leaves input dimension(s) {guessed:?} open and they were set to 1: \
             pass --input-shape with the real sizes, e.g. 1,3,224,224"
        )
    };
    // Fixing the input fact up front is the common path. Exports whose value_info carries a
    // symbolic batch (e.g. DINOv2's `batch_size`) refuse to unify it with a number, so the
    // fallback types the model symbolically and substitutes the symbols afterwards.
    let what = format!("typing the model at input shape {shape:?}");
    let typed = match guard(&what, || fixed_input(model.clone(), &shape)) {
        Ok(t) => t,
        Err(first) => {
            guard(&what, || symbolic_then_concrete(model, &declared, &shape)).map_err(|second| {
                anyhow::anyhow!(
                    "tract could not type the model at input shape {shape:?}: {}; \
                     typing symbolically also failed: {}{hint}",
                    brief(&first),
                    brief(&second)
                )
            })?
        }
    };
    let model = guard("decluttering the model", || typed.into_decluttered())
        .with_context(|| format!("decluttering the model at input shape {shape:?}{hint}"))?;
    Ok(Loaded {
        model,
        input_shape: shape,
        opset,
    })
}

/// A tract error in a few lines: its chain can quote whole graphs.
fn brief(e: &anyhow::Error) -> String {
    const MAX: usize = 600;
    let text = format!("{e:#}");
    if text.len() <= MAX {
        return text;
    }
    let cut = (0..=MAX)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{} … ({} more characters)", &text[..cut], text.len() - cut)
}

/// The input's declared dims: `Some(n)` for a number, `None` for a symbol or an unknown.
fn declared_dims(model: &InferenceModel) -> Result<Vec<Option<usize>>> {
    let fact = model.input_fact(0)?;
    let Some(dims) = fact.shape.concretize() else {
        return Ok(vec![]);
    };
    Ok(dims.iter().map(|d| d.to_usize().ok()).collect())
}

fn resolve_shape(
    declared: &[Option<usize>],
    given: Option<&[usize]>,
    from: ShapeFrom,
) -> Result<Vec<usize>> {
    let name = from.name();
    match given {
        Some(g) => {
            check_input_shape(g, name)?;
            if !declared.is_empty() && declared.len() != g.len() {
                bail!(
                    "{name} {g:?} has rank {} but the model's input has rank {}; {}",
                    g.len(),
                    declared.len(),
                    from.advice()
                );
            }
            for (i, (d, g)) in declared.iter().zip(g).enumerate() {
                if let Some(d) = d
                    && d != g
                {
                    bail!(
                        "{name} dimension {i} is {g} but the model fixes it to {d}; {}",
                        from.advice()
                    );
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
            let shape: Vec<usize> = declared.iter().map(|d| d.unwrap_or(1)).collect();
            check_input_shape(&shape, "the model's declared input shape")
                .context("pass --input-shape to import it at another shape")?;
            Ok(shape)
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
