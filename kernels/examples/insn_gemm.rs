//! Runs one GEMM exactly once after packing, for dynamic instruction counting under qemu with
//! the plugin in `scripts/qemu-insn/` (driven by `scripts/qemu-insn/count.sh`).
//!
//! `insn_gemm <tier> <w8a8|w4a8|w4a4> <M> <K> <N> [--no-gemm]`
//!
//! `--no-gemm` does everything except the GEMM call (inputs, packing, output checksum), so the
//! difference of two counts is the GEMM's own instructions. Prints one short line.

use qvit_kernels::{KernelSet, Tier};
use std::process::ExitCode;

/// Deterministic pseudo-random bytes (inputs only need to be non-trivial, not random).
fn bytes(len: usize, seed: u32) -> impl Iterator<Item = u32> {
    (0..len as u32).map(move |i| i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13)
}

fn run(args: &[String]) -> Result<String, String> {
    let usage = "usage: insn_gemm <tier> <w8a8|w4a8|w4a4> <M> <K> <N> [--no-gemm]";
    if args.len() < 5 || args.len() > 6 {
        return Err(usage.into());
    }
    let tier: Tier = args[0].parse().map_err(|e| format!("{e}"))?;
    let dim = |s: &String| {
        s.parse::<usize>()
            .map_err(|e| format!("bad size '{s}': {e}"))
    };
    let (m, k, n) = (dim(&args[2])?, dim(&args[3])?, dim(&args[4])?);
    let do_gemm = match args.get(5).map(String::as_str) {
        None => true,
        Some("--no-gemm") => false,
        Some(other) => return Err(format!("unknown flag '{other}'; {usage}")),
    };
    let set = KernelSet::with_tier(tier).map_err(|e| format!("{e}"))?;
    let mut out = vec![0i32; m * n];
    let kernel = match args[1].as_str() {
        "w8a8" => {
            let a: Vec<i8> = bytes(m * k, 1).map(|v| v as u8 as i8).collect();
            // Symmetric weights stay in [-127, 127] (the W8A8 contract).
            let w: Vec<i8> = bytes(n * k, 2)
                .map(|v| ((v % 255) as i32 - 127) as i8)
                .collect();
            let packed = set.pack_w8a8(&w, n, k).map_err(|e| format!("{e}"))?;
            if do_gemm {
                set.gemm_w8a8_i32(&a, m, 3, &packed, &mut out)
                    .map_err(|e| format!("{e}"))?;
            }
            set.w8a8_kernel().name
        }
        "w4a8" => {
            // Int4 weights as nibbles, held so in memory and expanded by the driver per call.
            let a: Vec<i8> = bytes(m * k, 1).map(|v| v as u8 as i8).collect();
            let w: Vec<u8> = bytes(n * k.div_ceil(2), 4).map(|v| v as u8).collect();
            let packed = set.pack_w4a8(&w, n, k).map_err(|e| format!("{e}"))?;
            if do_gemm {
                set.gemm_w8a8_i32(&a, m, 3, &packed, &mut out)
                    .map_err(|e| format!("{e}"))?;
            }
            set.w8a8_kernel().name
        }
        "w4a4" => {
            let a: Vec<u8> = bytes(m * k, 3).map(|v| (v & 15) as u8).collect();
            let w: Vec<u8> = bytes(n * k.div_ceil(2), 4).map(|v| v as u8).collect();
            let packed = set.pack_w4a4(&w, n, k).map_err(|e| format!("{e}"))?;
            if do_gemm {
                set.gemm_w4a4_i32(&a, m, 8, &packed, &mut out)
                    .map_err(|e| format!("{e}"))?;
            }
            set.w4a4_kernel().name
        }
        other => return Err(format!("unknown op '{other}'; {usage}")),
    };
    // Same O(M·N) work in both modes, so it cancels in the difference.
    let checksum = out.iter().fold(0u32, |h, &v| h.rotate_left(5) ^ v as u32);
    Ok(format!(
        "{kernel} m={m} k={k} n={n} gemm={do_gemm} checksum={checksum:08x}"
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
