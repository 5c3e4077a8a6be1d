//! Bundle v1: the versioned, checksummed file format of a compiled model.
//!
//! ```text
//! offset  size         field
//! 0       8            magic "\x89QVIT\r\n\x1a" (binary-safe, catches text-mode mangling)
//! 8       4            format version, u32 LE (1)
//! 12      4            header length H, u32 LE
//! 16      4            graph length G, u32 LE
//! 20      4            reserved, zero
//! 24      8            weights length W, u64 LE
//! 32      H            header, postcard (`wire::WireHeader`)
//! 32+H    G            graph, postcard (`wire::WireGraph`); constants point into the blob
//! ...     0..31        zero padding to a multiple of 32
//! B       W            weights blob; every tensor starts at a multiple of 32 within it
//! B+W     4            CRC-32 (IEEE) of every preceding byte, u32 LE
//! ```
//!
//! The loader treats the file as hostile: the fixed preamble is checked (magic, version,
//! section lengths against caps and against the actual file size) before anything is
//! allocated, then the checksum, then the header and graph are decoded with
//! `postcard::take_from_bytes` (which must consume their sections exactly), every tensor
//! reference is bounds-checked, and the graph is validated ([`Graph::validate`]). Every problem
//! is a typed [`Error`]; nothing panics.

pub use crate::bitpack;
mod convert;
mod header;
mod read;
pub mod wire;

pub use crate::bit_packed::BitPackedWeights;
pub use header::{Header, PRODUCER};

use crate::graph::Graph;
use crate::{Error, Result};
use std::path::Path;

/// The eight bytes every bundle starts with.
pub const MAGIC: [u8; 8] = *b"\x89QVIT\r\n\x1a";
/// The format version this runtime writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Alignment (bytes) of the weights blob in the file and of every tensor within it.
pub const WEIGHT_ALIGN: usize = 32;
/// Size of the fixed preamble before the header.
pub const PREAMBLE_LEN: usize = 32;
/// Size of the trailing checksum.
pub const CHECKSUM_LEN: usize = 4;

/// Caps on what a bundle may declare. They bound the memory a crafted file can make the loader
/// allocate: section lengths are checked against these and the file size before decoding, and
/// postcard allocates at most a small multiple of a section's length while decoding it.
pub mod limits {
    /// Largest bundle file accepted.
    pub const MAX_FILE_BYTES: u64 = 4 << 30;
    /// Largest header section.
    pub const MAX_HEADER_BYTES: u32 = 4 << 20;
    /// Largest graph section (ViT-B/16 needs well under 1 MiB).
    pub const MAX_GRAPH_BYTES: u32 = 4 << 20;
    /// Longest name, label or producer string, in bytes.
    pub const MAX_STRING: usize = 4096;
    /// Most class labels.
    pub const MAX_LABELS: usize = 1 << 20;
    /// Most values in a graph.
    pub const MAX_VALUES: usize = 1 << 20;
    /// Most nodes in a graph.
    pub const MAX_NODES: usize = 1 << 20;
    /// Most graph inputs or outputs.
    pub const MAX_IO: usize = 1024;
    /// Most inputs of one node.
    pub const MAX_NODE_INPUTS: usize = 4096;
}

/// A model as stored in a `.qvit` file: header plus graph (with its weights).
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    /// Model metadata.
    pub header: Header,
    /// The computation, constants included.
    pub graph: Graph,
}

/// Byte sizes of a bundle's sections, from encoding or decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BundleStats {
    /// Format version of the file.
    pub format_version: u32,
    /// Whole file.
    pub total: u64,
    /// Fixed preamble (magic, version, lengths).
    pub preamble: u64,
    /// Postcard header section.
    pub header: u64,
    /// Postcard graph section.
    pub graph: u64,
    /// Alignment padding before the weights.
    pub padding: u64,
    /// Weights blob (including alignment padding between tensors).
    pub weights: u64,
    /// Trailing checksum.
    pub checksum: u64,
    /// Number of constant tensors.
    pub const_tensors: u64,
    /// Number of constant parameters (elements of f32 and integer constants).
    pub params: u64,
    /// Bytes of quantized integer weights within the weights blob.
    pub int_weights: u64,
    /// Bytes of f32 quantization scales (per-channel weight scales) within the weights blob.
    pub scales: u64,
    /// Bytes of other f32 constants (biases, norms, embeddings, float weights) within the blob.
    pub float_consts: u64,
}

