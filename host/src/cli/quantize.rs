//! `qvit quantize` with calibration: options, the run, and the files it writes.

use super::parse;
use super::relevance::{AttnArg, StatisticArg};
use anyhow::{Context, Result, bail, ensure};
use clap::{Args, ValueEnum};
use qvit_device::bundle::Bundle;
use qvit_host::data::load_inputs;
use qvit_host::files;
use qvit_host::quant::clip::ClipMethod;
use qvit_host::quant::mixed::{MixedOptions, allocate_bits};
use qvit_host::quant::report::size_report;
use qvit_host::quant::{ActScale, QuantOptions, Quantized, WeightRound, quantize};
use std::path::{Path, PathBuf};

/// Activation range selection on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ClipArg {
    /// Least squared quantization error among percentile candidates (RepQ-ViT's search).
    Mse,
    /// Two-sided percentile, see --percentile.
    Percentile,
    /// Full observed range.
    Minmax,
}

/// Weight rounding on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum WeightRoundArg {
    /// Each weight to its nearest point of its channel's grid.
    Nearest,
    /// GPTQ: columns rounded in turn, each one's error fed forward onto the rest through the
    /// inverse Hessian of the layer's calibration inputs (same grid, same bundle; slower)
    Gptq,
    /// GPTQ taking the columns whose inputs carry the most energy first (act-order): better on
    /// the ViT-S/14 at 4 bits, worse on the small MNIST-class models
    /// (bench-results/ptq-act-groups.md)
    GptqActOrder,
}

/// Activation scale on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ActScaleArg {
    /// One calibrated scale per tensor.
    Static,
    /// Scales taken at run time from each token's (for V: each channel's) own range; the patch
    /// embedding and head stay static.
    Dynamic,
}

fn scale_of(a: ActScaleArg) -> ActScale {
    match a {
        ActScaleArg::Static => ActScale::Static,
        ActScaleArg::Dynamic => ActScale::Dynamic,
    }
}

/// Head rotation on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RotateArg {
    /// No rotation.
    None,
    /// Rotate each attention head's q, k and v by a d×d Hadamard matrix, folded into the qkv
    /// weights and undone in the output projection's columns: the f32 function is unchanged,
    /// but outlier channels are spread over the head, so low-bit activations lose less.
    Hadamard,
}

