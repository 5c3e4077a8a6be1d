//! ONNX → device graph: tract loads, types and declutters the model at a fixed input shape
//! (`load.rs`); each tract node is translated into the device op set by the translator the op
//! registry names for it (`registry.rs`, `ops.rs`, `conv.rs`, `einsum.rs`); LayerNorm, GELU,
//! ReLU and Linear+bias are fused back out of their primitives ([`fuse`]).

mod builder;
mod context;
mod conv;
mod convert;
mod einsum;
pub mod fuse;
mod guard;
mod load;
mod ops;
mod registry;

pub use builder::permute;
pub use convert::Unsupported;
pub use load::{Loaded, MAX_INPUT_ELEMENTS, ShapeFrom, check_input_shape};

use anyhow::{Context, Result, bail};
use qvit_device::Graph;
use std::path::Path;
use tract_onnx::pb::ModelProto;

/// A model imported into the device op set.
pub struct Imported {
    /// The graph the device runs.
    pub graph: Graph,
    /// Concrete input shape.
    pub input_shape: Vec<usize>,
    /// ONNX opset of the default domain.
    pub opset: i64,
    /// The decluttered tract model it came from (the oracle in tests and `qvit compare`).
    pub tract: tract_onnx::prelude::TypedModel,
}

/// Imports an ONNX file. `input_shape` overrides the model's; symbolic dimensions default to 1.
pub fn import_path(path: &Path, input_shape: Option<&[usize]>) -> Result<Imported> {
    import_path_from(path, input_shape, ShapeFrom::Flag)
}

/// [`import_path`] with the input shape taken from `from` (named in messages).
pub fn import_path_from(
    path: &Path,
    input_shape: Option<&[usize]>,
    from: ShapeFrom,
) -> Result<Imported> {
    crate::files::expect_onnx(path)?;
    let loaded = load::load_path(path, input_shape, from)?;
    translate(loaded).with_context(|| format!("importing {}", path.display()))
}

/// Imports an in-memory ONNX model.
pub fn import_proto(proto: &ModelProto, input_shape: Option<&[usize]>) -> Result<Imported> {
    translate(load::load_proto(proto, input_shape)?)
}

fn translate(loaded: Loaded) -> Result<Imported> {
    let mut b = builder::Builder::default();
    let unsupported = guard::guard("translating the model", || {
        convert::convert(&loaded.model, &mut b)
    })?;
    if !unsupported.is_empty() {
        let list: Vec<String> = unsupported
            .iter()
            .map(|u| format!("  {} ({}): {}", u.name, u.op, u.reason))
            .collect();
        bail!(
            "{} node(s) cannot be imported:\n{}",
            unsupported.len(),
            list.join("\n")
        );
    }
    let mut graph = b.graph;
    fuse::fuse(&mut graph);
    Ok(Imported {
        graph,
        input_shape: loaded.input_shape,
        opset: loaded.opset,
        tract: loaded.model,
    })
}
