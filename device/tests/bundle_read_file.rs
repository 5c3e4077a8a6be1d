//! `Bundle::read_file` streams the file instead of reading it whole; it must accept and refuse
//! exactly what `Bundle::decode` does with the same bytes, with the same errors. So must
//! `Model::load`, which leaves the quantized weights bit-packed until it packs them.

mod common;

use common::{fix_crc, qlinear_chain};
use qvit_device::bundle::Bundle;
use qvit_device::model::Model;
use qvit_device::{Source, Tensor};

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

/// Outputs as bits, or the error: NaN outputs compare equal when their bits do.
fn run_bits(model: &mut Model, x: &Tensor) -> Result<Vec<Vec<u32>>, String> {
    let outputs = model.run(x).map_err(|e| e.to_string())?;
    Ok(outputs
        .iter()
        .map(|t| t.data.iter().map(|v| v.to_bits()).collect())
        .collect())
}

/// `Model::load` (weights left bit-packed until their layer is packed) and a model planned
/// from the decoded bundle: the same graph and the same bits on `x`, or the same error.
fn assert_same_model(dir: &tempfile::TempDir, bytes: &[u8], x: &Tensor, what: &str) {
    let path = dir.path().join("m.qvit");
    std::fs::write(&path, bytes).unwrap();
    match (
        Bundle::decode(bytes).and_then(Model::from_bundle),
        Model::load(&path),
    ) {
        (Ok(mut a), Ok(mut b)) => {
            // A weight no layer reads stays decoded in the first graph; the second never
            // unpacks it and drops its bytes once planned.
            let mut unread = a.graph().clone();
            for v in &mut unread.values {
                if let Source::Int(d) = &v.source {
                    v.source = Source::PackedInt { bits: d.bits };
                }
            }
            assert_eq!(&unread, b.graph(), "{what}");
            assert_eq!(run_bits(&mut a, x), run_bits(&mut b, x), "{what}");
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}"),
        (a, b) => panic!("{what}: decoded {:?}, loaded {:?}", a.err(), b.err()),
    }
}

#[test]
fn a_model_loaded_with_bit_packed_weights_agrees_with_one_planned_from_the_decoded_bundle() {
    let dir = tempfile::tempdir().unwrap();
    // 8-, 4- and 3-bit weights (3 bits straddle byte boundaries); one weight read by two
    // layers, and the one it replaces read by none.
    let layers = [(40, 8, 8), (40, 4, 8), (40, 4, 8), (24, 3, 8), (16, 4, 4)];
    let mut g = qlinear_chain(3, 24, &layers);
    g.nodes[2].inputs[1] = g.nodes[1].inputs[1];
    let x = Tensor::new(
        vec![3, 24],
        common::weights(72, 5).iter().map(|v| 4.0 * v).collect(),
    )
    .unwrap();
    let good = Bundle::new("chain", g).encode().unwrap();
    assert_same_model(&dir, &good, &x, "intact");
    let mut loaded = Model::load(dir.path().join("m.qvit")).unwrap();
    assert!(run_bits(&mut loaded, &x).is_ok());
    for pos in (0..good.len()).step_by(5) {
        for bit in [0, 3, 7] {
            let mut b = good.clone();
            b[pos] ^= 1 << bit;
            fix_crc(&mut b);
            assert_same_model(&dir, &b, &x, &format!("bit {bit} of byte {pos}, CRC fixed"));
        }
    }
}
