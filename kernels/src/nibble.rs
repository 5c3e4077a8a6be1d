//! The int4 storage formats and their helpers: nibble packing appears nowhere else.
//!
//! A row of `k` int4 values (two's complement, `[−8, 7]`) takes `⌈k/2⌉` bytes; value `2i` sits in
//! the **low** nibble of byte `i`, value `2i+1` in the **high** nibble. Rows never share a byte:
//! an odd `k` leaves the last high nibble 0. A weight matrix `[n, k]` is `n` such rows back to
//! back (`n·⌈k/2⌉` bytes). Real value: `q · scale[n]` (symmetric per output channel).
//!
//! Int4 weights stay nibbles in memory too, in the GEMM's panel layout (`kernels/src/pack.rs`)
//! halved: a weight panel of `kb` blocks of `b` bytes becomes `h = ⌈kb/2⌉·b` bytes whose byte
//! `i` holds panel byte `i` in its low nibble and panel byte `h + i` in its high nibble (0 past
//! the panel's end). Expanding a panel is then two flat passes over the same bytes, low nibbles
//! into the first half and high nibbles into the second, shifts only, which vectorise on every
//! tier with no shuffle; pairing neighbouring blocks instead would interleave the two outputs.

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

/// Bytes of one nibble panel whose int8 form is `kb` blocks of `block` bytes.
pub(crate) fn half_panel(kb: usize, block: usize) -> usize {
    kb.div_ceil(2) * block
}

/// Nibble panels of int8 `panels` (each `panel` bytes, values in [−8, 7], checked by the
/// caller), each `half` = [`half_panel`] bytes.
pub(crate) fn compress_panels(panels: &[i8], panel: usize, half: usize) -> Vec<i8> {
    let mut out = vec![0i8; panels.len() / panel.max(1) * half];
    for (d, p) in out.chunks_exact_mut(half).zip(panels.chunks_exact(panel)) {
        let (lo, hi) = p.split_at(half);
        for (i, d) in d.iter_mut().enumerate() {
            let h = hi.get(i).map_or(0, |&v| v as u8 & 0x0F);
            *d = ((lo[i] as u8 & 0x0F) | h << 4) as i8;
        }
    }
    out
}

/// Expands the nibble panels `src` (each `half` bytes) into `dst`, whole int8 panels of `panel`
/// bytes each, sign-extending every nibble.
pub(crate) fn expand_panels(dst: &mut [i8], src: &[i8], panel: usize, half: usize) {
    for (d, s) in dst.chunks_exact_mut(panel).zip(src.chunks_exact(half)) {
        let (lo, hi) = d.split_at_mut(half);
        // Shifting the low nibble into the sign bit and back (arithmetic) sign-extends it; the
        // high nibble only needs the arithmetic shift down.
        for (d, &s) in lo.iter_mut().zip(s) {
            *d = (s << 4) >> 4;
        }
        for (d, &s) in hi.iter_mut().zip(s) {
            *d = s >> 4;
        }
    }
}
