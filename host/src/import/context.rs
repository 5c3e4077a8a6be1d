//! What a translator sees: the tract node being translated, its output shape, and what the
//! outlets before it became.

use super::builder::Builder;
use anyhow::{Context, Result, anyhow};
use qvit_device::graph::{Op, ValueId};
use std::collections::HashMap;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

/// What a tract outlet became: a device value, or a non-f32 constant kept aside for attributes.
#[derive(Clone)]
pub(crate) enum Mapped {
    Value(ValueId),
    Aux(Arc<Tensor>),
}

/// What a translator returns: what each output of the node became.
pub(crate) type Translated = Result<Vec<Mapped>>;

/// One tract node under translation.
pub(crate) struct NodeCx<'a> {
    /// The model it belongs to.
    pub model: &'a TypedModel,
    /// The node.
    pub node: &'a TypedNode,
    /// What every outlet translated so far became.
    pub map: &'a HashMap<OutletId, Mapped>,
    /// Name of the node (and of the device node that replaces it).
    pub name: &'a str,
    /// Concrete shape of its first output.
    pub out_shape: Vec<usize>,
}

impl NodeCx<'_> {
    /// The device value of input `i` (a non-f32 constant becomes an f32 constant value).
    pub fn input(&self, i: usize, b: &mut Builder) -> Result<ValueId> {
        value_of(self.map, self.node.inputs[i], b, self.model)
    }

    /// The device values of every input.
    pub fn inputs(&self, b: &mut Builder) -> Result<Vec<ValueId>> {
        (0..self.node.inputs.len())
            .map(|i| self.input(i, b))
            .collect()
    }

    /// What input `i` became.
    pub fn mapped(&self, i: usize) -> Result<Mapped> {
        let o = self.node.inputs[i];
        self.map
            .get(&o)
            .cloned()
            .with_context(|| format!("outlet {o:?} was not translated"))
    }

    /// Input `i` when it is a non-f32 constant kept aside.
    pub fn aux(&self, i: usize) -> Option<Arc<Tensor>> {
        match self.map.get(&self.node.inputs[i])? {
            Mapped::Aux(t) => Some(t.clone()),
            Mapped::Value(_) => None,
        }
    }

    /// Input `i`'s value when tract knows it as a constant.
    pub fn known(&self, i: usize) -> Option<Arc<Tensor>> {
        self.model
            .outlet_fact(self.node.inputs[i])
            .ok()?
            .konst
            .clone()
    }

    /// One device node named after the tract node, with its output shape: the translation of
    /// a node that maps to a single device op.
    pub fn single(&self, b: &mut Builder, op: Op, inputs: Vec<ValueId>) -> Vec<Mapped> {
        vec![Mapped::Value(b.node(
            self.name,
            op,
            inputs,
            self.out_shape.clone(),
        ))]
    }
}

pub(crate) fn concrete_shape(fact: &TypedFact) -> Result<Vec<usize>> {
    fact.shape
        .iter()
        .map(|d| {
            d.to_usize()
                .map_err(|_| anyhow!("symbolic dimension {d} left after typing"))
        })
        .collect()
}

/// The device value of an outlet; a non-f32 constant becomes an f32 constant value if asked.
pub(crate) fn value_of(
    map: &HashMap<OutletId, Mapped>,
    o: OutletId,
    b: &mut Builder,
    model: &TypedModel,
) -> Result<ValueId> {
    match map
        .get(&o)
        .with_context(|| format!("outlet {o:?} was not translated"))?
    {
        Mapped::Value(v) => Ok(*v),
        Mapped::Aux(t) => {
            let data = tensor_f32(t)?;
            Ok(b.constant(&model.node(o.node).name, t.shape().to_vec(), data))
        }
    }
}

pub(crate) fn tensor_f32(t: &Tensor) -> Result<Vec<f32>> {
    let c = t.cast_to::<f32>()?;
    Ok(c.to_plain_array_view::<f32>()?.iter().copied().collect())
}
