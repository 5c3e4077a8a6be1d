//! Writing output files so that nothing is lost: the new content goes to a temporary file in
//! the same directory, is flushed to the disk, and only then renamed over the target (atomic
//! within one file system). A full disk, a file-size limit or a crash mid-write leaves the old
//! file as it was and no partial new one. And a command refuses, before any work, to write an
//! output over one of its own inputs.

use crate::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically (see the module docs).
pub fn write(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| w.write_all(bytes))
}

/// Writes what `fill` produces to `path` atomically. A symlink at `path` is followed: its
/// target is replaced, the link stays. An existing file's permissions carry over.
pub fn write_with(
    path: impl AsRef<Path>,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        context: format!("writing {}", path.display()),
        source,
    };
    let target = resolve_symlink(path).map_err(io)?;
    let (dir, tmp) = temp_path(&target).map_err(io)?;
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        let file = options.open(&tmp)?;
        if let Ok(meta) = fs::metadata(&target) {
            if meta.is_dir() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "it is a directory",
                ));
            }
            file.set_permissions(meta.permissions())?;
        }
        let mut w = BufWriter::new(file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io(e));
    }
    // The rename is durable once the directory is; some file systems cannot sync one.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The file a write to `path` replaces: `path` itself, or the target of a symlink at `path`.
fn resolve_symlink(path: &Path) -> std::io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(path) {
            Ok(p) => Ok(p),
            // A dangling link: write where it points.
            Err(_) => {
                let link = fs::read_link(path)?;
                Ok(path.parent().unwrap_or(Path::new("")).join(link))
            }
        },
        _ => Ok(path.to_path_buf()),
    }
}

/// The directory of `target` and a fresh temporary name in it.
fn temp_path(target: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = target.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path has no file name",
        )
    })?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    Ok((dir, tmp))
}

/// Fails with [`Error::OutputIsInput`] when an output path is (or resolves to, through links,
/// `..` or a hard link) one of the inputs, and with [`Error::BadInput`] when two outputs are
/// the same file. Call it before any work, so a mistyped path costs nothing.
pub fn check_outputs(inputs: &[&Path], outputs: &[&Path]) -> Result<()> {
    let ids: Vec<Option<FileId>> = outputs.iter().map(|o| FileId::of(o)).collect();
    for (k, (out, id)) in outputs.iter().zip(&ids).enumerate() {
        let Some(id) = id else { continue };
        if let Some(input) = inputs.iter().find(|i| FileId::of(i).as_ref() == Some(id)) {
            return Err(Error::OutputIsInput {
                output: out.display().to_string(),
                input: input.display().to_string(),
            });
        }
        if let Some(other) = outputs[..k]
            .iter()
            .zip(&ids)
            .find(|(_, other)| other.as_ref() == Some(id))
        {
            return Err(Error::BadInput(format!(
                "{} and {} are the same file; give each output its own path",
                other.0.display(),
                out.display()
            )));
        }
    }
    Ok(())
}

/// What makes two paths one file: device and inode for an existing file; the canonical
/// directory and name for one not created yet.
#[derive(PartialEq, Eq, Debug)]
enum FileId {
    Inode(u64, u64),
    Planned(PathBuf),
}

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        if let Ok(meta) = fs::metadata(path) {
            return Some(inode(&meta, path));
        }
        let target = resolve_symlink(path).ok()?;
        let name = target.file_name()?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(FileId::Planned(fs::canonicalize(dir).ok()?.join(name)))
    }
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata, _path: &Path) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId::Inode(meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn inode(_meta: &fs::Metadata, path: &Path) -> FileId {
    FileId::Planned(fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
}

#[cfg(test)]
mod tests;
