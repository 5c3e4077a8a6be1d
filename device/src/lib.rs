//! qvit device runtime: the bundle format, the graph executor and the `qvit-run` binary.
//!
//! Small enough to embed: no model importer, no anyhow, no panics on input.
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bench_report;
pub mod bit_packed;
pub mod bitpack;
pub mod bundle;
pub mod error;
pub mod exec;
pub mod graph;
pub mod model;
pub mod npy;
pub mod outfile;
pub mod preprocess;
pub mod quant;
pub mod shape;
pub mod sysinfo;
pub mod tensor;

pub use error::{Error, Result};
pub use graph::{Graph, Node, Op, Source, Value, ValueId};
pub use preprocess::{Layout, Preprocess};
pub use tensor::Tensor;
