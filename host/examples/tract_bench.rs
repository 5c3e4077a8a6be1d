//! tract's optimized f32 plan timed on one ONNX model: the peer for `qvit-run bench`.
//!
//! Usage: `tract_bench MODEL.onnx 1,3,224,224 [--iters N] [--warmup W] [--seed S]`
//!
//! The model is loaded the way qvit imports it (typed at the given input shape, decluttered),
//! then optimized by tract and run W times untimed and N times timed on a fixed seeded input.
//! `--seed S` treats MODEL as a weightless fixture whose external initializers are filled with
//! seeded values (`qvit_host::fixtures::load_weightless`). Prints one JSON line with the median
//! and minimum wall time per run. tract runs the plan on the calling thread only.

use anyhow::{Context, Result, bail};
use qvit_host::fixtures::{SeededRng, load_weightless};
use qvit_host::import::{import_path, import_proto};
use std::path::Path;
use std::time::Instant;
use tract_onnx::prelude::*;

struct Args {
    model: String,
    shape: Vec<usize>,
    iters: usize,
    warmup: usize,
    seed: Option<u64>,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let usage = "usage: tract_bench MODEL.onnx 1,3,224,224 [--iters N] [--warmup W] [--seed S]";
    let model = it.next().context(usage)?;
    let shape = it
        .next()
        .context(usage)?
        .split(',')
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .context("input shape must be comma-separated integers, e.g. 1,3,224,224")?;
    let mut args = Args {
        model,
        shape,
        iters: 20,
        warmup: 3,
        seed: None,
    };
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--iters" => args.iters = value.parse().context("--iters")?,
            "--warmup" => args.warmup = value.parse().context("--warmup")?,
            "--seed" => args.seed = Some(value.parse().context("--seed")?),
            _ => bail!("unknown argument {flag}; {usage}"),
        }
    }
    if args.iters == 0 {
        bail!("--iters must be at least 1");
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let path = Path::new(&args.model);
    // The importer's decluttered tract model is the same one `qvit compare` uses as its oracle.
    let imported = match args.seed {
        Some(seed) => import_proto(&load_weightless(path, seed)?, Some(&args.shape))?,
        None => import_path(path, Some(&args.shape))?,
    };
    let plan = imported
        .tract
        .into_optimized()
        .context("tract optimisation")?
        .into_runnable()
        .context("tract plan")?;
    let n: usize = args.shape.iter().product();
    let input: TValue = tract_ndarray::Array::from_shape_vec(
        tract_ndarray::IxDyn(&args.shape),
        SeededRng::new(1).normals(n, 1.0),
    )?
    .into_tvalue();

    for _ in 0..args.warmup {
        plan.run(tvec!(input.clone()))?;
    }
    let mut ms = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let t0 = Instant::now();
        plan.run(tvec!(input.clone()))?;
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let p50 = ms[(ms.len() - 1) / 2];
    let json = serde_json::json!({
        "p50_ms": (p50 * 1000.0).round() / 1000.0,
        "min_ms": (ms[0] * 1000.0).round() / 1000.0,
        "iters": args.iters,
        "warmup": args.warmup,
    });
    println!("{json}");
    Ok(())
}
