//! Tier selection: names round-trip, forcing works, unsupported tiers are refused.

use qvit_kernels::inventory::{INVENTORY, Op};
use qvit_kernels::{KernelSet, Tier};

#[test]
fn tier_names_round_trip() {
    for t in Tier::ALL {
        assert_eq!(t.name().parse::<Tier>().unwrap(), t);
        assert_eq!(t.to_string(), t.name());
    }
    assert!("sse9".parse::<Tier>().is_err());
}

#[test]
fn with_tier_honours_support() {
    for t in Tier::ALL {
        match KernelSet::with_tier(t) {
            Ok(ks) => {
                assert!(t.is_supported());
                assert_eq!(ks.tier(), t);
                assert_eq!(
                    ks.w8a8_kernel().tier,
                    t,
                    "tier {t} should use its own W8A8 kernel"
                );
            }
            Err(_) => {
                assert!(!t.is_supported());
                println!("SKIPPED tier {t}: not supported here");
            }
        }
    }
    assert_eq!(
        KernelSet::with_tier(Tier::Reference).unwrap().tier(),
        Tier::Reference
    );
}

#[test]
fn best_is_the_fastest_supported_tier() {
    let best = KernelSet::best().tier();
    assert!(best.is_supported());
    assert_eq!(Some(&best), Tier::supported().iter().max());
    println!("best tier here: {best}");
}

#[test]
fn every_supported_tier_has_a_w8a8_kernel() {
    for t in Tier::supported() {
        assert!(
            INVENTORY
                .iter()
                .any(|d| d.op == Op::GemmW8A8 && d.tier == t),
            "tier {t} has no W8A8 kernel"
        );
    }
    let mut names: Vec<_> = INVENTORY.iter().map(|d| d.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), INVENTORY.len(), "kernel names must be unique");
}

/// Child half of `force_tier_env_is_honoured`, run only by it (in a fresh process, since the
/// environment is process-wide): prints what `from_env` and `detect` chose.
#[test]
#[ignore = "child process of force_tier_env_is_honoured"]
fn child_print_env_tier() {
    assert!(
        std::env::var_os("QVIT_KERNELS_TEST_CHILD").is_some(),
        "run by force_tier_env_is_honoured, not on its own"
    );
    match KernelSet::from_env() {
        Ok(ks) => println!("FROM_ENV={}", ks.tier()),
        Err(e) => println!("FROM_ENV_ERR={e}"),
    }
    println!("DETECT={}", KernelSet::detect().tier());
}

