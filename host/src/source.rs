//! Opening what the user points at: an ONNX model (imported on the fly) or a `.qvit` bundle,
//! told apart by their first bytes (not their names).

use crate::files::{ModelFile, model_file};
use crate::import;
use crate::prep::PrepOptions;
use anyhow::{Context, Result};
use qvit_device::bundle::{Bundle, Header};
use std::path::Path;

/// Whether `path` holds a bundle (its magic bytes) rather than an ONNX model.
pub fn is_bundle(path: &Path) -> bool {
    model_file(path, "").is_ok_and(|k| k == ModelFile::Bundle)
}

/// Reads class labels, one per line, from `path`; or from `labels.txt` beside the model.
pub fn labels(explicit: Option<&Path>, model: &Path) -> Result<Vec<String>> {
    let beside = model.with_file_name("labels.txt");
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None if beside.exists() => beside,
        None => return Ok(vec![]),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading labels {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Imports an ONNX model into a float bundle, with preprocessing and labels in its header.
pub fn float_bundle(
    model: &Path,
    input_shape: Option<&[usize]>,
    prep: &PrepOptions,
    labels_file: Option<&Path>,
) -> Result<Bundle> {
    let imp = import::import_path(model, input_shape)?;
    let name = model
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    let preprocess = if imp.input_shape.len() == 4 {
        Some(
            prep.resolve(&imp.input_shape)
                .with_context(|| format!("preprocessing for {}", model.display()))?,
        )
    } else {
        None
    };
    let mut labels = labels(labels_file, model)?;
    let classes = imp
        .graph
        .outputs
        .first()
        .and_then(|&o| imp.graph.shape(o).last().copied())
        .unwrap_or(0);
    if !labels.is_empty() && labels.len() != classes {
        eprintln!(
            "warning: {} labels for {classes} output classes; labels dropped",
            labels.len()
        );
        labels.clear();
    }
    let header = Header {
        model_name: name,
        input_shape: imp.input_shape.clone(),
        preprocess,
        labels,
        ..Header::for_graph("", &imp.graph)
    };
    Ok(Bundle {
        header,
        graph: imp.graph,
    })
}

/// A bundle from a `.qvit` file, or from an ONNX model imported with `prep`. A bundle keeps
/// its recorded preprocessing except where `prep` overrides it.
pub fn open(model: &Path, input_shape: Option<&[usize]>, prep: &PrepOptions) -> Result<Bundle> {
    match model_file(model, "an ONNX model or a .qvit bundle")? {
        ModelFile::Bundle => {
            let mut b = Bundle::read_file(model)
                .with_context(|| format!("loading bundle {}", model.display()))?;
            if prep.given() {
                b.header.preprocess = Some(
                    prep.resolve_over(b.header.preprocess.as_ref(), &b.header.input_shape)
                        .with_context(|| format!("preprocessing for {}", model.display()))?,
                );
            }
            Ok(b)
        }
        ModelFile::Onnx => float_bundle(model, input_shape, prep, None),
    }
}
