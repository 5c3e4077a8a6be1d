//! A plain owned f32 tensor: the currency between the runtime and its callers.

use crate::{Error, Result};

/// A row-major f32 tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` elements.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor from a shape and its data; fails when the lengths disagree.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n = checked_len(&shape)?;
        if n != data.len() {
            return Err(Error::BadInput(format!(
                "shape {shape:?} needs {n} elements, got {}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// Fails with [`Error::NonFinite`] (naming `what`) when any value is NaN or infinite.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        let mut bad = self.data.iter().enumerate().filter(|(_, x)| !x.is_finite());
        let Some((index, &first)) = bad.next() else {
            return Ok(());
        };
        Err(Error::NonFinite {
            what: what.into(),
            count: 1 + bad.count(),
            len: self.data.len(),
            index,
            first,
        })
    }

    /// A zero-filled tensor.
    pub fn zeros(shape: Vec<usize>) -> Result<Self> {
        let n = checked_len(&shape)?;
        Ok(Tensor {
            shape,
            data: vec![0.0; n],
        })
    }
}

/// Number of elements of a shape, or an error when it overflows.
pub fn checked_len(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::BadInput(format!("shape {shape:?} overflows")))
}