/// Section lengths read from the preamble.
struct Preamble {
    header_len: usize,
    graph_len: usize,
    weights_len: u64,
}

impl Preamble {
    /// Offset of the weights blob: the sections before it, padded to [`WEIGHT_ALIGN`].
    fn weights_start(&self) -> usize {
        (PREAMBLE_LEN + self.header_len + self.graph_len).next_multiple_of(WEIGHT_ALIGN)
    }
}

impl Bundle {
    /// A bundle of `graph` with a default [`Header::for_graph`].
    pub fn new(model_name: &str, graph: Graph) -> Bundle {
        Bundle {
            header: Header::for_graph(model_name, &graph),
            graph,
        }
    }

    /// Validates and serialises the bundle.
    pub fn encode(&self) -> Result<Vec<u8>> {
        Ok(self.encode_with_stats()?.0)
    }

    /// [`encode`](Self::encode), also returning the section sizes.
    pub fn encode_with_stats(&self) -> Result<(Vec<u8>, BundleStats)> {
        self.graph.validate()?;
        self.header.validate(&self.graph)?;
        let mut blob = Vec::new();
        let wire_graph = convert::graph_to_wire(&self.graph, &mut blob)?;
        let header = postcard::to_stdvec(&self.header.to_wire())
            .map_err(|e| Error::BadBundle(e.to_string()))?;
        let graph =
            postcard::to_stdvec(&wire_graph).map_err(|e| Error::BadBundle(e.to_string()))?;
        let section = |len: usize, max: u32, what: &str| {
            u32::try_from(len)
                .ok()
                .filter(|&l| l <= max)
                .ok_or_else(|| Error::TooLarge {
                    what: what.into(),
                    found: len as u64,
                    limit: max.into(),
                })
        };
        let mut out = Vec::with_capacity(
            PREAMBLE_LEN + header.len() + graph.len() + WEIGHT_ALIGN + blob.len() + 4,
        );
        out.extend(MAGIC);
        out.extend(FORMAT_VERSION.to_le_bytes());
        out.extend(
            section(header.len(), limits::MAX_HEADER_BYTES, "header section")?.to_le_bytes(),
        );
        out.extend(section(graph.len(), limits::MAX_GRAPH_BYTES, "graph section")?.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((blob.len() as u64).to_le_bytes());
        out.extend(&header);
        out.extend(&graph);
        let padding = out.len().next_multiple_of(WEIGHT_ALIGN) - out.len();
        out.resize(out.len() + padding, 0);
        out.extend(&blob);
        let crc = crc32fast::hash(&out);
        out.extend(crc.to_le_bytes());
        if out.len() as u64 > limits::MAX_FILE_BYTES {
            return Err(Error::TooLarge {
                what: "bundle".into(),
                found: out.len() as u64,
                limit: limits::MAX_FILE_BYTES,
            });
        }
        let split = const_bytes(&wire_graph);
        let stats = self.stats(
            out.len() as u64,
            header.len(),
            graph.len(),
            padding,
            blob.len() as u64,
            split,
        );
        Ok((out, stats))
    }

    /// Parses and validates a bundle; see the module docs for what is checked.
    pub fn decode(bytes: &[u8]) -> Result<Bundle> {
        Ok(Self::decode_with_stats(bytes)?.0)
    }

    /// [`decode`](Self::decode), also returning the section sizes.
    pub fn decode_with_stats(bytes: &[u8]) -> Result<(Bundle, BundleStats)> {
        let head = &bytes[..bytes.len().min(PREAMBLE_LEN)];
        let p = read_preamble(head, bytes.len() as u64)?;
        let body_end = bytes.len() - CHECKSUM_LEN; // read_preamble checked the exact length
        let stored = u32::from_le_bytes(le_array(&bytes[body_end..]));
        check_crc(stored, crc32fast::hash(&bytes[..body_end]))?;
        let weights_start = p.weights_start();
        let mut blob = &bytes[weights_start..body_end];
        decode_sections(
            &bytes[..weights_start],
            &p,
            bytes.len() as u64,
            &mut blob,
            None,
        )
    }

    /// Reads and decodes a bundle file, refusing files over [`limits::MAX_FILE_BYTES`] before
    /// reading them. Accepts and refuses exactly what [`decode`](Self::decode) does with the
    /// file's bytes, but never holds the whole file: the checksum is computed over a stream of
    /// it, then the constants are read one at a time. So a file changed in place while it is
    /// read may decode to data its checksum was not computed over (every value is still
    /// checked); bundles are replaced by renaming, which an open file does not see.
    pub fn read_file(path: impl AsRef<Path>) -> Result<Bundle> {
        Ok(Self::read_file_with_stats(path)?.0)
    }

    /// [`read_file`](Self::read_file), also returning the section sizes.
    pub fn read_file_with_stats(path: impl AsRef<Path>) -> Result<(Bundle, BundleStats)> {
        read::read_file_with_stats(path.as_ref(), None)
    }

    /// [`read_file_with_stats`](Self::read_file_with_stats) for running the bundle: its
    /// quantized integer weights of fewer than 8 bits stay in the file's bit-packed form, in the
    /// returned [`BitPackedWeights`], and the graph names them [`crate::Source::PackedInt`]
    /// (8-bit ones are read as [`read_file`](Self::read_file) reads them). Accepts and
    /// refuses the same files with the same errors. A model unpacks them one layer at a time
    /// as it packs them (`Model::from_bit_packed`), so a 4-bit model is never
    /// held at a byte per value.
    pub fn read_file_bit_packed(
        path: impl AsRef<Path>,
    ) -> Result<(Bundle, BitPackedWeights, BundleStats)> {
        let mut kept = BitPackedWeights::default();
        let (bundle, stats) = read::read_file_with_stats(path.as_ref(), Some(&mut kept))?;
        Ok((bundle, kept, stats))
    }

    /// Encodes the bundle and writes it to `path` atomically ([`crate::outfile`]): a failed
    /// write leaves the file that was there untouched.
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<BundleStats> {
        let (bytes, stats) = self.encode_with_stats()?;
        crate::outfile::write(path, &bytes)?;
        Ok(stats)
    }

    fn stats(
        &self,
        total: u64,
        header: usize,
        graph: usize,
        padding: usize,
        weights: u64,
        (int_weights, scales, float_consts): (u64, u64, u64),
    ) -> BundleStats {
        let w = |x: usize| x as u64;
        let const_tensors = self
            .graph
            .values
            .iter()
            .filter(|v| matches!(v.source, crate::Source::Const(_)))
            .count();
        BundleStats {
            int_weights,
            scales,
            float_consts,
            format_version: FORMAT_VERSION,
            total,
            preamble: w(PREAMBLE_LEN),
            header: w(header),
            graph: w(graph),
            padding: w(padding),
            weights,
            checksum: w(CHECKSUM_LEN),
            const_tensors: w(const_tensors),
            params: w(self.graph.param_count()),
        }
    }
}

/// Bytes of integer weights, of QLinear scales and of the other float constants, as stored
/// (read off the wire tensors, so the encoder's dtype choices are not derived a second time).
fn const_bytes(g: &wire::WireGraph) -> (u64, u64, u64) {
    let scale_ids: std::collections::HashSet<u32> = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, wire::WireOp::QLinear { .. }))
        .filter_map(|n| n.inputs.get(2).copied())
        .collect();
    let (mut int, mut scales, mut float) = (0u64, 0u64, 0u64);
    for (id, v) in g.values.iter().enumerate() {
        if let wire::WireSource::Const(t) = &v.source {
            match t.dtype {
                wire::WireDType::Int { .. } => int += t.len,
                _ if scale_ids.contains(&(id as u32)) => scales += t.len,
                _ => float += t.len,
            }
        }
    }
    (int, scales, float)
}

