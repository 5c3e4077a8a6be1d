//! `qvit-run`: inspect, verify, run and benchmark a `.qvit` bundle on the device.
//!
//! Thin on purpose: argument parsing and printing only; everything else is `qvit_device`.

use clap::{Args, Parser, Subcommand};
use qvit_device::bench_report::{BenchReport, Latency, OpShare, StepShare};
use qvit_device::bundle::{Bundle, BundleStats};
use qvit_device::exec::{Profile, WeightMemory};
use qvit_device::model::Model;
use qvit_device::{Error, Result, Tensor, npy, outfile, preprocess, sysinfo};
use serde_json::{Value as Json, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Run a quantized Vision Transformer bundle (.qvit) on this machine.
#[derive(Parser)]
#[command(name = "qvit-run", version)]
#[command(after_long_help = "EXAMPLES:
    qvit-run info model.qvit                    what is in the bundle, and this CPU
    qvit-run info model.qvit --verify           exit 0 only if the bundle is intact and loads
    qvit-run classify model.qvit cat.jpg dog.png --top 3
    qvit-run run model.qvit --input x.npy --output y.npy
    qvit-run bench model.qvit --threads 4 --iters 100 --json > bench-results/pi4.json

Errors are printed as `error: ...` with their causes, and the exit status is non-zero.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the bundle's model, input, preprocessing, sizes, and the kernel tier and CPU.
    #[command(after_long_help = "EXAMPLES:
    qvit-run info vit-tiny.qvit
    qvit-run info vit-tiny.qvit --json | jq .sizes
    qvit-run info vit-tiny.qvit --verify && echo intact")]
    Info(InfoArgs),
    /// Classify images: decode PNG/JPEG, apply the bundle's preprocessing, print the top classes.
    #[command(after_long_help = "EXAMPLES:
    qvit-run classify vit-tiny.qvit cat.jpg
    qvit-run classify vit-tiny.qvit *.png --top 1 --json")]
    Classify(ClassifyArgs),
    /// Run on raw tensors stored as NumPy .npy files (f32 out; f32/f64/f16/i64/i32/u8/i8 in).
    #[command(after_long_help = "EXAMPLES:
    python3 -c 'import numpy as np; np.save(\"x.npy\", np.random.rand(1,3,224,224).astype(\"f4\"))'
    qvit-run run vit-tiny.qvit --input x.npy --output logits.npy
    qvit-run run two-out.qvit --input x.npy --output a.npy --output b.npy

Inputs holding NaN or infinity are refused unless --allow-non-finite is given. Outputs are
written to a temporary file beside the target and renamed over it, so an interrupted run never
leaves a partial file; an output path that is one of the inputs (or the bundle) is refused.")]
    Run(RunArgs),
    /// Measure latency: warm-up, then min/p50/p90/mean over timed runs, plus peak memory.
    #[command(after_long_help = "EXAMPLES:
    qvit-run bench vit-tiny.qvit
    qvit-run bench vit-tiny.qvit --threads 4 --iters 200 --warmup 20 --json > bench-results/run.json

The input is a fixed pseudo-random tensor of the model's input shape. --json output carries
the commit, CPU model, tier and a UTC timestamp, for bench-results/.")]
    Bench(BenchArgs),
}

