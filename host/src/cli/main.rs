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
mod parse;
mod prep;
mod quantize;
mod relevance;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use parse::Shape;
use qvit_host::files::{self, ModelFile};
use std::path::{Path, PathBuf};
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
        #[arg(long, value_parser = parse::shape)]
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
        #[arg(long, value_parser = parse::shape)]
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
        /// Evaluate at most N images (at least 1).
        #[arg(long, value_parser = parse::count)]
        limit: Option<usize>,
        /// Print JSON ({"top1", "top5", "n", …}).
        #[arg(long)]
        json: bool,
        /// Input shape for ONNX models.
        #[arg(long, value_parser = parse::shape)]
        input_shape: Option<Shape>,
        /// Threads for the runtime, 1 to 1024 (more than the machine's cores slows it down).
        #[arg(long, default_value_t = 1,
              value_parser = clap::value_parser!(u32).range(1..=parse::MAX_THREADS as i64))]
        threads: u32,
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
        /// Compare on at most N images (at least 1).
        #[arg(long, value_parser = parse::count)]
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
        /// Use at most N images (the first N; at least 1).
        #[arg(long, default_value_t = 32, value_parser = parse::count)]
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
        #[arg(long, value_parser = parse::shape)]
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
        #[arg(long, value_parser = parse::shape)]
        input_shape: Option<Shape>,
        #[command(flatten)]
        prep: prep::PrepArgs,
    },
    /// Copy a bundle and qvit-run to boards over SSH, verify them, optionally benchmark.
    Deploy(deploy::DeployArgs),
    /// Package a bundle for fleet tools: a Mender artifact installed by the qvit update module.
    Package(package::PackageArgs),
}

/// An ONNX model or bundle and the image preprocessing it needs.
fn open_for_images(
    model: &Path,
    input_shape: Option<&Shape>,
    prep: &prep::PrepArgs,
) -> Result<(qvit_device::bundle::Bundle, qvit_device::Preprocess)> {
    let bundle =
        qvit_host::source::open(model, input_shape.map(|s| s.0.as_slice()), &prep.options())?;
    if let Some(s) = input_shape
        && s.0 != bundle.header.input_shape
    {
        bail!(
            "--input-shape {:?} differs from the input shape {:?} recorded in {}; it applies \
             to ONNX models only, leave it out",
            s.0,
            bundle.header.input_shape,
            model.display()
        );
    }
    let pre = bundle.header.preprocess.clone().with_context(|| {
        format!(
            "{} takes input of shape {:?}, not an NCHW image, and records no image \
             preprocessing; this command feeds it images",
            model.display(),
            bundle.header.input_shape
        )
    })?;
    Ok((bundle, pre))
}

/// The files an opened model reads: the model and, for ONNX, a labels.txt beside it.
fn model_inputs(model: &Path) -> Vec<PathBuf> {
    let labels = model.with_file_name("labels.txt");
    let mut v = vec![model.to_path_buf()];
    if labels.is_file() {
        v.push(labels);
    }
    v
}

/// The number of classes a model's first output scores (its last dimension).
fn classes(graph: &qvit_device::Graph) -> Option<usize> {
    graph
        .outputs
        .first()
        .and_then(|&o| graph.shape(o).last().copied())
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
        } => quantize::command(
            &model,
            float,
            &quant,
            &output,
            input_shape.as_ref().map(|s| s.0.as_slice()),
            labels.as_deref(),
            &prep,
        )?,
        Cmd::Eval {
            model,
            data,
            limit,
            json,
            input_shape,
            threads,
            prep,
        } => {
            if let Some(w) = parse::threads_warning(threads) {
                eprintln!("{w}");
            }
            let (bundle, pre) = open_for_images(&model, input_shape.as_ref(), &prep)?;
            let ds = qvit_host::data::Dataset::open(&data)?;
            if let Some(c) = classes(&bundle.graph) {
                ds.check_labels(c, &model.display().to_string())?;
            }
            let mut m = qvit_device::model::Model::from_bundle(bundle)?;
            m.set_threads(threads as usize);
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
            if files::model_file(&bundle, "the quantized .qvit bundle")? != ModelFile::Bundle {
                bail!(
                    "{} is not a qvit bundle; compare takes the quantized bundle first, then \
                     the ONNX model it was made from",
                    bundle.display()
                );
            }
            let q = qvit_device::bundle::Bundle::read_file(&bundle)
                .with_context(|| format!("loading {}", bundle.display()))?;
            let pre = q.header.preprocess.clone().with_context(|| {
                format!(
                    "{} records no image preprocessing (its input is {:?}); compare feeds images",
                    bundle.display(),
                    q.header.input_shape
                )
            })?;
            let ds = qvit_host::data::Dataset::open(&data)?;
            if let Some(c) = classes(&q.graph) {
                ds.check_labels(c, &bundle.display().to_string())?;
            }
            let f = qvit_host::import::import_path_from(
                &model,
                Some(&q.header.input_shape),
                qvit_host::import::ShapeFrom::Bundle,
            )?;
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
            lrp.check()?;
            if let Some(p) = &plot {
                let mut inputs = model_inputs(&model);
                inputs.extend(files::data_inputs(&data));
                let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
                files::check_outputs(&inputs, &[p])?;
            }
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
            args.check(&model)?;
            let (bundle, pre) = open_for_images(&model, input_shape.as_ref(), &prep)?;
            explain::run(bundle.graph, &pre, &bundle.header.labels, &args)?;
        }
        Cmd::Deploy(args) => qvit_host::deploy::run(args.options())?,
        Cmd::Package(args) => package::run(args)?,
    }
    Ok(())
}