fn le_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(&bytes[..N]);
    a
}

/// The decoding that follows the checksum: header and graph from `head` (the file up to the
/// weights blob), constants from `blob`, then validation. `total` is the file's length. With
/// `kept`, integer constants stay bit-packed there (see [`Bundle::read_file_bit_packed`]).
fn decode_sections(
    head: &[u8],
    p: &Preamble,
    total: u64,
    blob: &mut impl read::Blob,
    kept: Option<&mut BitPackedWeights>,
) -> Result<(Bundle, BundleStats)> {
    let header_start = PREAMBLE_LEN;
    let graph_start = header_start + p.header_len;
    let graph_end = graph_start + p.graph_len;
    let wire_header = take_exact(&head[header_start..graph_start], "header")?;
    let wire_graph = take_exact(&head[graph_start..graph_end], "graph")?;
    let split = const_bytes(&wire_graph);
    if head[graph_end..].iter().any(|&b| b != 0) {
        return Err(Error::BadBundle(
            "non-zero padding before the weights".into(),
        ));
    }
    let header = Header::from_wire(wire_header)?;
    let graph = convert::graph_from_wire(wire_graph, blob, kept)?;
    graph.validate()?;
    header.validate(&graph)?;
    let bundle = Bundle { header, graph };
    let stats = bundle.stats(
        total,
        p.header_len,
        p.graph_len,
        head.len() - graph_end,
        p.weights_len,
        split,
    );
    Ok((bundle, stats))
}