#[derive(Args)]
struct InfoArgs {
    /// The .qvit bundle.
    model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also plan the model for this CPU; exit 0 only if the bundle is intact (checksum,
    /// structure, graph validation) and loads.
    #[arg(long)]
    verify: bool,
}

#[derive(Args)]
struct ClassifyArgs {
    /// The .qvit bundle (must record preprocessing).
    model: PathBuf,
    /// PNG or JPEG images.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many classes to print per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RunArgs {
    /// The .qvit bundle.
    model: PathBuf,
    /// Input tensor(s) as .npy, one per graph input, in order.
    #[arg(long, required = true)]
    input: Vec<PathBuf>,
    /// Where to write outputs as .npy: the first output, then the second, ... Each file is
    /// replaced whole (written beside it, then renamed); an input path is refused.
    #[arg(long, required = true)]
    output: Vec<PathBuf>,
    /// Run even when an input holds NaN or infinite values (by default that is an error: the
    /// outputs would be NaN, or plausible-looking garbage for a quantized model).
    #[arg(long)]
    allow_non_finite: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// The .qvit bundle.
    model: PathBuf,
    /// Worker threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,
    /// Timed runs.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    iters: u32,
    /// Untimed runs first.
    #[arg(long, default_value_t = 5)]
    warmup: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also time every executed step (a node, or a group of nodes run as one) and print the
    /// time per step and per op kind: calls, total ms and share of the measured runs.
    #[arg(long)]
    profile: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => info(&a),
        Command::Classify(a) => classify(&a),
        Command::Run(a) => run(&a),
        Command::Bench(a) => bench(&a),
    };
    match result.and_then(|text| print(&text)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("error: {e}\n");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                // Some errors already quote their cause; do not print it twice.
                let text = s.to_string();
                if !msg.contains(&text) {
                    msg += &format!("  caused by: {text}\n");
                }
                source = s.source();
            }
            let _ = std::io::stderr().write_all(msg.as_bytes());
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn print(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            context: "writing to stdout".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

fn info(a: &InfoArgs) -> Result<String> {
    let (bundle, kept, stats) = Bundle::read_file_bit_packed(&a.model)?;
    let h = bundle.header.clone();
    // Planned even without --verify, to report what the weights hold once loaded; a planning
    // failure only fails --verify.
    let (tier, weights) = match Model::from_bit_packed(bundle, kept) {
        Ok(m) => (m.tier(), Ok(m.weight_memory())),
        Err(e) if !a.verify => (qvit_kernels::KernelSet::detect().tier().to_string(), Err(e)),
        Err(e) => return Err(e),
    };
    let pre = h.preprocess.as_ref();
    if a.json {
        return Ok(pretty(&json!({
            "model": h.model_name,
            "format_version": stats.format_version,
            "producer": h.producer,
            "input_shape": h.input_shape,
            "preprocess": pre.map(|p| json!({
                "resize": p.resize, "crop": p.crop, "mean": p.mean, "std": p.std,
                "grayscale": p.grayscale, "layout": format!("{:?}", p.layout).to_uppercase(),
            })),
            "labels": h.labels.len(),
            "params": stats.params,
            "sizes": stats,
            "kernel_tier": tier,
            "resident_weights": weights.as_ref().ok().map(|w| w.iter().map(|m| json!({
                "bits": m.bits, "layers": m.layers, "params": m.params,
                "packed_bytes": m.packed_bytes, "scale_bytes": m.scale_bytes,
                "canonical_bytes": m.canonical_bytes, "resident_bytes": m.resident_bytes(),
            })).collect::<Vec<_>>()),
            "resident_weight_bytes": weights.as_ref().ok()
                .map(|w| w.iter().map(WeightMemory::resident_bytes).sum::<u64>()),
            "cpu": sysinfo::cpu_model(),
            "cpu_features": sysinfo::cpu_features(),
            "verified": a.verify,
        })));
    }
    let preprocess = match pre {
        None => "none (raw tensor input)".to_string(),
        Some(p) => format!(
            "{}crop {}x{}, mean {:?}, std {:?}, {}, {:?}",
            p.resize
                .map(|r| format!("resize {r}, "))
                .unwrap_or_default(),
            p.crop[0],
            p.crop[1],
            p.mean,
            p.std,
            if p.grayscale { "grayscale" } else { "RGB" },
            p.layout
        ),
    };
    let mut s = String::new();
    let mut line = |k: &str, v: String| s += &format!("{k:<13}{v}\n");
    line("model:", h.model_name);
    line("format:", format!("qvit bundle v{}", stats.format_version));
    line("producer:", h.producer);
    line("input:", format!("{:?}", h.input_shape));
    line("preprocess:", preprocess);
    line(
        "labels:",
        if h.labels.is_empty() {
            "none".into()
        } else {
            h.labels.len().to_string()
        },
    );
    line("params:", stats.params.to_string());
    line("size:", sizes(&stats));
    line("resident:", resident(&weights));
    line("kernel tier:", tier);
    line(
        "cpu:",
        format!(
            "{} [{}]",
            sysinfo::cpu_model(),
            sysinfo::cpu_features().join(" ")
        ),
    );
    if a.verify {
        line(
            "verify:",
            "ok (checksum, structure, graph, planning)".into(),
        );
    }
    Ok(s)
}

fn sizes(s: &BundleStats) -> String {
    format!(
        "{} total (weights {}: int {} + scales {} + float {}; graph {}, header {})",
        bytes(s.total),
        bytes(s.weights),
        bytes(s.int_weights),
        bytes(s.scales),
        bytes(s.float_consts),
        bytes(s.graph),
        bytes(s.header)
    )
}

/// Bytes the quantized weights keep after loading, per bit width.
fn resident(weights: &Result<Vec<WeightMemory>>) -> String {
    let w = match weights {
        Err(e) => return format!("unknown (planning failed: {e})"),
        Ok(w) if w.is_empty() => return "no quantized weights".into(),
        Ok(w) => w,
    };
    let total: u64 = w.iter().map(WeightMemory::resident_bytes).sum();
    let parts: Vec<String> = w
        .iter()
        .map(|m| {
            let canonical = if m.canonical_bytes > 0 {
                format!(" + canonical {}", bytes(m.canonical_bytes))
            } else {
                String::new()
            };
            format!(
                "int{} {} in {} layers (packed {} + scales {}{canonical})",
                m.bits,
                bytes(m.resident_bytes()),
                m.layers,
                bytes(m.packed_bytes),
                bytes(m.scale_bytes)
            )
        })
        .collect();
    format!("{} of weights: {}", bytes(total), parts.join("; "))
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.2} MiB", n as f64 / 1_048_576.0),
    }
}

