//! Typed kernel errors: public entry points check their inputs and report misuse here.

use thiserror::Error;

/// Result alias of the kernels crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Misuse of a kernel entry point.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Slice lengths do not fit the stated dimensions.
    #[error("{op}: {what}")]
    Shape {
        /// The kernel that was called.
        op: &'static str,
        /// What does not fit.
        what: String,
    },
    /// A forced tier is not available on this CPU or unknown.
    #[error("tier {0:?} is unknown or not supported by this CPU")]
    TierUnavailable(String),
}