fn check_crc(stored: u32, computed: u32) -> Result<()> {
    if stored != computed {
        return Err(Error::ChecksumMismatch { stored, computed });
    }
    Ok(())
}

/// Checks magic, version and that the declared sections fill a file of `len` bytes exactly;
/// `head` is the file's first [`PREAMBLE_LEN`] bytes (all of it when shorter).
fn read_preamble(head: &[u8], len: u64) -> Result<Preamble> {
    let magic_len = head.len().min(MAGIC.len());
    if head[..magic_len] != MAGIC[..magic_len] {
        return Err(Error::BadMagic);
    }
    if len < (PREAMBLE_LEN + CHECKSUM_LEN) as u64 {
        return Err(Error::Truncated(format!(
            "{len} bytes, smaller than the {}-byte preamble and checksum",
            PREAMBLE_LEN + CHECKSUM_LEN
        )));
    }
    // `len` covers the preamble, so `head` holds all of it.
    let version = u32::from_le_bytes(le_array(&head[8..12]));
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let header_len = u32::from_le_bytes(le_array(&head[12..16]));
    let graph_len = u32::from_le_bytes(le_array(&head[16..20]));
    let reserved = u32::from_le_bytes(le_array(&head[20..24]));
    let weights_len = u64::from_le_bytes(le_array(&head[24..32]));
    if reserved != 0 {
        return Err(Error::BadBundle(format!(
            "reserved preamble field is {reserved:#x}, not 0"
        )));
    }
    let too_large = |what: &str, found: u64, limit: u64| Error::TooLarge {
        what: what.into(),
        found,
        limit,
    };
    if header_len > limits::MAX_HEADER_BYTES {
        return Err(too_large(
            "header section",
            header_len.into(),
            limits::MAX_HEADER_BYTES.into(),
        ));
    }
    if graph_len > limits::MAX_GRAPH_BYTES {
        return Err(too_large(
            "graph section",
            graph_len.into(),
            limits::MAX_GRAPH_BYTES.into(),
        ));
    }
    if weights_len > limits::MAX_FILE_BYTES {
        return Err(too_large(
            "weights section",
            weights_len,
            limits::MAX_FILE_BYTES,
        ));
    }
    // All terms are capped above, so this u64 sum cannot overflow.
    let weights_start = (PREAMBLE_LEN as u64 + u64::from(header_len) + u64::from(graph_len))
        .next_multiple_of(WEIGHT_ALIGN as u64);
    let expected = weights_start + weights_len + CHECKSUM_LEN as u64;
    let actual = len;
    if actual < expected {
        return Err(Error::Truncated(format!(
            "{actual} bytes, the preamble declares {expected}"
        )));
    }
    if actual > expected {
        return Err(Error::BadBundle(format!(
            "{} trailing bytes after the checksum",
            actual - expected
        )));
    }
    // The section lengths are capped at a few MiB above, so they fit usize.
    Ok(Preamble {
        header_len: header_len as usize,
        graph_len: graph_len as usize,
        weights_len,
    })
}

/// Decodes one postcard section, which must be consumed exactly.
fn take_exact<T: serde::de::DeserializeOwned>(section: &[u8], what: &str) -> Result<T> {
    let (value, rest) = postcard::take_from_bytes::<T>(section)
        .map_err(|e| Error::BadBundle(format!("{what} section: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::BadBundle(format!(
            "{} unread bytes at the end of the {what} section",
            rest.len()
        )));
    }
    Ok(value)
}
