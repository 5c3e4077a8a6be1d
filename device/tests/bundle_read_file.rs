//! `Bundle::read_file` streams the file instead of reading it whole; it must accept and refuse
//! exactly what `Bundle::decode` does with the same bytes, with the same errors.

mod common;

use common::{fix_crc, qlinear_chain};
use qvit_device::bundle::Bundle;

/// Both readings of `bytes`: equal bundles and stats, or equal error messages.
fn assert_same(dir: &tempfile::TempDir, bytes: &[u8], what: &str) {
    let path = dir.path().join("b.qvit");
    std::fs::write(&path, bytes).unwrap();
    match (
        Bundle::decode_with_stats(bytes),
        Bundle::read_file_with_stats(&path),
    ) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}"),
        (a, b) => panic!("{what}: decode {:?}, read_file {:?}", a.err(), b.err()),
    }
}

#[test]
fn read_file_agrees_with_decode_on_intact_and_damaged_files() {
    let dir = tempfile::tempdir().unwrap();
    let g = qlinear_chain(2, 24, &[(40, 8, 8), (16, 4, 4)]);
    let good = Bundle::new("chain", g).encode().unwrap();
    assert_same(&dir, &good, "intact");
    for len in [0, 5, 8, 20, 35, 36, 100, good.len() / 2, good.len() - 1] {
        assert_same(&dir, &good[..len], &format!("truncated to {len}"));
    }
    let mut longer = good.clone();
    longer.push(0);
    assert_same(&dir, &longer, "one byte too many");
    // Flips everywhere, with the checksum left stale (a mismatch) and recomputed (so the
    // damage reaches the sections and the constants: bad lengths, offsets, levels, NaN).
    for pos in (0..good.len()).step_by(7) {
        for bit in [0, 6] {
            let mut b = good.clone();
            b[pos] ^= 1 << bit;
            assert_same(&dir, &b, &format!("bit {bit} of byte {pos}"));
            fix_crc(&mut b);
            assert_same(&dir, &b, &format!("bit {bit} of byte {pos}, CRC fixed"));
        }
    }
}
