//! Fuzzes PNG/JPEG decoding and the preprocessing that turns an image into a model input
//! (`qvit-run classify`, `qvit eval`). See `harness::image_preprocess`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::image_preprocess(data));
