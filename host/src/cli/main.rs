//! `qvit`: the host tool. Thin: parsing and printing; the work is in the library.
//!
//! Every clap type and every command function lives here in `cli/`; the library (`qvit_host`)
//! takes plain option structs and knows nothing of flags.
#![forbid(unsafe_code)]

mod compare;
mod deploy;
mod explain;
mod inspect;
mod package;
mod prep;
mod quantize;
mod relevance;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "qvit",
    version,
    about = "Quantize Vision Transformers for ARM edge CPUs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the layers of an ONNX model as qvit imports it: shapes, parameters, MACs.
    Inspect {
        /// ONNX model.
        model: PathBuf,
        /// Input shape, e.g. 1,3,224,224 (default: the model's, symbolic dimensions as 1).
        #[arg(long, value_parser = parse_shape)]
        input_shape: Option<Shape>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also list layout and element-wise nodes.
        #[arg(long)]
        all: bool,
    },
    /// Quantize an ONNX ViT into a .qvit bundle for qvit-run (or write an f32 bundle with --float).
    #[command(
        after_help = "Calibration statistics come from the device f32 executor; \
the bundle is written with <bundle>.report.md and <bundle>.report.json beside it.\n\
Examples:\n  qvit quantize vit.onnx --calib imagenet-sample/ --wbits 8 --abits 8 --preset imagenet -o vit-w8a8.qvit\n  \
qvit quantize vit_mnist.onnx --preset mnist --calib train5k-images-idx3-ubyte --calib-limit 512 --wbits 4 --abits 4 -o w4a4.qvit\n  \
qvit quantize vit.onnx --float --preset imagenet --labels classes.txt -o vit.qvit\n\
Ablations: --no-channel-clip, --no-reparam, --no-log2-softmax, --clip percentile|mse|minmax."
    )]
    Quantize {
        /// ONNX model.
        model: PathBuf,
        /// Keep weights in f32 (the reference bundle).
        #[arg(long, conflicts_with_all = ["wbits", "calib"])]
        float: bool,
        #[command(flatten)]
        quant: quantize::QuantArgs,
        /// Output bundle path.
        #[arg(short, long)]
        output: PathBuf,
        /// Input shape, e.g. 1,3,224,224.
        #[arg(long, value_parser = parse_shape)]
        input_shape: Option<Shape>,
        /// Class labels, one per line (default: labels.txt beside the model, if any).
        #[arg(long)]
        labels: Option<PathBuf>,
        #[command(flatten)]
        prep: prep::PrepArgs,
    },
    /// Top-1/top-5 accuracy of an ONNX model or a bundle on labelled data, run by the device runtime.
    #[command(
        after_help = "Data: an IDX images file (labels found by name), a folder of class subfolders, or a folder of images.\n\
Example:\n  qvit eval vit_mnist.onnx --preset mnist --data ../shared/data/mnist/t10k-images-idx3-ubyte"
    )]
    Eval {
        /// ONNX model or .qvit bundle.
        model: PathBuf,
        /// Labelled data.
        #[arg(long)]
        data: PathBuf,
        /// Evaluate at most N images.
        #[arg(long)]
        limit: Option<usize>,
        /// Print JSON ({"top1", "top5", "n", …}).
        #[arg(long)]
        json: bool,
        /// Input shape for ONNX models.
        #[arg(long, value_parser = parse_shape)]
        input_shape: Option<Shape>,
        /// Threads for the runtime.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[command(flatten)]
        prep: prep::PrepArgs,
    },
    /// Compare a quantized bundle with its f32 ONNX model: top-1 agreement, output cosine and per-layer cosine.
    #[command(
        after_help = "The f32 model is imported with the bundle's input shape and preprocessing.\n\
Example:\n  qvit compare vit-w4a4.qvit vit.onnx --data imagenet-sample/ --limit 100 --json"
    )]
    Compare {
        /// Quantized bundle.
        bundle: PathBuf,
        /// The ONNX model it was made from.
        model: PathBuf,
        /// Images (labelled data also reports both accuracies).
        #[arg(long)]
        data: PathBuf,
        /// Compare on at most N images.
        #[arg(long)]
        limit: Option<usize>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Per-layer relevance (LRP) of a model on images: how much each layer contributes to the prediction.
    #[command(
        after_help = "Relevance is seeded at the target logit (the predicted class by default, or the \
output norm for models without a classifier) and propagated back with AttnLRP rules; a layer's \
score is the relevance it passes to its input, normalised per image and averaged.\n\
Example:\n  qvit relevance vit_mnist.onnx --preset mnist --data t10k-images-idx3-ubyte --limit 32 --plot scores.png"
    )]
    Relevance {
        /// ONNX model or .qvit bundle.
        model: PathBuf,
        /// Images.
        #[arg(long)]
        data: PathBuf,
        /// Use at most N images (the first N).
        #[arg(long, default_value_t = 32)]
        limit: usize,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Also draw a bar chart of the per-layer scores (PNG).
        #[arg(long)]
        plot: Option<PathBuf>,
        #[command(flatten)]
        lrp: relevance::LrpArgs,
        /// Per-layer statistic (see the values below).
        #[arg(long, value_enum, default_value_t = relevance::StatisticArg::AbsIn)]
        statistic: relevance::StatisticArg,
        /// Input shape for ONNX models.
        #[arg(long, value_parser = parse_shape)]
        input_shape: Option<Shape>,
        #[command(flatten)]
        prep: prep::PrepArgs,
    },
    /// Explain predictions: pixel relevance heatmaps and Salient Relevance maps as PNG overlays (or, with --eval, their faithfulness).
    #[command(
        after_help = "Each image gives <stem>.lrp.png (signed relevance over the image, red = for the target, blue = against), \
<stem>.patch.png (per ViT patch), <stem>.sr.png (Salient Relevance: context-aware saliency on |relevance|), \
the raw maps as .npy, and explain.json. A quantized bundle is explained through its own (dequantized) graph; \
--reference MODEL.onnx also explains with the f32 model and reports the rank correlation of the maps.\n\
Examples:\n  qvit explain models/fashion-vit/fashion_vit.onnx --preset fashion-mnist models/fashion-vit/sample.png -o out/\n  \
qvit explain vit_mnist.onnx --preset mnist --eval --data t10k-images-idx3-ubyte --limit 200 --json"
    )]
    Explain {
        /// ONNX model or .qvit bundle.
        model: PathBuf,
        #[command(flatten)]
        args: explain::ExplainArgs,
        /// Input shape for ONNX models.
        #[arg(long, value_parser = parse_shape)]
        input_shape: Option<Shape>,
        #[command(flatten)]
        prep: prep::PrepArgs,
    },
    /// Copy a bundle and qvit-run to boards over SSH, verify them, optionally benchmark.
    Deploy(deploy::DeployArgs),
    /// Package a bundle for fleet tools: a Mender artifact installed by the qvit update module.
    Package(package::PackageArgs),
}

