//! Facts about the machine: CPU model, peak memory, build commit. Used by `qvit-run info` and
//! `bench` so results in `bench-results/` say where they were measured.

/// Git commit the crate was built from (`git rev-parse --short HEAD`), or `unknown`.
pub const GIT_COMMIT: &str = env!("QVIT_GIT_COMMIT");

/// Human-readable CPU model, e.g. `Intel(R) Xeon(R) …` or `Cortex-A72` or
/// `Cortex-A76 + Cortex-A55` on big.LITTLE; `unknown` when `/proc/cpuinfo` says nothing useful.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| cpu_model_from_cpuinfo(&text))
        .unwrap_or_else(|| "unknown".into())
}

/// CPU features relevant to the kernels, detected at run time (e.g. `["neon", "dotprod"]`).
pub fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)] // Empty on architectures without a probe below.
    let mut features = Vec::new();
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected;
        let probes = [
            ("neon", is_aarch64_feature_detected!("neon")),
            ("dotprod", is_aarch64_feature_detected!("dotprod")),
            ("i8mm", is_aarch64_feature_detected!("i8mm")),
            ("fp16", is_aarch64_feature_detected!("fp16")),
            ("sve", is_aarch64_feature_detected!("sve")),
        ];
        features.extend(probes.into_iter().filter(|p| p.1).map(|p| p.0));
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected;
        let probes = [
            ("avx2", is_x86_feature_detected!("avx2")),
            ("fma", is_x86_feature_detected!("fma")),
            ("avx512f", is_x86_feature_detected!("avx512f")),
            ("avx512vnni", is_x86_feature_detected!("avx512vnni")),
            ("avxvnni", is_x86_feature_detected!("avxvnni")),
        ];
        features.extend(probes.into_iter().filter(|p| p.1).map(|p| p.0));
    }
    features
}

/// The CPU model from the text of `/proc/cpuinfo`: x86's `model name`, or on ARM the core names
/// from `CPU implementer` / `CPU part` (distinct cores joined with ` + `).
pub fn cpu_model_from_cpuinfo(text: &str) -> Option<String> {
    let field = |line: &str, key: &str| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    };
    if let Some(name) = text
        .lines()
        .find_map(|l| field(l, "model name"))
        .filter(|n| !n.is_empty())
    {
        return Some(name);
    }
    let mut implementer = None;
    let mut cores: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(v) = field(line, "CPU implementer") {
            implementer = parse_hex(&v);
        }
        if let Some(v) = field(line, "CPU part")
            && let Some(part) = parse_hex(&v)
        {
            let name = arm_core_name(implementer.unwrap_or(0x41), part)
                .map(str::to_string)
                .unwrap_or_else(|| {
                    format!(
                        "ARM implementer {:#x} part {part:#x}",
                        implementer.unwrap_or(0)
                    )
                });
            if !cores.contains(&name) {
                cores.push(name);
            }
        }
    }
    if cores.is_empty() {
        return text.lines().find_map(|l| field(l, "Hardware"));
    }
    Some(cores.join(" + "))
}

fn parse_hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// Core name from the MIDR implementer and part number (ARM TRMs; Linux `cputype.h`).
pub fn arm_core_name(implementer: u32, part: u32) -> Option<&'static str> {
    Some(match (implementer, part) {
        (0x41, 0xd03) => "Cortex-A53",
        (0x41, 0xd04) => "Cortex-A35",
        (0x41, 0xd05) => "Cortex-A55",
        (0x41, 0xd07) => "Cortex-A57",
        (0x41, 0xd08) => "Cortex-A72",
        (0x41, 0xd09) => "Cortex-A73",
        (0x41, 0xd0a) => "Cortex-A75",
        (0x41, 0xd0b) => "Cortex-A76",
        (0x41, 0xd0c) => "Neoverse-N1",
        (0x41, 0xd0d) => "Cortex-A77",
        (0x41, 0xd0e) => "Cortex-A76AE",
        (0x41, 0xd40) => "Neoverse-V1",
        (0x41, 0xd41) => "Cortex-A78",
        (0x41, 0xd42) => "Cortex-A78AE",
        (0x41, 0xd44) => "Cortex-X1",
        (0x41, 0xd46) => "Cortex-A510",
        (0x41, 0xd47) => "Cortex-A710",
        (0x41, 0xd48) => "Cortex-X2",
        (0x41, 0xd49) => "Neoverse-N2",
        (0x41, 0xd4a) => "Neoverse-E1",
        (0x41, 0xd4b) => "Cortex-A78C",
        (0x41, 0xd4d) => "Cortex-A715",
        (0x41, 0xd4e) => "Cortex-X3",
        (0x41, 0xd4f) => "Neoverse-V2",
        (0x41, 0xd80) => "Cortex-A520",
        (0x41, 0xd81) => "Cortex-A720",
        (0x41, 0xd82) => "Cortex-X4",
        (0x4e, 0x004) => "NVIDIA Carmel",
        _ => return None,
    })
}

/// Peak resident set size of this process in bytes (`VmHWM` in `/proc/self/status`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line["VmHWM:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_model_name() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(
            cpu_model_from_cpuinfo(text).unwrap(),
            "Intel(R) Xeon(R) CPU @ 2.20GHz"
        );
    }

    #[test]
    fn raspberry_pi_4() {
        let core = "processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd08\n\n";
        let text = format!("{core}{core}Hardware\t: BCM2835\nModel\t: Raspberry Pi 4 Model B\n");
        assert_eq!(cpu_model_from_cpuinfo(&text).unwrap(), "Cortex-A72");
    }

    #[test]
    fn big_little_lists_both_cores() {
        let text = "CPU implementer\t: 0x41\nCPU part\t: 0xd05\n\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n";
        assert_eq!(
            cpu_model_from_cpuinfo(text).unwrap(),
            "Cortex-A55 + Cortex-A76"
        );
    }

    #[test]
    fn unknown_part_is_reported_raw() {
        let text = "CPU implementer\t: 0x51\nCPU part\t: 0x802\n";
        assert_eq!(
            cpu_model_from_cpuinfo(text).unwrap(),
            "ARM implementer 0x51 part 0x802"
        );
        assert_eq!(cpu_model_from_cpuinfo("nothing here"), None);
    }

    #[test]
    fn peak_rss_grows_with_a_touched_allocation() {
        let before = peak_rss_bytes().expect("VmHWM on Linux");
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        let after = peak_rss_bytes().unwrap();
        assert!(after >= before && after >= 64 << 20, "{before} -> {after}");
    }
}
