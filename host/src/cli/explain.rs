//! `qvit explain`: relevance heatmaps and Salient Relevance maps of images as PNG overlays and
//! raw `.npy` maps, and with `--eval` the deletion/insertion faithfulness of each method.

use super::parse;
use super::relevance::LrpArgs;
use anyhow::{Context, Result, bail, ensure};
use clap::{Args, ValueEnum};
use qvit_device::exec::Executor;
use qvit_device::{Graph, Preprocess, Tensor};
use qvit_host::explain::faithfulness::{Curves, Score, curves, order, patch_order};
use qvit_host::explain::maps::{
    Map, display_image, maps, patch_map, patch_size, pixel_map, spearman, upscale,
};
use qvit_host::explain::saliency::SaliencyParams;
use qvit_host::lrp::{Lrp, LrpOptions, Seed};
use qvit_kernels::KernelSet;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which maps `qvit explain` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Pixel relevance (LRP).
    Lrp,
    /// Salient Relevance: context-aware saliency on the relevance map.
    Sr,
    /// Both.
    Both,
}

/// Flags of `qvit explain`.
#[derive(Args, Clone, Debug)]
pub struct ExplainArgs {
    /// Images to explain (PNG or JPEG).
    pub images: Vec<PathBuf>,
    /// Output folder for PNG overlays, `.npy` maps and `explain.json` (or the faithfulness plot).
    #[arg(short, long, default_value = "qvit-explain")]
    pub output: PathBuf,
    /// Maps to draw.
    #[arg(long, value_enum, default_value_t = MethodArg::Both)]
    pub method: MethodArg,
    /// Heatmap opacity over the image.
    #[arg(long, default_value_t = 0.6)]
    pub alpha: f32,
    /// Integer upscaling of the overlays (default: up to about 224 pixels; 1 keeps the input's
    /// size). The overlays are at most 4096 pixels a side.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_OVERLAY_SIDE as i64))]
    pub scale: Option<u32>,
    /// The f32 ONNX model a quantized bundle came from: also explain with it and report the
    /// rank correlation of the maps (how quantization changed the explanation).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    #[command(flatten)]
    pub lrp: LrpArgs,
    #[command(flatten)]
    pub sr: SrArgs,
    /// Faithfulness instead of pictures: deletion and insertion curves (AOPC) of lrp, sr,
    /// gradient × input and a random order on --data.
    #[arg(long, requires = "data")]
    pub eval: bool,
    /// Images for --eval.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// At most N images for --eval (at least 1).
    #[arg(long, default_value_t = 200, value_parser = parse::count)]
    pub limit: usize,
    /// Deletion/insertion steps, 1 to 1000 (each removes or inserts 1/STEPS of the pixels; every
    /// step costs 8 model runs per image).
    #[arg(long, default_value_t = 20, value_parser = steps)]
    pub steps: usize,
    /// What --eval removes and inserts: whole ViT patches (tokens, the unit a ViT sees; the
    /// default, or pixels when the patch size is unknown), or single pixels.
    #[arg(long, value_enum, default_value_t = UnitArg::Patch)]
    pub unit: UnitArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Largest side of an overlay PNG (`--scale` times the input's side): 4096² RGB is 48 MiB.
const MAX_OVERLAY_SIDE: u32 = 4096;
/// Most deletion/insertion steps.
const MAX_STEPS: usize = 1000;

fn steps(s: &str) -> Result<usize, String> {
    let n = parse::count(s)?;
    if n > MAX_STEPS {
        return Err(format!(
            "{n} steps is more than {MAX_STEPS}; each step costs 8 model runs per image"
        ));
    }
    Ok(n)
}

impl ExplainArgs {
    /// Checks what can be checked before opening the model: the numbers, and that no output
    /// file is one of the inputs (`model`, the reference, the images, the data).
    pub fn check(&self, model: &Path) -> Result<()> {
        ensure!(
            (0.0..=1.0).contains(&self.alpha),
            "--alpha {} must lie in [0, 1]",
            self.alpha
        );
        self.lrp.check()?;
        if self.output.exists() && !self.output.is_dir() {
            bail!(
                "-o {} is a file; explain writes several files into a folder: give a folder path",
                self.output.display()
            );
        }
        let mut inputs = super::model_inputs(model);
        inputs.extend(self.reference.clone());
        inputs.extend(self.images.iter().cloned());
        if let Some(d) = &self.data {
            inputs.extend(qvit_host::files::data_inputs(d));
        }
        if !self.output.is_dir() {
            // A folder still to be created holds no input.
            return Ok(());
        }
        let outputs = if self.eval {
            vec![self.output.join("faithfulness.png")]
        } else {
            let mut v = vec![self.output.join("explain.json")];
            for img in &self.images {
                for kind in ["lrp", "patch", "sr"] {
                    for ext in ["png", "npy"] {
                        v.push(self.output.join(format!("{}.{kind}.{ext}", stem(img))));
                    }
                }
            }
            v
        };
        let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
        let outputs: Vec<&Path> = outputs.iter().map(PathBuf::as_path).collect();
        qvit_host::files::check_outputs(&inputs, &outputs)
    }
}

/// The name an image's maps are saved under.
fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "image".into())
}

