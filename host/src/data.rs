//! Data sources for calibration and evaluation: MNIST-style IDX pairs and image folders.
//!
//! - IDX: pass the images file (`…-images-idx3-ubyte`); the labels file with the same prefix
//!   (`…-labels-idx1-ubyte`) is used when it exists.
//! - Image folder: class subfolders (sorted by name, index = label) of PNG/JPEG files; a folder
//!   with images directly inside is unlabelled.

use anyhow::{Context, Result, bail, ensure};
use image::{DynamicImage, GrayImage};
use qvit_device::{Preprocess, Tensor};
use std::path::{Path, PathBuf};

/// One input, preprocessed for the model, with its label when the source has one.
pub struct Sample {
    /// Model input, batch 1.
    pub input: Tensor,
    /// Class index, when known.
    pub label: Option<usize>,
    /// Where it came from (file name or `IDX #i`).
    pub id: String,
}

enum Source {
    Idx {
        images: Vec<u8>,
        rows: usize,
        cols: usize,
        labels: Option<Vec<u8>>,
        labels_path: Option<PathBuf>,
    },
    Files {
        files: Vec<(PathBuf, Option<usize>)>,
    },
}

/// A labelled or unlabelled set of images.
pub struct Dataset {
    source: Source,
    /// Class names of a folder dataset (subfolder names), empty otherwise.
    pub class_names: Vec<String>,
    /// What was opened, for messages.
    pub description: String,
}

const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "JPEG", "JPG", "PNG"];

