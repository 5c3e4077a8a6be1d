//! Fuzzes the bundle decoder: arbitrary bytes must give `Ok` or a typed error, never a panic,
//! an abort or an out-of-memory. Each input is tried twice: as is (mostly stopped by the
//! preamble and checksum), and with the preamble and CRC repaired so the postcard decoder and
//! the validators see the mutated body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qvit_device::bundle::{Bundle, FORMAT_VERSION, MAGIC, PREAMBLE_LEN, WEIGHT_ALIGN};

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = Bundle::decode(data) {
        assert!(bundle.graph.validate().is_ok());
    }
    if let Ok(bundle) = Bundle::decode(&repaired(data)) {
        // Whatever decodes is valid and encodes again.
        assert!(bundle.graph.validate().is_ok());
        assert!(bundle.encode().is_ok());
    }
});

/// Treats the input as `header_len: u16, graph_len: u16, body…` and wraps the body in a
/// well-formed preamble, padding and checksum.
fn repaired(data: &[u8]) -> Vec<u8> {
    let [h0, h1, g0, g1, body @ ..] = data else {
        return Vec::new();
    };
    let body_len = body.len();
    let header_len = usize::from(u16::from_le_bytes([*h0, *h1])).min(body_len);
    let graph_len = usize::from(u16::from_le_bytes([*g0, *g1])).min(body_len - header_len);
    let (sections, weights) = body.split_at(header_len + graph_len);
    let mut out = MAGIC.to_vec();
    for x in [FORMAT_VERSION, header_len as u32, graph_len as u32, 0] {
        out.extend(x.to_le_bytes());
    }
    out.extend((weights.len() as u64).to_le_bytes());
    debug_assert_eq!(out.len(), PREAMBLE_LEN);
    out.extend(sections);
    out.resize(out.len().next_multiple_of(WEIGHT_ALIGN), 0);
    out.extend(weights);
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_le_bytes());
    out
}
