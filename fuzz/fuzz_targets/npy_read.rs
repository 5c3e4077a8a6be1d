//! Fuzzes the `.npy` reader (`qvit-run run`'s inputs). See `harness::npy_read`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::npy_read(data));
