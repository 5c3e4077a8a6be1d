//! Which CPU architecture a runner binary is built for (from its ELF header) and which one a box
//! reports (`uname -m`), so a runner is never installed on a box that cannot execute it.

use anyhow::{Context, Result, bail};
use std::fmt;
use std::io::Read;
use std::path::Path;

/// A CPU architecture as far as running qvit-run is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// x86-64 (ELF machine 62).
    X86_64,
    /// 64-bit ARM (ELF machine 183).
    Aarch64,
    /// 32-bit ARM (ELF machine 40): Raspberry Pi OS 32-bit, armv6l/armv7l.
    Arm,
    /// Any other ELF machine number.
    Other(u16),
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arch::X86_64 => f.write_str("x86_64"),
            Arch::Aarch64 => f.write_str("aarch64"),
            Arch::Arm => f.write_str("arm (32-bit)"),
            Arch::Other(m) => write!(f, "ELF machine {m}"),
        }
    }
}

impl Arch {
    /// The Rust target to build qvit-run with for this architecture (glibc Linux).
    pub fn rust_target(self) -> Option<&'static str> {
        match self {
            Arch::X86_64 => Some("x86_64-unknown-linux-gnu"),
            Arch::Aarch64 => Some("aarch64-unknown-linux-gnu"),
            Arch::Arm => Some("armv7-unknown-linux-gnueabihf"),
            Arch::Other(_) => None,
        }
    }
}

/// The architecture in an ELF header (`e_machine`, read in the header's own byte order).
pub fn elf_arch(header: &[u8]) -> Result<Arch> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        bail!("not an ELF executable");
    }
    let bytes = [header[18], header[19]];
    let machine = match header[5] {
        1 => u16::from_le_bytes(bytes),
        2 => u16::from_be_bytes(bytes),
        other => bail!("ELF header has an unknown byte order ({other})"),
    };
    Ok(match machine {
        62 => Arch::X86_64,
        183 => Arch::Aarch64,
        40 => Arch::Arm,
        m => Arch::Other(m),
    })
}

/// The architecture of the ELF file at `path`.
pub fn file_arch(path: &Path) -> Result<Arch> {
    let mut header = Vec::with_capacity(64);
    std::fs::File::open(path)
        .and_then(|f| f.take(64).read_to_end(&mut header))
        .with_context(|| format!("reading {}", path.display()))?;
    elf_arch(&header).with_context(|| format!("{} is not a runnable qvit-run", path.display()))
}

/// The architecture named by `uname -m`, or `None` for one qvit has no runner for.
pub fn uname_arch(machine: &str) -> Option<Arch> {
    match machine.trim() {
        "x86_64" | "amd64" => Some(Arch::X86_64),
        "aarch64" | "arm64" | "aarch64_be" => Some(Arch::Aarch64),
        m if m.starts_with("armv") || m == "arm" => Some(Arch::Arm),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, order: u8, machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF".to_vec();
        h.extend([class, order, 1, 0]);
        h.resize(18, 0);
        h.extend(if order == 2 {
            machine.to_be_bytes()
        } else {
            machine.to_le_bytes()
        });
        h.resize(64, 0);
        h
    }

    #[test]
    fn reads_machine_in_either_byte_order() {
        assert_eq!(elf_arch(&header(2, 1, 62)).unwrap(), Arch::X86_64);
        assert_eq!(elf_arch(&header(2, 1, 183)).unwrap(), Arch::Aarch64);
        assert_eq!(elf_arch(&header(1, 1, 40)).unwrap(), Arch::Arm);
        assert_eq!(elf_arch(&header(2, 2, 183)).unwrap(), Arch::Aarch64);
        assert_eq!(elf_arch(&header(2, 1, 243)).unwrap(), Arch::Other(243));
    }

    #[test]
    fn refuses_non_elf_and_short_files() {
        assert!(elf_arch(b"#!/bin/sh\necho qvit-run\n").is_err());
        assert!(elf_arch(&header(2, 1, 62)[..19]).is_err());
        assert!(elf_arch(&header(2, 7, 62)).is_err());
    }

    /// The test binary itself is an ELF file for the machine it runs on.
    #[test]
    fn own_executable_matches_this_machine() {
        let me = std::env::current_exe().unwrap();
        let want = uname_arch(std::env::consts::ARCH).unwrap();
        assert_eq!(file_arch(&me).unwrap(), want);
    }

    #[test]
    fn uname_names() {
        assert_eq!(uname_arch("aarch64\n"), Some(Arch::Aarch64));
        assert_eq!(uname_arch("arm64"), Some(Arch::Aarch64));
        assert_eq!(uname_arch("armv7l"), Some(Arch::Arm));
        assert_eq!(uname_arch("armv6l"), Some(Arch::Arm));
        assert_eq!(uname_arch("x86_64"), Some(Arch::X86_64));
        assert_eq!(uname_arch("riscv64"), None);
    }
}