/// A tensor shape given on the command line as `1,3,224,224`.
#[derive(Clone, Debug)]
struct Shape(Vec<usize>);

fn parse_shape(s: &str) -> Result<Shape, String> {
    let dims = s
        .split(',')
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .map_err(|e| format!("bad dimension {d:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if dims.contains(&0) {
        return Err("dimensions must be at least 1".into());
    }
    Ok(Shape(dims))
}

/// An ONNX model or bundle and the image preprocessing it needs.
fn open_for_images(
    model: &std::path::Path,
    input_shape: Option<&Shape>,
    prep: &prep::PrepArgs,
) -> Result<(qvit_device::bundle::Bundle, qvit_device::Preprocess)> {
    let bundle =
        qvit_host::source::open(model, input_shape.map(|s| s.0.as_slice()), &prep.options())?;
    let pre = bundle
        .header
        .preprocess
        .clone()
        .context("the model has no image preprocessing; pass --preset or --mean/--std")?;
    Ok((bundle, pre))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes joined by ": ", skipping a cause its parent already quotes (the
/// device's I/O errors include their io::Error), as qvit-run does.
fn chain(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg += ": ";
            }
            msg += &text;
        }
    }
    msg
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Inspect {
            model,
            input_shape,
            json,
            all,
        } => {
            let imp = qvit_host::import::import_path(
                &model,
                input_shape.as_ref().map(|s| s.0.as_slice()),
            )?;
            let name = model
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let info =
                qvit_host::inspect::model_info(&name, imp.opset, &imp.input_shape, &imp.graph);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&info).context("serialising")?
                );
            } else {
                print!("{}", inspect::render_table(&info, all));
            }
        }
        Cmd::Quantize {
            model,
            float,
            quant,
            output,
            input_shape,
            labels,
            prep,
        } => {
            if !float {
                let fb = qvit_host::source::float_bundle(
                    &model,
                    input_shape.as_ref().map(|s| s.0.as_slice()),
                    &prep.options(),
                    labels.as_deref(),
                )?;
                let q = quantize::run(fb, &quant, &output)?;
                let r = &q.report;
                let (json, md) = quantize::report_paths(&output);
                if let Some(z) = &r.sizes {
                    eprintln!(
                        "wrote {} ({} bytes: int weights {}, scales {}, float {}, graph {}; bound {:.0}: {}); {} layers quantized, {} left f32; calibration {} images, {:.1} s\nreports: {}, {}",
                        output.display(),
                        z.bundle.total,
                        z.bundle.int_weights,
                        z.bundle.scales,
                        z.bundle.float_consts,
                        z.bundle.graph,
                        z.bound_bytes,
                        if z.within_bound { "within" } else { "EXCEEDED" },
                        r.layers.len(),
                        r.float_layers.len(),
                        r.calib_images,
                        r.calib_seconds,
                        md.display(),
                        json.display()
                    );
                }
                return Ok(());
            }
            let bundle = qvit_host::source::float_bundle(
                &model,
                input_shape.as_ref().map(|s| s.0.as_slice()),
                &prep.options(),
                labels.as_deref(),
            )?;
            let stats = bundle
                .write_file(&output)
                .with_context(|| format!("writing {}", output.display()))?;
            let si = inspect::si;
            eprintln!(
                "wrote {} ({} bytes: weights {}, graph {}, header {}); {} parameters, {} labels",
                output.display(),
                stats.total,
                si(stats.weights as f64),
                si(stats.graph as f64),
                si(stats.header as f64),
                si(stats.params as f64),
                bundle.header.labels.len()
            );
        }
        Cmd::Eval {
            model,
            data,
            limit,
            json,
            input_shape,
            threads,
            prep,
        } => {
            let (bundle, pre) = open_for_images(&model, input_shape.as_ref(), &prep)?;
            let ds = qvit_host::data::Dataset::open(&data)?;
            let mut m = qvit_device::model::Model::from_bundle(bundle)?;
            m.set_threads(threads);
            let r = qvit_host::eval::evaluate(&mut m, &ds, &pre, limit)?;
            if json {
                let v = serde_json::json!({
                    "model": model.display().to_string(),
                    "data": data.display().to_string(),
                    "top1": r.top1, "top5": r.top5, "n": r.n,
                    "seconds": r.seconds, "tier": r.tier,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "{}: top-1 {:.2} %, top-5 {:.2} % on {} images of {} ({:.1} s, tier {})",
                    model.display(),
                    100.0 * r.top1,
                    100.0 * r.top5,
                    r.n,
                    ds.description,
                    r.seconds,
                    r.tier
                );
            }
        }
        Cmd::Compare {
            bundle,
            model,
            data,
            limit,
            json,
        } => {
            let q = qvit_device::bundle::Bundle::read_file(&bundle)
                .with_context(|| format!("loading {}", bundle.display()))?;
            let pre = q
                .header
                .preprocess
                .clone()
                .context("the bundle records no image preprocessing")?;
            let f = qvit_host::import::import_path(&model, Some(&q.header.input_shape))?;
            let ds = qvit_host::data::Dataset::open(&data)?;
            let c = qvit_host::compare::compare(&q.graph, &f.graph, &ds, &pre, limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print!("{}", compare::render(&c));
            }
        }
        Cmd::Relevance {
            model,
            data,
            limit,
            json,
            plot,
            lrp,
            statistic,
            input_shape,
            prep,
        } => {
            use relevance as rel;
            rel::check_plot_path(&plot)?;
            let (bundle, pre) = open_for_images(&model, input_shape.as_ref(), &prep)?;
            let s = rel::scores_on(
                bundle.graph,
                &pre,
                &data,
                limit,
                &lrp,
                statistic.statistic(),
            )?;
            if let Some(p) = &plot {
                rel::plot(&s, p)?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", rel::render(&s));
                if let Some(p) = &plot {
                    println!("\nplot: {}", p.display());
                }
            }
        }
        Cmd::Explain {
            model,
            args,
            input_shape,
            prep,
        } => {
            let (bundle, pre) = open_for_images(&model, input_shape.as_ref(), &prep)?;
            explain::run(bundle.graph, &pre, &bundle.header.labels, &args)?;
        }
        Cmd::Deploy(args) => qvit_host::deploy::run(args.options())?,
        Cmd::Package(args) => package::run(args)?,
    }
    Ok(())
}
