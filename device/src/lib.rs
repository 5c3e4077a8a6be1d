//! qvit device runtime: the bundle format, the graph executor and the `qvit-run` binary.
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod error;
pub mod exec;
pub mod graph;

pub use error::{Error, Result};
pub use graph::{Graph, Node, Op, Source, Value, ValueId};
pub mod preprocess;
pub mod tensor;

pub use preprocess::{Layout, Preprocess};
pub use tensor::Tensor;
