//! Peak memory of `qvit-run bench` grows by about one copy of a model's weights, not two: the
//! bundle file is not held beside its decoded tensors, and each layer's canonical weights are
//! freed as the layer is packed. Measured as the difference in peak RSS (`peak_rss_bytes`)
//! between a model with 16 MiB of int8 weights and one with the same layers 256 times smaller,
//! each in its own process; activations are one token, so weights dominate.
#![cfg(target_os = "linux")]

mod cli_util;
mod common;

use cli_util::{Dir, qvit_run, stdout, write_bundle};
use qvit_device::bench_report::BenchReport;
use qvit_device::bundle::Bundle;

const LAYERS: usize = 16;

fn peak_rss(dir: &Dir, width: usize) -> u64 {
    let g = common::qlinear_chain(1, width, &[(width, 8, 8); LAYERS]);
    let path = write_bundle(dir, &format!("w{width}.qvit"), &Bundle::new("chain", g));
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
    let growth = peak_rss(&dir, 1024).saturating_sub(peak_rss(&dir, 64));
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