/// Quantization flags of `qvit quantize`.
#[derive(Args, Clone, Debug)]
pub struct QuantArgs {
    /// Calibration data: an IDX images file, a folder of class subfolders, or a folder of images.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Use at most N calibration images (the first N; at least 1).
    #[arg(long, default_value_t = 128, value_parser = parse::count)]
    pub calib_limit: usize,
    /// Weight bits, 2..8 (symmetric, per output channel; ≤ 4 bits are nibble-packed).
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=8))]
    pub wbits: Option<u8>,
    /// Activation bits, 2..8 (per tensor; default: --wbits).
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=8))]
    pub abits: Option<u8>,
    /// Bits of the patch embedding and the classifier head (weights and input).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(2..=8))]
    pub edge_bits: u8,
    /// How activation ranges are clipped.
    #[arg(long, value_enum, default_value_t = ClipArg::Mse)]
    pub clip: ClipArg,
    /// Percentile for --clip percentile, in [0.5, 1].
    #[arg(long, default_value_t = 0.9999, value_parser = parse::finite)]
    pub percentile: f64,
    /// Do not clip outlier channels of post-LayerNorm activations (plain RepQ-ViT
    /// reparameterisation). The clip only applies below 8 activation bits.
    #[arg(long)]
    pub no_channel_clip: bool,
    /// Outlier threshold of the channel clip: mean + K·std of the channel range ratios.
    #[arg(long, default_value_t = 2.0)]
    pub channel_clip_k: f32,
    /// Do not reparameterise post-LayerNorm activations (quantize them per tensor directly).
    #[arg(long)]
    pub no_reparam: bool,
    /// Quantize post-softmax probabilities uniformly instead of on the log scale (powers of two,
    /// i.e. shifts, up to 4 bits; 2^(bits−4) levels per octave above).
    #[arg(long)]
    pub no_log2_softmax: bool,
    /// How weights are rounded onto their per-channel grid (the scales are chosen the same way
    /// either way; the device runs both unchanged).
    #[arg(long, value_enum, default_value_t = WeightRoundArg::Nearest)]
    pub weight_round: WeightRoundArg,
    /// Rotate attention heads before calibration (weights only, the device is unchanged):
    /// hadamard spreads outlier channels of q, k, v and the attention output across each
    /// head, which helps at 4-6 bits; heads whose size is not a power of two are left alone.
    #[arg(long, value_enum, default_value_t = RotateArg::None)]
    pub rotate: RotateArg,
    /// Where the inputs of the body's Linear layers (qkv, proj, fc1, fc2) get their scale:
    /// calibrated per tensor, or per token at run time (the device computes each row's range).
    #[arg(long, value_enum, default_value_t = ActScaleArg::Static)]
    pub act_scale: ActScaleArg,
    /// Where the operands of the attention products (Q·Kᵀ and P·V) get their scale: calibrated
    /// per tensor, or at run time per token of Q and K and per channel of V (the probabilities
    /// keep their log2 quantizer). At 4 bits the per-tensor Q and K lose most of the accuracy.
    #[arg(long, value_enum, default_value_t = ActScaleArg::Static)]
    pub attn_scale: ActScaleArg,
    /// With --act-scale dynamic: a step per token and per group of N input features instead
    /// of one per token. An outlier feature then costs only its group's resolution (at 4 bits
    /// the largest single gain on real models, see bench-results/ptq-act-groups.md). Each
    /// layer runs as K/N integer GEMMs on slices whose f32 results are summed: same weight
    /// bytes, more run time. Layers whose input width is not a multiple of N above N stay whole
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..))]
    pub act_groups: Option<u32>,
    /// Keep biases, norms, embeddings and scales in f32 (default: rounded to f16 values, stored
    /// in half the bytes).
    #[arg(long)]
    pub f32_consts: bool,
    /// Mixed precision: choose bits per body layer under --budget (and --abudget) with
    /// --allocate, instead of --wbits/--abits everywhere.
    #[arg(long, requires = "budget")]
    pub mixed: bool,
    /// Average weight bits of the body layers, weighted by parameters; never exceeded.
    #[arg(long, requires = "mixed", value_parser = parse::finite)]
    pub budget: Option<f64>,
    /// Average activation bits of the body layers, weighted by elements (default: --budget).
    #[arg(long, requires = "mixed", value_parser = parse::finite)]
    pub abudget: Option<f64>,
    /// Bit widths a layer may get.
    #[arg(long, value_delimiter = ',', default_value = "2,3,4,5,6,8")]
    pub bits_choices: Vec<u8>,
    /// Allocator: lrp (relevance × quantization error), uniform, random:SEED (random relevance)
    /// or sensitivity (measured output error of each layer quantized alone).
    #[arg(long, default_value = "lrp")]
    pub allocate: String,
    /// Calibration images used for relevance (--allocate lrp; at least 1).
    #[arg(long, default_value_t = 32, value_parser = parse::count)]
    pub lrp_images: usize,
    /// Calibration images used to measure sensitivity (--allocate sensitivity; at least 1).
    #[arg(long, default_value_t = 8, value_parser = parse::count)]
    pub sensitivity_images: usize,
    /// Relevance statistic of --allocate lrp (see `qvit relevance --help`).
    #[arg(long, value_enum, default_value_t = StatisticArg::AbsIn)]
    pub lrp_statistic: StatisticArg,
    /// Exponents on the relevance scores of --allocate lrp (and the draws of random), one
    /// proposal each: 1 uses them as measured, 0 ignores them (only the quantization-error model
    /// remains), values between temper them, above sharpen them.
    #[arg(long, value_delimiter = ',', default_value = "0.5,1,2")]
    pub lrp_gamma: Vec<f64>,
    /// Calibration images on which every pair of weight and activation proposals (one per γ,
    /// and uniform) runs end to end; the pair closest to f32 wins (lowest KL divergence of the
    /// class probabilities for a classifier, highest output cosine otherwise) if its per-image
    /// edge over uniform exceeds two standard errors, else uniform is kept. Costs
    /// (γ count + 1)² quantized passes over these images. 0: no trials, the first γ's proposal
    /// is taken as it is.
    #[arg(long, default_value_t = 128)]
    pub select_images: usize,
    /// Relevance target of --allocate lrp (as `qvit relevance --target`: auto, predicted, a
    /// class, norm or tokens).
    #[arg(long, default_value = "auto")]
    pub lrp_target: String,
    /// Relevance rule through attention for --allocate lrp.
    #[arg(long, value_enum, default_value_t = AttnArg::Attnlrp)]
    pub lrp_attn_rule: AttnArg,
}

