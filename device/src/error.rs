//! Typed errors of the device runtime. Bundle input never panics: every problem is one of these.

use thiserror::Error;

/// Result alias of the device crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when loading or running a model.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The graph is inconsistent (bad shapes, bad references, wrong input counts).
    #[error("invalid graph: node {node} ({name}): {reason}")]
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
}
