//! qvit host tool library: ONNX import, calibration, relevance, quantization and reports.
pub mod fixtures;
pub mod import;
pub mod inspect;
