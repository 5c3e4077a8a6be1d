//! Storage of quantized integer constants: a little-endian bit stream of `bits`-bit two's
//! complement values. Element `i` occupies stream bits `[i·bits, (i+1)·bits)`, and stream bit
//! `j` is bit `j mod 8` of byte `j / 8`. For 8 bits this is plain `i8`; for 4 bits, element
//! `2i` is the low nibble of byte `i` (the kernels' nibble order).

/// Bytes taken by `count` values of `bits` bits.
pub fn packed_len(count: usize, bits: u8) -> usize {
    (count * bits as usize).div_ceil(8)
}

/// [`packed_len`], or `None` when `count · bits` overflows (sizes read from a file).
pub fn checked_packed_len(count: usize, bits: u8) -> Option<usize> {
    Some(count.checked_mul(usize::from(bits))?.div_ceil(8))
}

/// Packs values that fit in `bits` (2..=8) bits.
pub fn pack(values: &[i8], bits: u8) -> Vec<u8> {
    let b = bits as usize;
    let mask = (1u16 << b) - 1;
    let mut out = vec![0u8; packed_len(values.len(), bits)];
    for (i, &v) in values.iter().enumerate() {
        let u = (v as u16) & mask;
        let (byte, shift) = ((i * b) / 8, (i * b) % 8);
        let word = u << shift;
        out[byte] |= word as u8;
        if shift + b > 8 {
            out[byte + 1] |= (word >> 8) as u8;
        }
    }
    out
}

/// Unpacks `count` values of `bits` bits, sign-extending each. `bytes` must hold
/// [`packed_len`] bytes (checked by the caller).
pub fn unpack(bytes: &[u8], count: usize, bits: u8) -> Vec<i8> {
    values(bytes, count, bits).collect()
}

/// The values [`unpack`] returns, one at a time (for checking them without holding them).
pub fn values(bytes: &[u8], count: usize, bits: u8) -> impl Iterator<Item = i8> + '_ {
    let b = bits as usize;
    let mask = (1u16 << b) - 1;
    (0..count).map(move |i| {
        let (byte, shift) = ((i * b) / 8, (i * b) % 8);
        let lo = bytes[byte] as u16;
        let hi = if shift + b > 8 {
            bytes[byte + 1] as u16
        } else {
            0
        };
        let u = ((lo | hi << 8) >> shift) & mask;
        // Sign-extend from `b` bits.
        ((u << (16 - b)) as i16 >> (16 - b)) as i8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_width_and_matches_the_nibble_order() {
        for bits in 2..=8u8 {
            let max = (1i32 << (bits - 1)) - 1;
            let values: Vec<i8> = (0..101)
                .map(|i| ((i * 7) % (2 * max + 1) - max) as i8)
                .collect();
            let packed = pack(&values, bits);
            assert_eq!(packed.len(), packed_len(values.len(), bits));
            assert_eq!(unpack(&packed, values.len(), bits), values, "{bits} bits");
        }
        let nib = qvit_kernels::nibble::pack_nibbles(&[1, -2, 7, -7], 4).unwrap();
        assert_eq!(pack(&[1, -2, 7, -7], 4), nib);
        assert_eq!(pack(&[-1, 5], 8), vec![0xff, 5]);
    }
}