impl QuantArgs {
    /// The options these flags select.
    pub fn options(&self) -> Result<QuantOptions> {
        let wbits = match (self.wbits, self.mixed_options()?) {
            (Some(w), _) => w,
            (None, Some(m)) => uniform_bits(&m.choices, m.budget),
            (None, None) => bail!("give --wbits (and --abits), --mixed --budget B, or --float"),
        };
        ensure!(
            self.act_groups.is_none() || matches!(self.act_scale, ActScaleArg::Dynamic),
            "--act-groups needs --act-scale dynamic: groups split each token's run-time range"
        );
        ensure!(
            (0.5..=1.0).contains(&self.percentile),
            "--percentile {} must lie in [0.5, 1]",
            self.percentile
        );
        ensure!(
            self.channel_clip_k.is_finite() && self.channel_clip_k > 0.0,
            "--channel-clip-k {} must be a finite number above 0, e.g. 2",
            self.channel_clip_k
        );
        Ok(QuantOptions {
            wbits,
            abits: self.abits.unwrap_or(match self.mixed_options()? {
                Some(m) if self.wbits.is_none() => uniform_bits(&m.choices, m.abudget),
                _ => wbits,
            }),
            edge_bits: self.edge_bits,
            clip: match self.clip {
                ClipArg::Mse => ClipMethod::Mse,
                ClipArg::Percentile => ClipMethod::Percentile(self.percentile),
                ClipArg::Minmax => ClipMethod::MinMax,
            },
            reparam: !self.no_reparam,
            channel_clip: (!self.no_channel_clip).then_some(self.channel_clip_k),
            log2_softmax: !self.no_log2_softmax,
            layer_bits: Default::default(),
            f16_consts: !self.f32_consts,
            weight_round: match self.weight_round {
                WeightRoundArg::Nearest => WeightRound::Nearest,
                WeightRoundArg::Gptq => WeightRound::Gptq,
                WeightRoundArg::GptqActOrder => WeightRound::GptqActOrder,
            },
            rotate: matches!(self.rotate, RotateArg::Hadamard),
            act_scale: scale_of(self.act_scale),
            attn_scale: scale_of(self.attn_scale),
            act_groups: self.act_groups.map(|g| g as usize),
        })
    }
}

impl QuantArgs {
    /// The mixed-precision settings, when --mixed is given.
    pub fn mixed_options(&self) -> Result<Option<MixedOptions>> {
        if !self.mixed {
            return Ok(None);
        }
        let budget = self.budget.context("--mixed needs --budget AVG_WBITS")?;
        let mut choices = self.bits_choices.clone();
        choices.sort_unstable();
        choices.dedup();
        ensure!(
            !choices.is_empty() && choices.iter().all(|b| (2..=8).contains(b)),
            "--bits-choices must be bit widths in 2..=8, e.g. 2,3,4,5,6,8"
        );
        for (flag, b) in [
            ("--budget", budget),
            ("--abudget", self.abudget.unwrap_or(budget)),
        ] {
            ensure!(
                b.is_finite() && b >= choices[0] as f64,
                "{flag} {b} is below the smallest bit choice {}",
                choices[0]
            );
        }
        ensure!(
            !self.lrp_gamma.is_empty() && self.lrp_gamma.iter().all(|g| g.is_finite() && *g >= 0.0),
            "--lrp-gamma must be one or more finite values ≥ 0, e.g. 0.5,1,2"
        );
        Ok(Some(MixedOptions {
            budget,
            abudget: self.abudget.unwrap_or(budget),
            choices,
            allocator: self.allocate.parse()?,
            lrp: qvit_host::lrp::LrpOptions {
                attn: self.lrp_attn_rule.rule(),
                ..Default::default()
            },
            target: self.lrp_target.clone(),
            statistic: self.lrp_statistic.statistic(),
            lrp_gammas: self.lrp_gamma.clone(),
            select_images: self.select_images,
            lrp_images: self.lrp_images,
            sensitivity_images: self.sensitivity_images,
        }))
    }
}

/// The largest choice within `budget` (what a uniform allocation gives every layer).
fn uniform_bits(choices: &[u8], budget: f64) -> u8 {
    choices
        .iter()
        .copied()
        .filter(|&b| b as f64 <= budget)
        .max()
        .unwrap_or(choices[0])
}

