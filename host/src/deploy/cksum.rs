//! POSIX `cksum` (CRC-32, polynomial 0x04C11DB7, length appended), computed locally and compared
//! with `cksum` on the box so an unchanged runner is not uploaded again. Every POSIX system and
//! busybox has `cksum`; no hash tool beyond it can be assumed on a board.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;

const POLY: u32 = 0x04C1_1DB7;

fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    for (i, slot) in t.iter_mut().enumerate() {
        let mut c = (i as u32) << 24;
        for _ in 0..8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ POLY
            } else {
                c << 1
            };
        }
        *slot = c;
    }
    t
}

/// The `cksum` of a file: (CRC, byte count), as `cksum < FILE` prints them.
pub fn file_cksum(path: &Path) -> Result<(u32, u64)> {
    let t = table();
    let mut crc = 0u32;
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
        for &b in &buf[..n] {
            crc = (crc << 8) ^ t[((crc >> 24) as u8 ^ b) as usize];
        }
        len += n as u64;
    }
    // The length goes in after the data, low byte first, as few bytes as it needs.
    let mut l = len;
    while l != 0 {
        crc = (crc << 8) ^ t[((crc >> 24) as u8 ^ (l & 0xff) as u8) as usize];
        l >>= 8;
    }
    Ok((!crc, len))
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

    /// Agrees with the system's cksum on empty, short, and long files (length bytes > 1).
    #[test]
    fn matches_system_cksum() {
        let dir = std::env::temp_dir().join(format!("qvit-cksum-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut x = 0x9e37_79b9_u32;
        let long: Vec<u8> = (0..70_001)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for (i, data) in [&b""[..], b"a", b"123456789", &long].iter().enumerate() {
            let p = dir.join(format!("f{i}"));
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
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parses_cksum_output() {
        assert_eq!(parse("4294967295 0\n"), Some((u32::MAX, 0)));
        assert_eq!(parse(""), None);
        assert_eq!(parse("cksum: x: No such file"), None);
    }
}
