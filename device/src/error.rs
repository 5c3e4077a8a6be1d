//! Typed errors of the device runtime. Bundle input never panics: every problem is one of these.

use thiserror::Error;

/// Result alias of the device crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when loading or running a model.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The graph is inconsistent (bad shapes, bad references, wrong input counts).
    #[error("invalid graph: {}{reason}", node_prefix(*node, name))]
    InvalidGraph {
        /// Index of the offending node (or `usize::MAX` for graph-level problems).
        node: usize,
        /// Node name from the source model.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Caller passed tensors that do not fit the graph.
    #[error("bad input: {0}")]
    BadInput(String),
    /// The bundle file is malformed.
    #[error("bad bundle: {0}")]
    BadBundle(String),
    /// I/O failure, with the path or purpose.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with the bundle magic bytes: not a qvit bundle.
    #[error("not a qvit bundle (bad magic bytes)")]
    BadMagic,
    /// The bundle was written in a format version this runtime cannot read.
    #[error("unsupported bundle format version {found} (this runtime reads version {supported})")]
    UnsupportedVersion {
        /// Version found in the file.
        found: u32,
        /// Version this runtime reads.
        supported: u32,
    },
    /// The file ends before a section it declares.
    #[error("truncated bundle: {0}")]
    Truncated(String),
    /// The stored checksum does not match the contents: the file is damaged.
    #[error("bundle checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// Checksum written in the file.
        stored: u32,
        /// Checksum of the bytes actually read.
        computed: u32,
    },
    /// A size, count or length exceeds what this runtime accepts.
    #[error("too large: {what} is {found}, limit {limit}")]
    TooLarge {
        /// What was measured.
        what: String,
        /// Its value.
        found: u64,
        /// The accepted maximum.
        limit: u64,
    },
    /// An image could not be read or decoded.
    #[error("image {path}: {reason}")]
    Image {
        /// File the image came from (or a description of the source).
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A NumPy `.npy` file is malformed or uses an unsupported dtype or layout.
    #[error("npy: {0}")]
    Npy(String),
    /// An output path is one of the command's inputs; nothing was done.
    #[error(
        "refusing to write {output}: it is the input {input} of this command; choose another output path"
    )]
    OutputIsInput {
        /// The output path as given.
        output: String,
        /// The input path it coincides with, as given.
        input: String,
    },
    /// A tensor holds NaN or infinite values where finite ones are required.
    #[error(
        "{what}: {count} of its {len} values are not finite (the first, {first}, at flat index {index})"
    )]
    NonFinite {
        /// Where the tensor came from.
        what: String,
        /// How many values are NaN or ±inf.
        count: usize,
        /// Total number of values.
        len: usize,
        /// Flat index of the first one.
        index: usize,
        /// The first one (NaN, inf or -inf).
        first: f32,
    },
}

/// `node N (name): ` for a node's problem; nothing for a graph-level one (`usize::MAX`), whose
/// placeholder index means nothing to a reader.
fn node_prefix(node: usize, name: &str) -> String {
    match (node, name) {
        (usize::MAX, "") => String::new(),
        (usize::MAX, name) => format!("{name}: "),
        (node, "") => format!("node {node}: "),
        (node, name) => format!("node {node} ({name}): "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_level_errors_show_no_placeholder_index() {
        let e = |node: usize, name: &str| Error::InvalidGraph {
            node,
            name: name.into(),
            reason: "bad".into(),
        };
        assert_eq!(e(usize::MAX, "").to_string(), "invalid graph: bad");
        assert_eq!(e(3, "fc1").to_string(), "invalid graph: node 3 (fc1): bad");
        assert_eq!(e(3, "").to_string(), "invalid graph: node 3: bad");
        assert!(
            !e(usize::MAX, "x")
                .to_string()
                .contains(&usize::MAX.to_string())
        );
    }
}
