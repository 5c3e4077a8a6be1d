//! Quantized weights kept in a bundle's bit-packed form after reading, until the executor
//! packs the layers that read them. Unpacked, every value takes a byte: reading a 4-bit model's
//! layers all unpacked would hold twice their packed size at once, where this holds one layer.

use crate::ValueId;
use crate::bitpack;
use crate::quant::IntData;

/// One integer constant as the bundle stores it.
#[derive(Clone, Debug, PartialEq)]
struct Stored {
    id: ValueId,
    bits: u8,
    count: usize,
    bytes: Vec<u8>,
}

/// The integer constants of a graph that are still bit-packed, by value (see
/// `Bundle::read_file_bit_packed`); the graph names them
/// [`crate::Source::PackedInt`]. Their values were checked when read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BitPackedWeights {
    /// Sorted by value id.
    stored: Vec<Stored>,
}

impl BitPackedWeights {
    /// Adds value `id`'s `count` values of `bits` bits; ids come in increasing order, as the
    /// decoder reads the values.
    pub(crate) fn push(&mut self, id: ValueId, bits: u8, count: usize, bytes: Vec<u8>) {
        debug_assert!(self.stored.last().is_none_or(|s| s.id < id));
        self.stored.push(Stored {
            id,
            bits,
            count,
            bytes,
        });
    }

    fn find(&self, id: ValueId) -> Option<usize> {
        self.stored.binary_search_by_key(&id, |s| s.id).ok()
    }

    /// Whether value `id` is held here.
    pub fn contains(&self, id: ValueId) -> bool {
        self.find(id).is_some()
    }

    /// The values of `id` unpacked, one byte each; `None` if it is not held here.
    pub fn unpack(&self, id: ValueId) -> Option<IntData> {
        let s = &self.stored[self.find(id)?];
        Some(IntData {
            bits: s.bits,
            data: bitpack::unpack(&s.bytes, s.count, s.bits),
        })
    }

    /// Frees value `id`'s bytes.
    pub fn remove(&mut self, id: ValueId) {
        if let Some(k) = self.find(id) {
            self.stored.remove(k);
        }
    }

    /// Bytes of bit-packed values held.
    pub fn bytes(&self) -> usize {
        self.stored.iter().map(|s| s.bytes.len()).sum()
    }
}
