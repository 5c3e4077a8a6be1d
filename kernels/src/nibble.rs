//! The int4 storage format and its one pair of helpers: nibble packing appears nowhere else.
//!
//! A row of `k` int4 values (two's complement, `[−8, 7]`) takes `⌈k/2⌉` bytes; value `2i` sits in
//! the **low** nibble of byte `i`, value `2i+1` in the **high** nibble. Rows never share a byte:
//! an odd `k` leaves the last high nibble 0. A weight matrix `[n, k]` is `n` such rows back to
//! back (`n·⌈k/2⌉` bytes). Real value: `q · scale[n]` (symmetric per output channel).

use crate::{Error, Result};

/// Bytes of one packed row of `k` int4 values.
pub fn row_bytes(k: usize) -> usize {
    k.div_ceil(2)
}

/// Packs `values` (each in `[−8, 7]`) as rows of `k` into nibbles. Errors on a value out of
/// range or a length that is not a multiple of `k`.
pub fn pack_nibbles(values: &[i8], k: usize) -> Result<Vec<u8>> {
    let op = "pack_nibbles";
    if k == 0 || !values.len().is_multiple_of(k) {
        return Err(Error::Shape {
            op,
            what: format!("{} values are not rows of {k}", values.len()),
        });
    }
    if let Some(i) = values.iter().position(|v| !(-8..=7).contains(v)) {
        return Err(Error::Shape {
            op,
            what: format!("value {i} = {} is outside [-8, 7]", values[i]),
        });
    }
    let mut out = Vec::with_capacity(values.len() / k * row_bytes(k));
    for row in values.chunks_exact(k) {
        for pair in row.chunks(2) {
            let lo = pair[0] as u8 & 0x0F;
            let hi = pair.get(1).map_or(0, |&v| v as u8 & 0x0F);
            out.push(lo | hi << 4);
        }
    }
    Ok(out)
}

/// Unpacks `n` rows of `k` int4 values from `bytes` (`n·⌈k/2⌉` bytes) into i8, sign-extending
/// each nibble. Errors on a length mismatch.
pub fn unpack_nibbles(bytes: &[u8], n: usize, k: usize) -> Result<Vec<i8>> {
    if n.checked_mul(row_bytes(k)) != Some(bytes.len()) {
        return Err(Error::Shape {
            op: "unpack_nibbles",
            what: format!(
                "{} bytes, expected {n} rows of {} bytes",
                bytes.len(),
                row_bytes(k)
            ),
        });
    }
    let mut out = Vec::with_capacity(n * k);
    for row in bytes.chunks_exact(row_bytes(k).max(1)).take(n) {
        for i in 0..k {
            let b = row[i / 2];
            let nib = if i % 2 == 0 { b & 0x0F } else { b >> 4 };
            // Shift the nibble's sign bit into the i8's sign bit, then back: sign extension.
            out.push(((nib << 4) as i8) >> 4);
        }
    }
    Ok(out)
}
