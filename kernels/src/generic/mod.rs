//! Algorithms written once in plain Rust and instantiated by the tier modules under their
//! `#[target_feature]` attributes (memchr's pattern): every function here is `#[inline(always)]`
//! so it compiles with the features of its caller. Never call these from code without FMA
//! (see [`math`]).

pub(crate) mod attn;
pub(crate) mod float_ops;
pub(crate) mod log2;
pub(crate) mod math;
pub(crate) mod quantize;
