//! Reading a bundle file without holding it whole: the checksum is computed over a stream of
//! the file, then the constants are read one at a time. Holding the file while its tensors are
//! decoded would keep a model's weights in memory twice at the peak of loading.

use super::{Bundle, BundleStats, CHECKSUM_LEN, PREAMBLE_LEN, limits};
use crate::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The weights blob a decoder reads constants from.
pub(super) trait Blob {
    /// Length in bytes.
    fn len(&self) -> u64;
    /// The `len` bytes at `offset`.
    fn get(&mut self, offset: u64, len: usize) -> Result<&[u8]>;
}

fn outside(offset: u64, len: usize, blob: u64) -> Error {
    Error::BadBundle(format!(
        "data {offset}+{len} outside the {blob}-byte weights blob"
    ))
}

impl Blob for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn get(&mut self, offset: u64, len: usize) -> Result<&[u8]> {
        let bytes: &[u8] = self;
        usize::try_from(offset)
            .ok()
            .and_then(|o| bytes.get(o..)?.get(..len))
            .ok_or_else(|| outside(offset, len, bytes.len() as u64))
    }
}

/// The weights blob of an open file, read piece by piece into one reused buffer.
struct FileBlob<'a> {
    file: &'a mut File,
    path: &'a Path,
    /// Offset of the blob in the file.
    start: u64,
    len: u64,
    buf: Vec<u8>,
}

impl Blob for FileBlob<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn get(&mut self, offset: u64, len: usize) -> Result<&[u8]> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(outside(offset, len, self.len));
        }
        self.buf.clear();
        self.buf.resize(len, 0);
        self.file
            .seek(SeekFrom::Start(self.start + offset))
            .and_then(|_| self.file.read_exact(&mut self.buf))
            .map_err(|e| io_error(self.path, e))?;
        Ok(&self.buf)
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        context: format!("reading {}", path.display()),
        source,
    }
}

/// Appends the next `n` bytes of `file` to `out`; fewer if the file ends first.
fn read_more(file: &mut File, n: u64, out: &mut Vec<u8>) -> std::io::Result<()> {
    file.take(n).read_to_end(out).map(|_| ())
}

/// [`Bundle::read_file_with_stats`]: the checks of [`Bundle::decode_with_stats`] in the same
/// order (preamble, checksum, sections, constants), on the file read in pieces. With `kept`,
/// integer constants stay bit-packed there ([`Bundle::read_file_bit_packed`]).
pub(super) fn read_file_with_stats(
    path: &Path,
    kept: Option<&mut super::BitPackedWeights>,
) -> Result<(Bundle, BundleStats)> {
    let io = |e| io_error(path, e);
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > limits::MAX_FILE_BYTES {
        return Err(Error::TooLarge {
            what: "bundle file".into(),
            found: len,
            limit: limits::MAX_FILE_BYTES,
        });
    }
    let mut head = Vec::new();
    read_more(&mut file, PREAMBLE_LEN as u64, &mut head).map_err(io)?;
    let p = super::read_preamble(&head, len)?;
    // The sections before the weights are kept for decoding; the weights only pass through the
    // checksum here.
    let weights_start = p.weights_start();
    read_more(&mut file, (weights_start - PREAMBLE_LEN) as u64, &mut head).map_err(io)?;
    let body_end = len - CHECKSUM_LEN as u64;
    if head.len() != weights_start {
        return Err(Error::Truncated(format!(
            "{} bytes could be read, the preamble declares {len}",
            head.len()
        )));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    let mut chunk = vec![0u8; 64 << 10];
    let mut left = body_end - weights_start as u64;
    while left > 0 {
        let n = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        file.read_exact(&mut chunk[..n]).map_err(io)?;
        crc.update(&chunk[..n]);
        left -= n as u64;
    }
    drop(chunk);
    let mut stored = [0u8; CHECKSUM_LEN];
    file.read_exact(&mut stored).map_err(io)?;
    super::check_crc(u32::from_le_bytes(stored), crc.finalize())?;
    let mut blob = FileBlob {
        file: &mut file,
        path,
        start: weights_start as u64,
        len: p.weights_len,
        buf: Vec::new(),
    };
    super::decode_sections(&head, &p, len, &mut blob, kept)
}
