//! The bundle header: model name, input shape, preprocessing, labels, producer.

use super::convert::{check_name, shape_from_wire};
use super::limits;
use super::wire::{WireHeader, WireLayout, WirePreprocess};
use crate::graph::Graph;
use crate::preprocess::{Layout, Preprocess};
use crate::{Error, Result};

/// The producer string of bundles written by this crate, e.g. `qvit 0.1.0`.
pub const PRODUCER: &str = concat!("qvit ", env!("CARGO_PKG_VERSION"));

/// What a caller needs to know about a model before running it.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// Model name, for reports.
    pub model_name: String,
    /// Shape of the first graph input (equal to the graph's; checked on encode and decode).
    pub input_shape: Vec<usize>,
    /// How to turn an image into the input tensor, when the model takes images.
    pub preprocess: Option<Preprocess>,
    /// Class labels, one per element of the last axis of the first output; empty when unknown.
    pub labels: Vec<String>,
    /// Tool and version that wrote the bundle, e.g. `qvit 0.1.0`.
    pub producer: String,
}

impl Header {
    /// A header for `graph` with no preprocessing and no labels, produced by this crate.
    pub fn for_graph(model_name: &str, graph: &Graph) -> Header {
        let input_shape = graph
            .inputs
            .first()
            .map(|&id| graph.shape(id).to_vec())
            .unwrap_or_default();
        Header {
            model_name: model_name.into(),
            input_shape,
            preprocess: None,
            labels: Vec::new(),
            producer: PRODUCER.into(),
        }
    }

    /// Checks the header against itself and against the graph it describes. `graph` must
    /// already be valid.
    pub fn validate(&self, graph: &Graph) -> Result<()> {
        check_name(&self.model_name, "model name")?;
        check_name(&self.producer, "producer")?;
        let Some(&input) = graph.inputs.first() else {
            return Err(bad("the graph has no inputs"));
        };
        if graph.shape(input) != self.input_shape.as_slice() {
            return Err(bad(format!(
                "header input shape {:?} differs from the graph's {:?}",
                self.input_shape,
                graph.shape(input)
            )));
        }
        if let Some(p) = &self.preprocess {
            check_preprocess(p, &self.input_shape)?;
        }
        if self.labels.len() > limits::MAX_LABELS {
            return Err(Error::TooLarge {
                what: "label count".into(),
                found: self.labels.len() as u64,
                limit: limits::MAX_LABELS as u64,
            });
        }
        for label in &self.labels {
            check_name(label, "label")?;
        }
        // Graph::validate guarantees at least one output.
        let classes = graph
            .outputs
            .first()
            .and_then(|&id| graph.shape(id).last().copied())
            .unwrap_or(1);
        if !self.labels.is_empty() && self.labels.len() != classes {
            return Err(bad(format!(
                "{} labels for {classes} output classes",
                self.labels.len()
            )));
        }
        Ok(())
    }

    pub(super) fn to_wire(&self) -> WireHeader {
        WireHeader {
            model_name: self.model_name.clone(),
            input_shape: self.input_shape.iter().map(|&d| d as u64).collect(),
            preprocess: self.preprocess.as_ref().map(|p| WirePreprocess {
                resize: p.resize,
                crop: p.crop,
                mean: p.mean.clone(),
                std: p.std.clone(),
                grayscale: p.grayscale,
                layout: match p.layout {
                    Layout::Nchw => WireLayout::Nchw,
                    Layout::Nhwc => WireLayout::Nhwc,
                },
            }),
            labels: self.labels.clone(),
            producer: self.producer.clone(),
        }
    }

    /// From the wire, checking what can be checked without the graph.
    pub(super) fn from_wire(w: WireHeader) -> Result<Header> {
        check_name(&w.model_name, "model name")?;
        check_name(&w.producer, "producer")?;
        Ok(Header {
            input_shape: shape_from_wire(&w.input_shape, "header input shape")?,
            model_name: w.model_name,
            preprocess: w.preprocess.map(|p| Preprocess {
                resize: p.resize,
                crop: p.crop,
                mean: p.mean,
                std: p.std,
                grayscale: p.grayscale,
                layout: match p.layout {
                    WireLayout::Nchw => Layout::Nchw,
                    WireLayout::Nhwc => Layout::Nhwc,
                },
            }),
            labels: w.labels,
            producer: w.producer,
        })
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::BadBundle(reason.into())
}

/// Preprocessing must be sound on its own (sizes within the limits a board can afford) and
/// produce exactly the graph's input tensor.
fn check_preprocess(p: &Preprocess, input_shape: &[usize]) -> Result<()> {
    p.check().map_err(|e| bad(format!("preprocess: {e}")))?;
    let c = p.channels();
    let [h, w] = p.crop.map(|x| x as usize);
    let expected = match p.layout {
        Layout::Nchw => [1, c, h, w],
        Layout::Nhwc => [1, h, w, c],
    };
    if input_shape != expected {
        return Err(bad(format!(
            "preprocess makes {expected:?}, the model takes {input_shape:?}"
        )));
    }
    Ok(())
}