/// Deletion/insertion unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UnitArg {
    /// One pixel (all its channels) at a time.
    Pixel,
    /// One ViT patch at a time, ranked by the map summed over the patch.
    Patch,
}

/// Parameters of the Salient Relevance step (Goferman et al.'s context-aware saliency).
#[derive(Args, Clone, Debug)]
pub struct SrArgs {
    /// Patch side in pixels (default: Goferman et al.'s 7 at 224 pixels, scaled with the image
    /// side, at least 3).
    #[arg(long, value_parser = parse::count)]
    pub sr_patch: Option<usize>,
    /// Relative scales, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,0.8,0.5,0.3")]
    pub sr_scales: Vec<f32>,
    /// Number of most similar patches compared (K, at least 1).
    #[arg(long, default_value_t = 64, value_parser = parse::count)]
    pub sr_neighbours: usize,
    /// Position weight c in d = d_value / (1 + c·d_position).
    #[arg(long, default_value_t = 3.0)]
    pub sr_c: f32,
    /// Saliency above which a pixel is an attended focus.
    #[arg(long, default_value_t = 0.8)]
    pub sr_foci: f32,
    /// Multiply by a Gaussian centre prior.
    #[arg(long)]
    pub sr_centre_prior: bool,
}

impl SrArgs {
    /// The saliency parameters for images of `side` pixels (the longer side).
    pub fn params(&self, side: usize) -> SaliencyParams {
        SaliencyParams {
            patch: self
                .sr_patch
                .unwrap_or(((7 * side) as f64 / 224.0).round().max(3.0) as usize),
            scales: self.sr_scales.clone(),
            neighbours: self.sr_neighbours,
            c: self.sr_c,
            foci_threshold: self.sr_foci,
            centre_prior: self.sr_centre_prior,
        }
    }
}

