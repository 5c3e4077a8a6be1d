//! Translation of a decluttered tract model into the device's op set, one tract node at a time.
//!
//! Every tract node either maps to device nodes, folds away (casts to f32, identities), or is
//! recorded as unsupported; all unsupported nodes are reported together at the end. Which
//! translator handles which op is the registry's table ([`super::registry`]).

use super::builder::Builder;
use super::context::{Mapped, NodeCx, concrete_shape, value_of};
use super::registry::registry;
use anyhow::Result;
use std::collections::HashMap;
use tract_onnx::prelude::*;

/// A tract node that has no device translation.
#[derive(Debug, Clone)]
pub struct Unsupported {
    /// Node name.
    pub name: String,
    /// tract op name.
    pub op: String,
    /// Why it could not be translated.
    pub reason: String,
}

/// Converts `model` into device nodes appended to `b`.
pub fn convert(model: &TypedModel, b: &mut Builder) -> Result<Vec<Unsupported>> {
    let mut map: HashMap<OutletId, Mapped> = HashMap::new();
    let mut unsupported = vec![];
    for &input in model.input_outlets()? {
        let shape = concrete_shape(model.outlet_fact(input)?)?;
        let name = model.node(input.node).name.clone();
        map.insert(input, Mapped::Value(b.input(&name, shape)));
    }
    for id in model.eval_order()? {
        let node = model.node(id);
        if model.input_outlets()?.iter().any(|o| o.node == id) {
            continue;
        }
        let translated = concrete_shape(&node.outputs[0].fact).and_then(|out_shape| {
            let cx = NodeCx {
                model,
                node,
                map: &map,
                name: node.name.as_str(),
                out_shape,
            };
            registry().translate(&cx, b)
        });
        match translated {
            Ok(outs) => {
                for (slot, m) in outs.into_iter().enumerate() {
                    map.insert(OutletId::new(id, slot), m);
                }
            }
            Err(e) => {
                unsupported.push(Unsupported {
                    name: node.name.clone(),
                    op: node.op.name().to_string(),
                    reason: format!("{e:#}"),
                });
                // Keep going with a placeholder so every unsupported node is found in one pass.
                for (slot, o) in node.outputs.iter().enumerate() {
                    let shape = concrete_shape(&o.fact).unwrap_or_default();
                    let v = b.constant(
                        &format!("{}.unsupported", node.name),
                        shape.clone(),
                        vec![0.0; shape.iter().product()],
                    );
                    map.insert(OutletId::new(id, slot), Mapped::Value(v));
                }
            }
        }
    }
    if unsupported.is_empty() {
        for &o in model.output_outlets()? {
            let v = value_of(&map, o, b, model)?;
            b.output(v);
        }
    }
    Ok(unsupported)
}