/// Quantizes `float` (a float bundle with preprocessing) and writes the bundle plus
/// `<output>.report.{json,md}`. Returns the report.
pub fn run(float: Bundle, args: &QuantArgs, output: &Path) -> Result<Quantized> {
    let opts = args.options()?;
    let Some(calib) = &args.calib else {
        bail!("quantizing needs calibration data: --calib DIR|IDX");
    };
    let pre = float
        .header
        .preprocess
        .clone()
        .context("the model has no image preprocessing; pass --preset or --mean/--std")?;
    let inputs = load_inputs(calib, &pre, args.calib_limit)?;
    let mut opts = opts;
    let mixed = match args.mixed_options()? {
        Some(m) => {
            let (bits, report) = allocate_bits(&float.graph, &inputs, &opts, &m)?;
            opts.layer_bits = bits;
            Some(report)
        }
        None => None,
    };
    let mut q = quantize(&float.graph, &inputs, &opts)?;
    q.report.mixed = mixed;
    let bundle = Bundle {
        header: float.header,
        graph: q.graph.clone(),
    };
    let stats = bundle
        .write_file(output)
        .with_context(|| format!("writing {}", output.display()))?;
    q.report.sizes = Some(size_report(&q.graph, opts.wbits, stats));
    let (json, md) = report_paths(output);
    files::write(
        &json,
        (serde_json::to_string_pretty(&q.report)? + "\n").as_bytes(),
    )?;
    let title = output
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    files::write(&md, q.report.markdown(&title).as_bytes())?;
    Ok(q)
}

/// `<bundle>.report.json` and `<bundle>.report.md` beside the bundle.
pub fn report_paths(bundle: &Path) -> (PathBuf, PathBuf) {
    (
        bundle.with_extension("report.json"),
        bundle.with_extension("report.md"),
    )
}

/// `qvit quantize`: checks the flags and the output paths, then writes an f32 bundle
/// (`float`) or a quantized one with its reports.
pub fn command(
    model: &Path,
    float: bool,
    quant: &QuantArgs,
    output: &Path,
    input_shape: Option<&[usize]>,
    labels: Option<&Path>,
    prep: &super::prep::PrepArgs,
) -> Result<()> {
    // Everything that can be refused without reading the model is refused first.
    let (json, md) = report_paths(output);
    let mut outputs = vec![output];
    let mut inputs = super::model_inputs(model);
    inputs.extend(labels.map(Path::to_path_buf));
    if !float {
        quant.options()?;
        let Some(calib) = &quant.calib else {
            bail!(
                "quantizing needs calibration data: --calib DIR|IDX (or --float for an f32 bundle)"
            );
        };
        inputs.extend(files::data_inputs(calib));
        outputs.extend([json.as_path(), md.as_path()]);
    }
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    files::check_outputs(&inputs, &outputs)?;
    let fb = qvit_host::source::float_bundle(model, input_shape, &prep.options(), labels)?;
    if float {
        let stats = fb
            .write_file(output)
            .with_context(|| format!("writing {}", output.display()))?;
        let si = super::inspect::si;
        eprintln!(
            "wrote {} ({} bytes: weights {}, graph {}, header {}); {} parameters, {} labels",
            output.display(),
            stats.total,
            si(stats.weights as f64),
            si(stats.graph as f64),
            si(stats.header as f64),
            si(stats.params as f64),
            fb.header.labels.len()
        );
        return Ok(());
    }
    let q = run(fb, quant, output)?;
    let r = &q.report;
    if let Some(rot) = &r.rotation {
        // Say plainly when the flag found nothing to rotate, so a ptq row is not misread.
        eprintln!(
            "rotate hadamard: {} QKᵀ and {} attn·V products rotated (head dim {}), {} left alone{}",
            rot.qk,
            rot.av,
            rot.head_dim.map_or("-".to_string(), |d| d.to_string()),
            rot.skipped.len(),
            rot.skipped
                .first()
                .map_or(String::new(), |s| format!(", e.g. {s}"))
        );
    }
    if let Some(z) = &r.sizes {
        eprintln!(
            "wrote {} ({} bytes: int weights {}, scales {}, float {}, graph {}; bound {:.0}: {}); \
             {} layers quantized, {} left f32; calibration {} images, {:.1} s\nreports: {}, {}",
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
    Ok(())
}
