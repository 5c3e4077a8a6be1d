//! Format stability: `models/golden/tiny.qvit` was written by the v1 encoder. The encoder must
//! keep producing exactly these bytes and the decoder must keep reading them. A failure here
//! means the wire format changed: bump `FORMAT_VERSION` instead of re-blessing.
//!
//! To (re)create the file deliberately: `QVIT_BLESS=1 cargo test -p qvit-device --test bundle_golden`.

mod common;

use qvit_device::bundle::{Bundle, FORMAT_VERSION, MAGIC};
use std::path::PathBuf;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/golden/tiny.qvit")
}

#[test]
fn encoder_reproduces_the_golden_bytes() {
    let bytes = common::tiny_bundle().encode().unwrap();
    let path = golden_path();
    if std::env::var_os("QVIT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
    }
    let golden = std::fs::read(&path).expect("models/golden/tiny.qvit (create with QVIT_BLESS=1)");
    assert_eq!(bytes, golden, "the v1 encoding of the tiny bundle changed");
}

#[test]
fn decoder_reads_the_golden_file() {
    let (bundle, stats) = Bundle::read_file_with_stats(golden_path()).unwrap();
    assert_eq!(bundle, common::tiny_bundle());
    let golden = std::fs::read(golden_path()).unwrap();
    assert_eq!(golden[..8], MAGIC);
    assert_eq!(
        u32::from_le_bytes(golden[8..12].try_into().unwrap()),
        FORMAT_VERSION
    );
    assert_eq!(stats.total, golden.len() as u64);
    assert_eq!(
        stats.total,
        stats.preamble
            + stats.header
            + stats.graph
            + stats.padding
            + stats.weights
            + stats.checksum
    );
    // 4·8 + 8 + 8·3 + 3 parameters.
    assert_eq!(stats.params, 67);
    assert_eq!(stats.const_tensors, 4);
}