/// Runs `qvit explain` on an opened model (`graph` with preprocessing `pre`).
pub fn run(graph: Graph, pre: &Preprocess, labels: &[String], args: &ExplainArgs) -> Result<()> {
    let side = pre.crop[0].max(pre.crop[1]);
    if let Some(s) = args.scale
        && u64::from(side) * u64::from(s) > u64::from(MAX_OVERLAY_SIDE)
    {
        bail!(
            "--scale {s} would draw the {}x{} input at {}x{} pixels; overlays are at most \
             {MAX_OVERLAY_SIDE} pixels a side: give --scale {} or less",
            pre.crop[0],
            pre.crop[1],
            u64::from(pre.crop[0]) * u64::from(s),
            u64::from(pre.crop[1]) * u64::from(s),
            (MAX_OVERLAY_SIDE / side.max(1)).max(1)
        );
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    if args.eval {
        let data = args.data.as_deref().context("--eval needs --data")?;
        return evaluate(graph, pre, data, args);
    }
    ensure!(
        !args.images.is_empty(),
        "give images to explain, or --eval --data D"
    );
    let seed = args.lrp.seed(&graph)?;
    let mut reference = match &args.reference {
        Some(p) => {
            let shape = graph.shape(graph.inputs[0]).to_vec();
            let imp = qvit_host::import::import_path(p, Some(&shape))?;
            Some(Lrp::new(imp.graph, args.lrp.options())?)
        }
        None => None,
    };
    let mut lrp = Lrp::new(graph, args.lrp.options())?;
    let p = patch_size(lrp.graph(), pre.channels());
    let params = args.sr.params(pre.crop[0].max(pre.crop[1]) as usize);
    let want_sr = args.method != MethodArg::Lrp;
    let mut summary = Vec::new();
    for path in &args.images {
        let img = qvit_device::preprocess::load_image(path)
            .with_context(|| format!("decoding {}", path.display()))?;
        let x = pre
            .apply(&img)
            .with_context(|| format!("preprocessing {}", path.display()))?;
        let m = maps(&mut lrp, &x, seed, pre, want_sr.then_some(&params))?;
        let stem = stem(path);
        let shown = display_image(&x, pre)?;
        let s = args
            .scale
            .unwrap_or((224 / shown.width().max(shown.height())).max(1));
        let shown = upscale(&shown, s);
        let mut files = Vec::new();
        let mut save = |name: String, map: &Map, signed: bool| -> Result<()> {
            let png = args.output.join(format!("{stem}.{name}.png"));
            let drawn = qvit_host::plot::overlay(
                &shown,
                &display_range(&map.data),
                map.w,
                map.h,
                args.alpha,
                signed,
            )?;
            qvit_host::plot::save_png(&drawn, &png)?;
            let npy = args.output.join(format!("{stem}.{name}.npy"));
            qvit_device::npy::write(&npy, &Tensor::new(vec![map.h, map.w], map.data.clone())?)?;
            files.push(png.display().to_string());
            files.push(npy.display().to_string());
            Ok(())
        };
        if args.method != MethodArg::Sr {
            save("lrp".into(), &m.pixel, true)?;
            if let Some(p) = p {
                save("patch".into(), &patch_map(&m.pixel, p), true)?;
            }
        }
        if let Some(sr) = &m.sr {
            save("sr".into(), sr, false)?;
        }
        let mut entry = json!({
            "image": path.display().to_string(),
            "target": m.relevance.target,
            "label": m.relevance.target.and_then(|t| labels.get(t)),
            "relevance_total": m.relevance.total,
            "files": files,
        });
        if let Some(r) = &mut reference {
            let rseed = m
                .relevance
                .target
                .map_or(Seed::Norm, |t| Seed::Logit(Some(t)));
            let rm = maps(r, &x, rseed, pre, want_sr.then_some(&params))?;
            let mut rc = BTreeMap::new();
            rc.insert("lrp", spearman(&m.pixel.data, &rm.pixel.data));
            if let (Some(a), Some(b)) = (&m.sr, &rm.sr) {
                rc.insert("sr", spearman(&a.data, &b.data));
            }
            entry["rank_correlation_vs_reference"] = json!(rc);
        }
        if !args.json {
            println!("{}: {}", path.display(), describe(&entry));
        }
        summary.push(entry);
    }
    let out = json!({ "method": format!("{:?}", args.method).to_lowercase(), "images": summary });
    let file = args.output.join("explain.json");
    qvit_host::files::write(
        &file,
        (serde_json::to_string_pretty(&out)? + "\n").as_bytes(),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("maps and overlays in {}", args.output.display());
    }
    Ok(())
}

/// The map clipped to ±(99.5th percentile of |v|) for display: a few extreme pixels would
/// otherwise wash every other value out to white. The `.npy` keeps the raw values.
fn display_range(map: &[f32]) -> Vec<f32> {
    let mut mags: Vec<f32> = map.iter().map(|v| v.abs()).collect();
    let k = (mags.len() * 995 / 1000).min(mags.len().saturating_sub(1));
    let Some((_, &mut p, _)) =
        (!mags.is_empty()).then(|| mags.select_nth_unstable_by(k, f32::total_cmp))
    else {
        return map.to_vec();
    };
    if p <= 0.0 {
        return map.to_vec();
    }
    map.iter().map(|v| v.clamp(-p, p)).collect()
}

fn describe(e: &serde_json::Value) -> String {
    let mut s = match (e["target"].as_u64(), e["label"].as_str()) {
        (Some(t), Some(l)) => format!("class {t} ({l})"),
        (Some(t), None) => format!("class {t}"),
        _ => "output norm".into(),
    };
    if let Some(rc) = e["rank_correlation_vs_reference"].as_object() {
        for (k, v) in rc {
            s += &format!(
                ", {k} rank correlation with the reference {:.3}",
                v.as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    s
}

/// Faithfulness of each method over the mean curves.
#[derive(Serialize)]
struct MethodResult {
    deletion_aopc: f64,
    insertion_aopc: f64,
    deletion_curve: Vec<f64>,
    insertion_curve: Vec<f64>,
}

const METHODS: [&str; 4] = ["lrp", "sr", "gradxinput", "random"];

fn evaluate(graph: Graph, pre: &Preprocess, data: &Path, args: &ExplainArgs) -> Result<()> {
    let ds = qvit_host::data::Dataset::open(data)?;
    let n = args.limit.min(ds.len());
    ensure!(n > 0, "{} holds no images", data.display());
    let seed = args.lrp.seed(&graph)?;
    let mut lrp = Lrp::new(graph.clone(), args.lrp.options())?;
    let grad_opts = LrpOptions {
        gradient: true,
        ..args.lrp.options()
    };
    let mut grad = Lrp::new(graph.clone(), grad_opts)?;
    let patch = match args.unit {
        UnitArg::Pixel => None,
        UnitArg::Patch => {
            let p = patch_size(&graph, pre.channels());
            if p.is_none() {
                eprintln!("note: the model's patch size is unknown; deleting single pixels");
            }
            p
        }
    };
    let mut ex = Executor::new(graph, KernelSet::detect())?;
    let params = args.sr.params(pre.crop[0].max(pre.crop[1]) as usize);
    let mut sums: BTreeMap<&str, Curves> = BTreeMap::new();
    let bar = qvit_host::progress::bar(n, "faithfulness");
    let start = std::time::Instant::now();
    for i in 0..n {
        let x = ds.sample(i, pre)?.input;
        let m = maps(&mut lrp, &x, seed, pre, Some(&params))?;
        let score = match m.relevance.target {
            Some(t) => Score::Prob(t),
            None => Score::Projection(m.relevance.outputs[0].data.clone()),
        };
        let gseed = m
            .relevance
            .target
            .map_or(Seed::Norm, |t| Seed::Logit(Some(t)));
        let g = pixel_map(&grad.run(&x, gseed)?.input, pre.layout)?;
        let mut rng = qvit_host::fixtures::SeededRng::new(i as u64 + 1);
        let random: Vec<f32> = (0..m.pixel.data.len()).map(|_| rng.uniform()).collect();
        let sr = m.sr.as_ref().context("SR map")?;
        for (name, map) in METHODS
            .iter()
            .zip([&m.pixel.data, &sr.data, &g.data, &random])
        {
            let ord = match patch {
                Some(p) => patch_order(map, m.pixel.w, m.pixel.h, p),
                None => order(map),
            };
            let c = curves(&mut ex, &x, pre.layout, &ord, &score, args.steps)?;
            let acc = sums.entry(name).or_insert_with(|| Curves {
                deletion: vec![0.0; c.deletion.len()],
                insertion: vec![0.0; c.insertion.len()],
            });
            for (a, v) in acc.deletion.iter_mut().zip(&c.deletion) {
                *a += v / n as f64;
            }
            for (a, v) in acc.insertion.iter_mut().zip(&c.insertion) {
                *a += v / n as f64;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let methods: BTreeMap<&str, MethodResult> = sums
        .iter()
        .map(|(k, c)| {
            (
                *k,
                MethodResult {
                    deletion_aopc: c.deletion_aopc(),
                    insertion_aopc: c.insertion_aopc(),
                    deletion_curve: c.deletion.clone(),
                    insertion_curve: c.insertion.clone(),
                },
            )
        })
        .collect();
    let target = match seed {
        Seed::Logit(Some(t)) => format!("class {t}"),
        Seed::Logit(None) => "predicted class (softmax probability)".into(),
        Seed::Norm => "output norm (projection on the original output)".into(),
        Seed::Tokens => "every token alike (mean projection of each token on its original)".into(),
    };
    let png = args.output.join("faithfulness.png");
    plot(&methods, args.steps, &png)?;
    let out = json!({
        "methods": methods, "n": n, "steps": args.steps, "target": target,
        "unit": patch.map_or("pixel".to_string(), |p| format!("patch {p}x{p}")),
        "data": data.display().to_string(), "seconds": start.elapsed().as_secs_f64(),
        "plot": png.display().to_string(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "Faithfulness on {n} images of {} (target: {target}; {} steps)\n",
            data.display(),
            args.steps
        );
        println!(
            "| method | deletion AOPC (higher is better) | insertion AOPC (higher is better) |"
        );
        println!("|---|---:|---:|");
        for (k, r) in &methods {
            println!("| {k} | {:.4} | {:.4} |", r.deletion_aopc, r.insertion_aopc);
        }
        println!("\nplot: {}", png.display());
    }
    Ok(())
}

fn plot(methods: &BTreeMap<&str, MethodResult>, steps: usize, path: &Path) -> Result<()> {
    let xs: Vec<f64> = (0..=steps).map(|k| k as f64 / steps as f64).collect();
    let mut series = Vec::new();
    for (k, r) in methods {
        for (what, c) in [
            ("deletion", &r.deletion_curve),
            ("insertion", &r.insertion_curve),
        ] {
            series.push(qvit_host::plot::Series {
                name: format!("{k} {what}"),
                points: xs.iter().copied().zip(c.iter().copied()).collect(),
            });
        }
    }
    if series.is_empty() {
        bail!("no curves to plot");
    }
    qvit_host::plot::line_chart(
        path,
        "deletion and insertion curves",
        "fraction of pixels removed / inserted",
        "target score",
        &series,
    )
}