impl Dataset {
    /// Opens an IDX images file, a folder of class subfolders, or a flat image folder.
    pub fn open(path: &Path) -> Result<Dataset> {
        if path.is_file() {
            let kind = crate::files::FileKind::of(path)?;
            if kind != crate::files::FileKind::Idx {
                bail!(
                    "{} is {}, not a data source; give an IDX images file, a folder of class \
                     subfolders, or a folder of images",
                    path.display(),
                    kind.describe()
                );
            }
            return open_idx(path);
        }
        ensure!(
            path.is_dir(),
            "data source {} does not exist",
            path.display()
        );
        let idx: Vec<PathBuf> = sorted_entries(path)?
            .into_iter()
            .filter(|p| p.is_file() && p.to_string_lossy().ends_with("images-idx3-ubyte"))
            .collect();
        if !idx.is_empty() {
            if let [one] = idx.as_slice() {
                return open_idx(one);
            }
            let names: Vec<String> = idx.iter().map(|p| p.display().to_string()).collect();
            bail!(
                "{} holds several IDX image files; pass one of:\n  {}",
                path.display(),
                names.join("\n  ")
            );
        }
        open_folder(path)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        match &self.source {
            Source::Idx {
                images, rows, cols, ..
            } => images.len() / (rows * cols),
            Source::Files { files } => files.len(),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every sample has a label.
    pub fn labelled(&self) -> bool {
        match &self.source {
            Source::Idx { labels, .. } => labels.is_some(),
            Source::Files { files } => files.iter().all(|f| f.1.is_some()),
        }
    }

    /// Refuses labels a model with `classes` outputs cannot predict (`model` names it): an IDX
    /// label of `classes` or more, or more class folders than classes. Accuracy against such
    /// labels would be a meaningless number.
    pub fn check_labels(&self, classes: usize, model: &str) -> Result<()> {
        match &self.source {
            Source::Idx {
                labels: Some(labels),
                labels_path,
                ..
            } => {
                if let Some((i, &v)) = labels
                    .iter()
                    .enumerate()
                    .find(|(_, v)| usize::from(**v) >= classes)
                {
                    bail!(
                        "{}: label {v} of image #{i} is outside the {classes} classes of {model} \
                         (0 to {}); these labels do not belong to this model",
                        labels_path
                            .as_ref()
                            .map_or("the labels".into(), |p| p.display().to_string()),
                        classes.saturating_sub(1)
                    );
                }
            }
            Source::Files { .. } if self.class_names.len() > classes => bail!(
                "{} has {} class folders but {model} has {classes} classes; folder i is class \
                 i, so the folders must not outnumber the model's classes",
                self.description,
                self.class_names.len()
            ),
            _ => {}
        }
        Ok(())
    }

    /// The raw image of sample `i`.
    pub fn image(&self, i: usize) -> Result<(DynamicImage, Option<usize>, String)> {
        match &self.source {
            Source::Idx {
                images,
                rows,
                cols,
                labels,
                ..
            } => {
                let n = rows * cols;
                let px = images
                    .get(i * n..(i + 1) * n)
                    .context("sample index out of range")?
                    .to_vec();
                let img = GrayImage::from_raw(*cols as u32, *rows as u32, px)
                    .context("IDX image size")?;
                let label = labels.as_ref().map(|l| l[i] as usize);
                Ok((DynamicImage::ImageLuma8(img), label, format!("IDX #{i}")))
            }
            Source::Files { files } => {
                let (p, label) = files.get(i).context("sample index out of range")?;
                let img = qvit_device::preprocess::load_image(p)
                    .with_context(|| format!("decoding {}", p.display()))?;
                Ok((img, *label, p.display().to_string()))
            }
        }
    }

    /// Sample `i`, preprocessed.
    pub fn sample(&self, i: usize, pre: &Preprocess) -> Result<Sample> {
        let (img, label, id) = self.image(i)?;
        let input = pre
            .apply(&img)
            .with_context(|| format!("preprocessing {id}"))?;
        Ok(Sample { input, label, id })
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    v.sort();
    Ok(v)
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| IMAGE_EXTS.contains(&e.to_string_lossy().as_ref()))
}

fn open_folder(dir: &Path) -> Result<Dataset> {
    let entries = sorted_entries(dir)?;
    let classes: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    let mut files = vec![];
    let mut class_names = vec![];
    if classes.is_empty() {
        files.extend(
            entries
                .iter()
                .filter(|p| is_image(p))
                .map(|p| (p.clone(), None)),
        );
    } else {
        for (label, c) in classes.iter().enumerate() {
            class_names.push(
                c.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string(),
            );
            files.extend(
                sorted_entries(c)?
                    .into_iter()
                    .filter(|p| is_image(p))
                    .map(|p| (p, Some(label))),
            );
        }
    }
    ensure!(
        !files.is_empty(),
        "{} contains no PNG or JPEG images",
        dir.display()
    );
    let description = if class_names.is_empty() {
        format!("{} ({} unlabelled images)", dir.display(), files.len())
    } else {
        format!(
            "{} ({} images in {} classes)",
            dir.display(),
            files.len(),
            class_names.len()
        )
    };
    Ok(Dataset {
        source: Source::Files { files },
        class_names,
        description,
    })
}

fn read_idx(path: &Path, want_rank: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        bytes.len() >= 4,
        "{} is too short for an IDX file",
        path.display()
    );
    ensure!(
        bytes[0] == 0 && bytes[1] == 0,
        "{} is not an IDX file (bad magic)",
        path.display()
    );
    ensure!(
        bytes[2] == 0x08,
        "{}: only unsigned-byte IDX data is supported",
        path.display()
    );
    let rank = bytes[3] as usize;
    ensure!(
        rank == want_rank,
        "{}: expected {want_rank} dimensions, found {rank}",
        path.display()
    );
    let head = 4 + 4 * rank;
    ensure!(bytes.len() >= head, "{} is truncated", path.display());
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .context("IDX dimensions overflow")?;
    ensure!(
        bytes.len() - head == n,
        "{}: header says {n} bytes of data, file has {}",
        path.display(),
        bytes.len() - head
    );
    Ok((dims, bytes[head..].to_vec()))
}

fn open_idx(path: &Path) -> Result<Dataset> {
    let (dims, images) = read_idx(path, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    ensure!(rows > 0 && cols > 0, "{}: empty images", path.display());
    let name = path.to_string_lossy();
    let labels_path = name
        .contains("images-idx3")
        .then(|| PathBuf::from(name.replace("images-idx3", "labels-idx1")));
    let labels_path = labels_path.filter(|lp| lp.exists());
    let labels = match &labels_path {
        Some(lp) => {
            let (ld, l) = read_idx(lp, 1)?;
            ensure!(
                ld[0] == count,
                "{} has {} labels for {count} images",
                lp.display(),
                ld[0]
            );
            Some(l)
        }
        None => None,
    };
    let description = format!(
        "{} ({count} images {rows}×{cols}{})",
        path.display(),
        if labels.is_some() {
            ", labelled"
        } else {
            ", unlabelled"
        }
    );
    Ok(Dataset {
        source: Source::Idx {
            images,
            rows,
            cols,
            labels,
            labels_path,
        },
        class_names: vec![],
        description,
    })
}

/// The first `limit` samples of `path`, preprocessed with `pre`.
pub fn load_inputs(path: &Path, pre: &Preprocess, limit: usize) -> Result<Vec<Tensor>> {
    let ds = Dataset::open(path)?;
    let n = limit.min(ds.len());
    ensure!(n > 0, "{} holds no images", path.display());
    let bar = crate::progress::bar(n, "load calibration images");
    let v = (0..n)
        .map(|i| {
            bar.inc(1);
            ds.sample(i, pre).map(|s| s.input)
        })
        .collect();
    bar.finish_and_clear();
    v
}
