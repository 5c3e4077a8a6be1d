//! qvit host tool library: ONNX import, calibration, relevance, quantization and reports.
//!
//! Pipeline modules (`import`, `quant`, `lrp`, `explain`, `compare`, `eval`, `deploy`) build on
//! the shared [`graph`] toolkit, [`data`] and [`prep`]; the command line (`src/cli/`, the `qvit`
//! binary) builds on them. ARCHITECTURE.md at the repository root maps the whole data flow.
#![forbid(unsafe_code)]

pub mod compare;
pub mod data;
pub mod deploy;
pub mod eval;
pub mod explain;
pub mod files;
pub mod fixtures;
pub mod graph;
pub mod import;
pub mod inspect;
pub mod lrp;
pub mod package;
pub mod plot;
pub mod prep;
pub mod progress;
pub mod quant;
pub mod source;
