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

/// Child half of `force_tier_env_is_honoured`: prints what `from_env` and `detect` chose.
#[test]
fn child_print_env_tier() {
    if std::env::var_os("QVIT_KERNELS_TEST_CHILD").is_none() {
        return; // Only meaningful when spawned by the parent test below.
    }
    match KernelSet::from_env() {
        Ok(ks) => println!("FROM_ENV={}", ks.tier()),
        Err(e) => println!("FROM_ENV_ERR={e}"),
    }
    println!("DETECT={}", KernelSet::detect().tier());
}

/// `QVIT_FORCE_TIER` is read in a fresh process (the environment is process-wide), so the
/// parent re-runs this test binary with the variable set. Native only: under qemu-user the
/// child exec would need binfmt_misc, so on aarch64 this prints SKIPPED.
#[test]
fn force_tier_env_is_honoured() {
    if cfg!(not(target_arch = "x86_64")) {
        println!("SKIPPED force_tier_env_is_honoured: needs to spawn itself natively");
        return;
    }
    let run = |value: &str| -> String {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_print_env_tier",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("QVIT_KERNELS_TEST_CHILD", "1")
            .env(qvit_kernels::FORCE_TIER_ENV, value)
            .output()
            .unwrap();
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
    let unsupported = run("i8mm");
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