/// `QVIT_FORCE_TIER` is read in a fresh process, so the parent re-runs this test binary with the
/// variable set: directly, or through `QVIT_TEST_RUNNER` (e.g. `qemu-aarch64 -L …`, which
/// `scripts/test.sh` sets for aarch64 under qemu-user, where the guest cannot exec itself).
#[test]
fn force_tier_env_is_honoured() {
    let run = |value: &str| -> String {
        let exe = std::env::current_exe().unwrap();
        let runner = std::env::var("QVIT_TEST_RUNNER").unwrap_or_default();
        let mut words = runner.split_whitespace();
        let mut cmd = match words.next() {
            Some(prog) => {
                let mut c = std::process::Command::new(prog);
                c.args(words).arg(&exe);
                c
            }
            None => std::process::Command::new(&exe),
        };
        let out = cmd
            .args([
                "--exact",
                "child_print_env_tier",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("QVIT_KERNELS_TEST_CHILD", "1")
            .env(qvit_kernels::FORCE_TIER_ENV, value)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {exe:?} (under qemu-user set QVIT_TEST_RUNNER): {e}")
            });
        assert!(
            out.status.success(),
            "child failed (under qemu-user set QVIT_TEST_RUNNER): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let best = KernelSet::best().tier();
    let forced = run("reference");
    assert!(
        forced.contains("FROM_ENV=reference") && forced.contains("DETECT=reference"),
        "{forced}"
    );
    let unknown = run("sse9");
    assert!(
        unknown.contains("FROM_ENV_ERR=") && unknown.contains(&format!("DETECT={best}")),
        "{unknown}"
    );
    let foreign = if cfg!(target_arch = "x86_64") {
        "i8mm"
    } else {
        "avx2"
    };
    let unsupported = run(foreign);
    assert!(
        unsupported.contains("FROM_ENV_ERR=") && unsupported.contains(&format!("DETECT={best}")),
        "{unsupported}"
    );
    let empty = run("");
    assert!(empty.contains(&format!("FROM_ENV={best}")), "{empty}");
}

#[test]
fn inventory_table_lists_every_kernel() {
    let table = qvit_kernels::inventory::markdown_table();
    println!("{table}");
    for d in INVENTORY {
        assert!(table.contains(d.name), "{} missing from the table", d.name);
        assert!(
            d.mr * d.nr <= qvit_kernels::inventory::MAX_TILE,
            "{} tile exceeds MAX_TILE",
            d.name
        );
    }
}

/// Runs every op of `ks` once on small but kernel-sized data (full panels, K above every block
/// size, so tiers' fast paths are taken).
fn run_every_op(ks: &KernelSet) {
    let (m, n, k) = (17, 40, 70);
    let a: Vec<i8> = (0..m * k).map(|i| (i * 37 % 255) as i8).collect();
    let w: Vec<i8> = (0..n * k).map(|i| ((i * 11 % 15) as i8) - 7).collect();
    let nib = qvit_kernels::nibble::pack_nibbles(&w, k).unwrap();
    let mut acc = vec![0i32; m * n];
    let pw = ks.pack_w8a8(&w, n, k).unwrap();
    ks.gemm_w8a8_i32(&a, m, 3, &pw, &mut acc).unwrap();
    let pw4 = ks.pack_w4a8(&nib, n, k).unwrap();
    ks.gemm_w8a8_i32(&a, m, -3, &pw4, &mut acc).unwrap();
    let a4: Vec<u8> = a.iter().map(|&v| v as u8 & 15).collect();
    let pw44 = ks.pack_w4a4(&nib, n, k).unwrap();
    ks.gemm_w4a4_i32(&a4, m, 8, &pw44, &mut acc).unwrap();
    let (scales, bias) = (vec![0.01f32; n], vec![0.5f32; n]);
    let mut y = vec![0f32; m * n];
    ks.dequantize_rows(&acc, n, &scales, &bias, &mut y).unwrap();
    ks.gemm_w8a8_f32(&a, m, 1, 0.1, &pw, &scales, Some(&bias), &mut y)
        .unwrap();
    ks.softmax_f32(&mut y, n).unwrap();
    let (gamma, beta) = (vec![1.0f32; n], vec![0.0f32; n]);
    let mut z = vec![0f32; m * n];
    ks.layer_norm_f32(&y, &gamma, &beta, 1e-5, &mut z).unwrap();
    ks.gelu_erf_f32(&mut z);
    ks.gelu_tanh_f32(&mut z);
    let mut q = vec![0i8; m * n];
    ks.levels_i8(&z, 7.0, 0, (-127, 127), &mut q).unwrap();
    let levels: Vec<u8> = (0..m * k).map(|i| (i % 16) as u8).collect();
    let lut: Vec<i32> = (0..16).map(|i| 1 << (15 - i)).collect();
    let mut out = vec![0i32; m * n];
    ks.matmul_lut_i32(&levels, m, k, &lut, &w, n, &mut out)
        .unwrap();
    let (mut hi, mut lo) = (vec![0i8; m * n], vec![0i8; m * n]);
    ks.log2_split_i8(&y, 1.0, 16, 255, &mut hi, &mut lo)
        .unwrap();
}

/// A forced tier runs no code of another tier: every op of a set is run and the tier-specific
/// kernel entries on this thread are counted. Only the tier itself and what it extends may
/// appear, and a non-reference tier must run code of its own.
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "tier entries are counted only in builds with debug assertions"
)]
fn forced_tier_runs_no_other_tiers_code() {
    for t in Tier::ALL {
        let Ok(ks) = KernelSet::with_tier(t) else {
            println!("SKIPPED tier {t}: not supported here");
            continue;
        };
        qvit_kernels::take_tier_hits();
        run_every_op(&ks);
        let hits = qvit_kernels::take_tier_hits().expect("counted with debug assertions");
        for &(other, n) in &hits {
            assert!(
                t.includes(other),
                "tier {t} ran {n} entries of tier {other}"
            );
        }
        if t != Tier::Reference {
            assert!(
                hits.iter().any(|&(h, _)| h == t),
                "tier {t} ran none of its own code: {hits:?}"
            );
        }
        println!("tier {t}: {hits:?}");
    }
}
