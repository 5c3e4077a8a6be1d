//! The files a command is pointed at and the files it writes. Inputs are recognised by their
//! first bytes, not their names, so a bundle named `.onnx`, a directory or a picture given as
//! the model gets a sentence saying what it is instead of a parser's complaint. Outputs go
//! through [`qvit_device::outfile`] (temporary file, fsync, rename) and are checked before any
//! work: an output that is, or resolves to, one of the command's inputs is refused.

use anyhow::{Context, Result, bail};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a path holds, judged by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Nothing at that path.
    Missing,
    /// A directory.
    Directory,
    /// A file of zero bytes.
    Empty,
    /// A qvit bundle (its magic bytes).
    Bundle,
    /// A PNG image.
    Png,
    /// A JPEG image.
    Jpeg,
    /// A NumPy `.npy` array.
    Npy,
    /// A zip archive (PyTorch's `.pt`/`.pth` checkpoints are zip files).
    Zip,
    /// An IDX data file (MNIST's format).
    Idx,
    /// Printable text.
    Text,
    /// Anything else: an ONNX protobuf has no magic bytes, so this is what ONNX looks like.
    Other,
}

impl FileKind {
    /// What `path` holds. A file that cannot be opened is reported with its path.
    pub fn of(path: &Path) -> Result<FileKind> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileKind::Missing),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if meta.is_dir() {
            return Ok(FileKind::Directory);
        }
        let mut head = Vec::with_capacity(64);
        std::fs::File::open(path)
            .and_then(|f| f.take(64).read_to_end(&mut head))
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(Self::of_bytes(&head))
    }

    /// What a file starting with `head` holds.
    pub fn of_bytes(head: &[u8]) -> FileKind {
        let starts = |magic: &[u8]| head.starts_with(magic);
        if head.is_empty() {
            FileKind::Empty
        } else if starts(&qvit_device::bundle::MAGIC) {
            FileKind::Bundle
        } else if starts(b"\x89PNG\r\n\x1a\n") {
            FileKind::Png
        } else if starts(&[0xFF, 0xD8, 0xFF]) {
            FileKind::Jpeg
        } else if starts(b"\x93NUMPY") {
            FileKind::Npy
        } else if starts(b"PK\x03\x04") {
            FileKind::Zip
        } else if head.len() >= 4 && head[..3] == [0, 0, 0x08] && (1..=4).contains(&head[3]) {
            FileKind::Idx
        } else if printable(head) {
            FileKind::Text
        } else {
            FileKind::Other
        }
    }

    /// "a PNG image", "a directory", … for messages.
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Missing => "missing",
            FileKind::Directory => "a directory",
            FileKind::Empty => "an empty file",
            FileKind::Bundle => "a qvit bundle",
            FileKind::Png => "a PNG image",
            FileKind::Jpeg => "a JPEG image",
            FileKind::Npy => "a NumPy .npy array",
            FileKind::Zip => "a zip archive (a PyTorch checkpoint? export the model to ONNX first)",
            FileKind::Idx => "an IDX data file (images or labels, not a model)",
            FileKind::Text => "a text file",
            FileKind::Other => "an ONNX model or an unknown binary",
        }
    }
}

/// Whether `head` is UTF-8 text without control characters (a character cut at the end of
/// the sample is fine).
fn printable(head: &[u8]) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    text.chars()
        .all(|c| !c.is_control() || c.is_ascii_whitespace())
}

/// What the model argument of a command may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFile {
    /// An ONNX model (by elimination: it has no magic bytes of its own).
    Onnx,
    /// A qvit bundle.
    Bundle,
}

/// Classifies the model argument, failing with what the file is when it is neither an ONNX
/// model nor a bundle. `accepted` says what the command takes, for the message.
pub fn model_file(path: &Path, accepted: &str) -> Result<ModelFile> {
    let kind = FileKind::of(path)?;
    match kind {
        FileKind::Bundle => Ok(ModelFile::Bundle),
        FileKind::Other => Ok(ModelFile::Onnx),
        FileKind::Missing => bail!("{} does not exist; give {accepted}", path.display()),
        _ => bail!(
            "{} is {}, not a model; give {accepted}",
            path.display(),
            kind.describe()
        ),
    }
}

/// Refuses `path` unless it holds an ONNX model (see [`model_file`]); a bundle gets a hint.
pub fn expect_onnx(path: &Path) -> Result<()> {
    match model_file(path, "an ONNX model (.onnx)")? {
        ModelFile::Onnx => Ok(()),
        ModelFile::Bundle => bail!(
            "{} is a qvit bundle, not an ONNX model; this needs the ONNX model \
             (`qvit-run info {}` describes a bundle)",
            path.display(),
            path.display()
        ),
    }
}

/// Refuses, before any work, outputs that are (or resolve to, through links, `..` or hard
/// links) one of `inputs`, two outputs that are one file, an output that is a directory, and
/// an output whose directory does not exist.
pub fn check_outputs(inputs: &[&Path], outputs: &[&Path]) -> Result<()> {
    for out in outputs {
        if out.is_dir() {
            bail!(
                "the output {} is a directory; give a file path",
                out.display()
            );
        }
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            bail!(
                "cannot write {}: the directory {} does not exist",
                out.display(),
                dir.display()
            );
        }
    }
    qvit_device::outfile::check_outputs(inputs, outputs)?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (temporary file beside it, fsync, rename).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    qvit_device::outfile::write(path, bytes)?;
    Ok(())
}

/// The files a data source reads: the path itself and, for an IDX images file, its labels
/// file (found by name); for a folder, the files in it and in its class subfolders (an output
/// may go into the folder, but may not replace one of its images).
pub fn data_inputs(path: &Path) -> Vec<PathBuf> {
    let mut v = vec![path.to_path_buf()];
    let name = path.to_string_lossy();
    if path.is_file() && name.contains("images-idx3") {
        v.push(PathBuf::from(name.replace("images-idx3", "labels-idx1")));
    }
    let list = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    for entry in list(path) {
        if entry.is_dir() {
            v.extend(list(&entry).into_iter().filter(|p| p.is_file()));
        } else {
            v.push(entry);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_first_bytes() {
        assert_eq!(FileKind::of_bytes(b""), FileKind::Empty);
        assert_eq!(
            FileKind::of_bytes(&qvit_device::bundle::MAGIC),
            FileKind::Bundle
        );
        assert_eq!(FileKind::of_bytes(b"\x89PNG\r\n\x1a\n...."), FileKind::Png);
        assert_eq!(
            FileKind::of_bytes(&[0xFF, 0xD8, 0xFF, 0xE0]),
            FileKind::Jpeg
        );
        assert_eq!(FileKind::of_bytes(b"\x93NUMPY\x01\x00"), FileKind::Npy);
        assert_eq!(FileKind::of_bytes(b"PK\x03\x04rest"), FileKind::Zip);
        assert_eq!(FileKind::of_bytes(&[0, 0, 8, 3, 0, 0]), FileKind::Idx);
        assert_eq!(FileKind::of_bytes(b"# qvit\n\nhello"), FileKind::Text);
        // An ONNX ModelProto opens with field 1 (ir_version), a varint: 0x08.
        assert_eq!(
            FileKind::of_bytes(&[0x08, 0x07, 0x12, 0x07, b'p', 0x00, 0xFE]),
            FileKind::Other
        );
    }
}
