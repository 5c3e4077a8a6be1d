//! Fuzzes the bundle loader and one inference on small graphs: mutated bundles that still
//! decode are planned and run. See `harness::bundle_run`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::bundle_run(data));