fn classify(a: &ClassifyArgs) -> Result<String> {
    let mut model = Model::load(&a.model)?;
    let Some(pre) = model.header().preprocess.clone() else {
        return Err(Error::BadInput(format!(
            "{} records no image preprocessing; use `qvit-run run`",
            a.model.display()
        )));
    };
    let labels = model.header().labels.clone();
    let label = |i: usize| {
        labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("class {i}"))
    };
    let mut results = Vec::new();
    let mut text = String::new();
    for path in &a.images {
        let input = pre.apply(&preprocess::load_image(path)?)?;
        let top: Vec<(usize, f32)> = model.classify(&input)?.into_iter().take(a.top).collect();
        text += &format!("{}\n", path.display());
        for &(i, p) in &top {
            text += &format!("  {:>6.2}%  {}  ({i})\n", p * 100.0, label(i));
        }
        results.push(json!({
            "image": path.display().to_string(),
            "top": top.iter().map(|&(i, p)| json!({"index": i, "label": label(i), "probability": p})).collect::<Vec<_>>(),
        }));
    }
    Ok(if a.json {
        pretty(&Json::Array(results))
    } else {
        text
    })
}

fn run(a: &RunArgs) -> Result<String> {
    let inputs: Vec<&Path> = std::iter::once(&a.model)
        .chain(&a.input)
        .map(PathBuf::as_path)
        .collect();
    let outputs: Vec<&Path> = a.output.iter().map(PathBuf::as_path).collect();
    outfile::check_outputs(&inputs, &outputs)?;
    let mut model = Model::load(&a.model)?;
    let inputs = a
        .input
        .iter()
        .map(|path| {
            let t = npy::read(path)?;
            if !a.allow_non_finite {
                t.check_finite(&path.display().to_string()).map_err(|e| {
                    Error::BadInput(format!(
                        "{e}; fix the data, or pass --allow-non-finite to run on it anyway"
                    ))
                })?;
            }
            Ok(t)
        })
        .collect::<Result<Vec<_>>>()?;
    let outputs = model.run_many(&inputs.iter().collect::<Vec<_>>())?;
    if a.output.len() > outputs.len() {
        return Err(Error::BadInput(format!(
            "{} --output paths given, the model has {} outputs",
            a.output.len(),
            outputs.len()
        )));
    }
    for (path, t) in a.output.iter().zip(&outputs) {
        npy::write(path, t)?;
    }
    Ok(String::new())
}

