//! POSIX `cksum` (CRC-32, polynomial 0x04C11DB7, length appended), computed locally and compared
//! with `cksum` on the box so an unchanged runner is not uploaded again. Every POSIX system and
//! busybox has `cksum`; no hash tool beyond it can be assumed on a board.

use anyhow::{Context, Result};
use crc::{CRC_32_CKSUM, Crc};
use std::io::Read;
use std::path::Path;

/// The CRC `cksum` uses: polynomial 0x04C11DB7, MSB first, zero start, complemented.
const CKSUM: Crc<u32> = Crc::<u32>::new(&CRC_32_CKSUM);

/// The `cksum` of a file: (CRC, byte count), as `cksum < FILE` prints them.
pub fn file_cksum(path: &Path) -> Result<(u32, u64)> {
    let mut digest = CKSUM.digest();
    let mut len = 0u64;
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
        len += n as u64;
    }
    // POSIX appends the length after the data, low byte first, in as few bytes as it needs;
    // CRC_32_CKSUM is the plain CRC, so the length goes through the same digest.
    let len_bytes = len.to_le_bytes();
    let used = len_bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    digest.update(&len_bytes[..used]);
    Ok((digest.finalize(), len))
}

/// Parses `cksum` output (`CRC SIZE`), `None` when the box printed nothing usable.
pub fn parse(out: &str) -> Option<(u32, u64)> {
    let mut it = out.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Agrees with the system's cksum on empty, short, and long files (length bytes > 1, and a
    /// length with a zero byte inside: 65536 is 0x01_00_00).
    #[test]
    fn matches_system_cksum() {
        use rand_xoshiro::Xoshiro256PlusPlus;
        use rand_xoshiro::rand_core::{Rng, SeedableRng};
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
        let mut long = vec![0u8; 70_001];
        rng.fill_bytes(&mut long);
        let sizes: [&[u8]; 5] = [b"", b"a", b"123456789", &long[..65_536], &long];
        for (i, data) in sizes.iter().enumerate() {
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, data).unwrap();
            let out = Command::new("cksum").arg(&p).output().expect("cksum runs");
            let want = parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
            assert_eq!(
                file_cksum(&p).unwrap(),
                want,
                "file of {} bytes",
                data.len()
            );
        }
    }

    #[test]
    fn parses_cksum_output() {
        assert_eq!(parse("4294967295 0\n"), Some((u32::MAX, 0)));
        assert_eq!(parse(""), None);
        assert_eq!(parse("cksum: x: No such file"), None);
    }
}
