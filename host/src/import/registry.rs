//! The op registry: one table from each translatable tract op to its translator (as tract's
//! own ONNX op registry maps ONNX op names to constructors). Translating a node is one lookup by
//! the op's type; a tract op missing from the table is an error naming it, never a silent guess.

use super::builder::Builder;
use super::context::{Mapped, NodeCx, Translated};
use super::conv;
use super::ops as t;
use anyhow::{Context, Result, bail};
use std::any::TypeId;
use std::collections::HashMap;
use std::sync::LazyLock;
use tract_core::downcast_rs::Downcast;
use tract_core::ops;
use tract_onnx::prelude::*;

/// Which values an op may produce and still be translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Values {
    /// Constants, casts and identities: folded or kept aside whatever their type.
    Any,
    /// Everything computed at run time: f32 only (qvit computes in f32).
    F32,
}

type Translator = Box<dyn Fn(&dyn TypedOp, &NodeCx, &mut Builder) -> Translated + Send + Sync>;

struct Entry {
    values: Values,
    translate: Translator,
}

/// Translators by the Rust type of the tract op they handle.
#[derive(Default)]
pub(crate) struct Registry {
    by_type: HashMap<TypeId, Entry>,
}

impl Registry {
    fn register<O: TypedOp>(
        &mut self,
        values: Values,
        f: fn(&O, &NodeCx, &mut Builder) -> Translated,
    ) {
        let translate: Translator = Box::new(move |op, cx, b| {
            let op = op
                .downcast_ref::<O>()
                .context("the registry filed this op under another type")?;
            f(op, cx, b)
        });
        let old = self
            .by_type
            .insert(TypeId::of::<O>(), Entry { values, translate });
        assert!(
            old.is_none(),
            "{} registered twice",
            std::any::type_name::<O>()
        );
    }

    /// Whether a translator handles ops of type `O`.
    #[cfg(test)]
    fn handles<O: TypedOp>(&self) -> bool {
        self.by_type.contains_key(&TypeId::of::<O>())
    }

    /// The translation of the node in `cx`: what each of its outputs became.
    pub(crate) fn translate(&self, cx: &NodeCx, b: &mut Builder) -> Result<Vec<Mapped>> {
        let op: &dyn TypedOp = cx.node.op.as_ref();
        let entry = self.by_type.get(&Downcast::as_any(op).type_id());
        let dt = cx.node.outputs[0].fact.datum_type;
        if entry.is_none_or(|e| e.values == Values::F32) && dt != f32::datum_type() {
            bail!("computes {dt:?} values at run time; qvit computes in f32 only");
        }
        let Some(entry) = entry else {
            bail!("no translation for this op");
        };
        (entry.translate)(op, cx, b)
    }
}

/// Every tract op qvit translates. Adding one: write its translator (in `ops.rs`, or a file of
/// its own for a large one, as `conv.rs`), add a line here, and an import test that uses it
/// (ARCHITECTURE.md, "Adding an op").
fn all() -> Registry {
    let mut r = Registry::default();
    r.register::<ops::konst::Const>(Values::Any, t::konst);
    r.register::<ops::cast::Cast>(Values::Any, t::cast);
    r.register::<ops::identity::Identity>(Values::Any, t::identity);
    r.register::<ops::einsum::EinSum>(Values::F32, t::einsum);
    r.register::<ops::binary::TypedBinOp>(Values::F32, t::binary);
    r.register::<ops::element_wise::ElementWiseOp>(Values::F32, t::element_wise);
    r.register::<ops::nn::Reduce>(Values::F32, t::reduce);
    r.register::<ops::nn::Softmax>(Values::F32, t::softmax);
    r.register::<ops::change_axes::AxisOp>(Values::F32, t::axis_op);
    r.register::<ops::array::TypedConcat>(Values::F32, t::concat);
    r.register::<ops::array::Slice>(Values::F32, t::slice);
    r.register::<ops::array::Gather>(Values::F32, t::gather);
    r.register::<ops::array::MultiBroadcastTo>(Values::F32, t::broadcast);
    r.register::<ops::array::Pad>(Values::F32, t::pad);
    r.register::<ops::nn::RmsNorm>(Values::F32, t::rms_norm);
    r.register::<ops::cnn::Conv>(Values::F32, conv::convert_conv);
    r
}

/// The registry, built on first use.
pub(crate) fn registry() -> &'static Registry {
    static REGISTRY: LazyLock<Registry> = LazyLock::new(all);
    &REGISTRY
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lookup key is the op's own type, not the box holding it (a `Box<dyn TypedOp>` is
    /// itself `Any`, and asking it would find nothing).
    #[test]
    fn lookup_is_by_the_op_type() {
        let r = registry();
        assert!(r.handles::<ops::nn::Softmax>() && r.handles::<ops::cnn::Conv>());
        let op: Box<dyn TypedOp> = Box::new(ops::identity::Identity);
        let inner: &dyn TypedOp = op.as_ref();
        assert_eq!(
            Downcast::as_any(inner).type_id(),
            TypeId::of::<ops::identity::Identity>()
        );
        assert_ne!(
            Downcast::as_any(&op).type_id(),
            TypeId::of::<ops::identity::Identity>()
        );
    }
}
