//! qvit host tool library: ONNX import, calibration, relevance, quantization and reports.
pub mod compare;
pub mod data;
pub mod deploy;
pub mod eval;
pub mod explain;
pub mod fixtures;
pub mod import;
pub mod inspect;
pub mod lrp;
pub mod plot;
pub mod prep;
pub mod quant;
pub mod source;
