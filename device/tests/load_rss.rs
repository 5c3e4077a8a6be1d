//! Peak memory of `qvit-run bench` grows by about one copy of a model's weights, not two: the
//! bundle file is not held beside its decoded tensors, and each layer's canonical weights are
//! freed as the layer is packed. 4-bit weights are never held at a byte per value beyond the
//! layer being packed. Measured as the difference in peak RSS (`peak_rss_bytes`) between a
//! model with 16 Mi weight values and one with the same layers 256 times smaller, each in its
//! own process; activations are one token, so weights dominate.
#![cfg(target_os = "linux")]

mod cli_util;
mod common;

use cli_util::{Dir, qvit_run, stdout, write_bundle};
use qvit_device::bench_report::BenchReport;
use qvit_device::bundle::Bundle;

const LAYERS: usize = 16;

/// Peak RSS of a 1-run bench of `LAYERS` square layers of `width` with `bits`-bit weights.
fn peak_rss(dir: &Dir, width: usize, bits: u8) -> u64 {
    let g = common::qlinear_chain(1, width, &[(width, bits, 8); LAYERS]);
    let name = format!("w{width}-{bits}bit.qvit");
    let path = write_bundle(dir, &name, &Bundle::new("chain", g));
    let args: [&dyn AsRef<std::ffi::OsStr>; 7] = [
        &"bench",
        &path,
        &"--iters",
        &"1",
        &"--warmup",
        &"0",
        &"--json",
    ];
    let report: BenchReport = serde_json::from_str(&stdout(&qvit_run(&args))).unwrap();
    report.peak_rss_bytes.expect("VmHWM on Linux")
}

#[test]
fn loading_holds_the_weights_about_once() {
    let dir = Dir::new("load-rss");
    let weights = (LAYERS * 1024 * 1024) as u64;
    let growth = peak_rss(&dir, 1024, 8).saturating_sub(peak_rss(&dir, 64, 8));
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    // The packed panels alone are the weights' size; a second copy (the file's bytes or the
    // canonical values beside the panels) would double it. Half a copy of slack covers one
    // layer's canonical weights while it is packed and the read buffer.
    assert!(
        growth >= weights && growth < weights + weights / 2,
        "peak RSS grew by {:.1} MiB for {:.1} MiB of weights",
        mib(growth),
        mib(weights)
    );
}

#[test]
fn loading_4_bit_weights_never_holds_every_layer_at_a_byte_per_value() {
    let dir = Dir::new("load-rss-4bit");
    // Nibble panels: half a byte per value, as in the file.
    let panels = (LAYERS * 1024 * 1024 / 2) as u64;
    let growth = peak_rss(&dir, 1024, 4).saturating_sub(peak_rss(&dir, 64, 4));
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    // The file's bit-packed bytes turn into panels layer by layer, beside the layer being
    // packed, unpacked (an eighth of the panels here). Every layer unpacked at once, as
    // loading once did, is twice the panels by itself.
    assert!(
        growth >= panels && growth < panels + panels / 2,
        "peak RSS grew by {:.1} MiB for {:.1} MiB of 4-bit panels",
        mib(growth),
        mib(panels)
    );
}