fn bench(a: &BenchArgs) -> Result<String> {
    let start = Instant::now();
    let mut model = Model::load(&a.model)?;
    let load_ms = ms(start.elapsed());
    model.set_threads(a.threads as usize);
    let inputs = bench_inputs(&model)?;
    let refs: Vec<&Tensor> = inputs.iter().collect();
    // Outputs go into reused tensors, so a timed run is the inference alone.
    let mut outputs = Vec::new();
    for _ in 0..a.warmup {
        model.run_into(&refs, &mut outputs)?;
    }
    let mut times = Vec::with_capacity(a.iters as usize);
    let mut profile = Profile::default();
    for _ in 0..a.iters {
        let t = Instant::now();
        if a.profile {
            std::hint::black_box(model.run_profiled(&refs, &mut profile)?);
        } else {
            model.run_into(&refs, &mut outputs)?;
            std::hint::black_box(&outputs);
        }
        times.push(ms(t.elapsed()));
    }
    let measured_ms: f64 = times.iter().sum();
    let lat =
        Latency::of(&times).ok_or_else(|| Error::BadInput("--iters must be at least 1".into()))?;
    let mut report = BenchReport {
        model: model.header().model_name.clone(),
        bundle: a.model.display().to_string(),
        latency_ms: lat,
        load_ms,
        peak_rss_bytes: sysinfo::peak_rss_bytes(),
        kernel_tier: model.tier(),
        cpu: sysinfo::cpu_model(),
        cpu_features: sysinfo::cpu_features()
            .into_iter()
            .map(String::from)
            .collect(),
        commit: sysinfo::GIT_COMMIT.to_string(),
        threads: model.threads(),
        iters: a.iters,
        warmup: a.warmup,
        timestamp: utc_timestamp(SystemTime::now()),
        profile: None,
        profile_by_op: None,
        profile_ms: None,
        measured_ms: None,
    };
    if a.profile {
        report.profile = Some(profile_steps(&profile, measured_ms));
        report.profile_by_op = Some(profile_ops(&profile, measured_ms));
        report.profile_ms = Some(ms(profile.total()));
        report.measured_ms = Some(measured_ms);
    }
    if a.json {
        return Ok(pretty(&report));
    }
    let rss = sysinfo::peak_rss_bytes()
        .map(bytes)
        .unwrap_or_else(|| "unknown".into());
    let table = if a.profile {
        profile_text(&profile, measured_ms)
    } else {
        String::new()
    };
    Ok(format!(
        "model:       {}\nlatency ms:  min {:.4}  p50 {:.4}  p90 {:.4}  mean {:.4}  ({} iters, {} warm-up, {} threads)\n\
         load ms:     {load_ms:.1}\npeak RSS:    {rss}\nkernel tier: {}\ncpu:         {}\ncommit:      {}\n{table}",
        report.model,
        lat.min,
        lat.p50,
        lat.p90,
        lat.mean,
        a.iters,
        a.warmup,
        model.threads(),
        model.tier(),
        sysinfo::cpu_model(),
        sysinfo::GIT_COMMIT,
    ))
}

/// Share of the measured runs, in percent.
fn percent(part_ms: f64, measured_ms: f64) -> f64 {
    if measured_ms > 0.0 {
        100.0 * part_ms / measured_ms
    } else {
        0.0
    }
}

fn profile_steps(p: &Profile, measured_ms: f64) -> Vec<StepShare> {
    p.steps()
        .iter()
        .map(|s| {
            let t = ms(s.total);
            StepShare {
                node: s.node.clone(),
                op: s.op.clone(),
                calls: s.calls,
                ms: t,
                percent: percent(t, measured_ms),
            }
        })
        .collect()
}

fn profile_ops(p: &Profile, measured_ms: f64) -> Vec<OpShare> {
    p.by_op()
        .into_iter()
        .map(|o| {
            let t = ms(o.total);
            OpShare {
                op: o.op,
                calls: o.calls,
                ms: t,
                percent: percent(t, measured_ms),
            }
        })
        .collect()
}

/// The profile as text: per op kind, then the steps, most expensive first (ms are totals over
/// the timed runs; percent of the measured runs, so the rows add up to about 100).
fn profile_text(p: &Profile, measured_ms: f64) -> String {
    let mut out = format!(
        "\nprofile: {:.3} ms in steps of {:.3} ms measured over {} runs ({:.1} %)\n\n",
        ms(p.total()),
        measured_ms,
        p.runs(),
        percent(ms(p.total()), measured_ms)
    );
    out += &format!("{:<28} {:>8} {:>10} {:>7}\n", "op", "calls", "ms", "%");
    for o in p.by_op() {
        let t = ms(o.total);
        out += &format!(
            "{:<28} {:>8} {:>10.3} {:>7.2}\n",
            o.op,
            o.calls,
            t,
            percent(t, measured_ms)
        );
    }
    let mut steps: Vec<_> = p.steps().iter().collect();
    steps.sort_by_key(|s| std::cmp::Reverse(s.total));
    out += &format!(
        "\n{:<48} {:<20} {:>8} {:>10} {:>7}\n",
        "node", "op", "calls", "ms", "%"
    );
    for s in steps {
        let t = ms(s.total);
        out += &format!(
            "{:<48} {:<20} {:>8} {:>10.3} {:>7.2}\n",
            s.node,
            s.op,
            s.calls,
            t,
            percent(t, measured_ms)
        );
    }
    out
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A fixed pseudo-random tensor in [-1, 1) per graph input, so runs are comparable.
fn bench_inputs(model: &Model) -> Result<Vec<Tensor>> {
    let g = model.graph();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    g.inputs
        .iter()
        .map(|&id| {
            let shape = g.shape(id).to_vec();
            let n = shape.iter().product();
            let data = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect();
            Tensor::new(shape, data)
        })
        .collect()
}

/// RFC 3339 UTC timestamp (no external time crate on the device).
fn utc_timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
