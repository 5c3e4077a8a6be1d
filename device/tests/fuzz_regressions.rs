//! Every input that ever made a fuzz target crash, replayed through the same check the target
//! runs (`fuzz/harness.rs`), on stable and in every `cargo test`. The inputs live in
//! `fuzz/regressions/<target>/` (committed); findings dropped in `../shared/fuzz-findings/`
//! as `<target>-<name>.bin` are replayed too when that directory exists.

#[path = "../../fuzz/harness.rs"]
mod harness;

mod common;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// (target, file) for every committed regression input and every shared finding.
fn inputs() -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    for (name, _) in harness::TARGETS {
        let dir = root().join("fuzz/regressions").join(name);
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            out.push((name, entry.unwrap().path()));
        }
    }
    let shared = root().join("../shared/fuzz-findings");
    for entry in std::fs::read_dir(&shared).into_iter().flatten() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let target = harness::TARGETS
            .iter()
            .map(|(n, _)| *n)
            .find(|n| file.starts_with(&format!("{n}-")))
            .unwrap_or_else(|| panic!("{file}: name it <target>-<what>.bin"));
        out.push((target, path));
    }
    out.sort();
    out
}

#[test]
fn every_recorded_crash_input_is_handled() {
    let inputs = inputs();
    assert!(
        inputs
            .iter()
            .any(|(t, p)| *t == "bundle_decode" && p.ends_with("zero-dim-overflow.bin")),
        "the committed regression inputs are missing: {inputs:?}"
    );
    for (target, path) in &inputs {
        let data = std::fs::read(path).unwrap();
        let check = harness::TARGETS
            .iter()
            .find(|(n, _)| n == target)
            .unwrap()
            .1;
        eprintln!("{target}: {} ({} bytes)", path.display(), data.len());
        check(&data);
    }
}

/// The zero-dimension finding, decoded directly: a typed error that names the zero dimension,
/// where the loader used to overflow multiplying the other, huge dimensions.
#[test]
fn a_zero_dimension_beside_huge_ones_is_a_typed_error() {
    let data =
        std::fs::read(root().join("fuzz/regressions/bundle_decode/zero-dim-overflow.bin")).unwrap();
    let err = qvit_device::bundle::Bundle::decode(&harness::repaired(&data)).unwrap_err();
    assert!(
        matches!(&err, qvit_device::Error::BadBundle(m) if m.contains("zero dimension")),
        "{err}"
    );
}

/// The seeds the campaign starts from are real bundles: `repaired` undoes `unrepaired`.
#[test]
fn seed_inputs_rebuild_the_bundle_exactly() {
    for bundle in [common::tiny_bundle(), common::image_bundle()] {
        let bytes = bundle.encode().unwrap();
        let seed = harness::unrepaired(&bytes).unwrap();
        assert_eq!(harness::repaired(&seed), bytes);
        harness::bundle_decode(&seed);
        harness::bundle_run(&seed);
    }
}
