//! Fuzzes the bundle decoder: arbitrary bytes must give `Ok` or a typed error, never a panic,
//! an abort or an out-of-memory. See `harness::bundle_decode`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::bundle_decode(data));
