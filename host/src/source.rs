//! Opening what the user points at: an ONNX model (imported on the fly) or a `.qvit` bundle.

use crate::import;
use crate::prep::PrepOptions;
use anyhow::{Context, Result};
use qvit_device::bundle::{Bundle, Header};
use std::path::Path;

/// Whether `path` names a bundle rather than an ONNX file.
pub fn is_bundle(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "qvit")
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
        Some(prep.resolve(&imp.input_shape)?)
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

/// A bundle from a `.qvit` file, or from an ONNX model imported with `prep`.
pub fn open(model: &Path, input_shape: Option<&[usize]>, prep: &PrepOptions) -> Result<Bundle> {
    if is_bundle(model) {
        let mut b = Bundle::read_file(model)
            .with_context(|| format!("loading bundle {}", model.display()))?;
        if prep.given() {
            b.header.preprocess = Some(prep.resolve(&b.header.input_shape)?);
        }
        Ok(b)
    } else {
        float_bundle(model, input_shape, prep, None)
    }
}
