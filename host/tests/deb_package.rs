//! The Debian packages of qvit-run built by `cargo deb -p qvit-device [--target …]`, read with
//! Debian's own `dpkg-deb`: control fields, file list and modes, the shipped files byte for
//! byte, and the arm64 binary's ELF header and a run under qemu.
//!
//! scripts/test.sh builds both packages and runs these tests with `--ignored`, QVIT_DEB_ARM64
//! and QVIT_DEB_AMD64 naming the packages. They are ignored in a plain `cargo test` (which
//! builds no package), and fail when run without the variables.

mod common;
#[path = "common/fleet.rs"]
mod fleet;

use fleet::{run, text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn package(var: &str) -> PathBuf {
    let p = PathBuf::from(std::env::var_os(var).unwrap_or_else(|| {
        panic!(
            "{var} is not set: run scripts/test.sh, or build the package \
             (cargo deb -p qvit-device [--target aarch64-unknown-linux-gnu]) and set {var} to it"
        )
    }));
    assert!(p.is_file(), "{var}={} does not exist", p.display());
    p
}

fn dpkg_deb(args: &[&str]) -> String {
    let o = run("dpkg-deb", args);
    assert!(o.status.success(), "dpkg-deb {args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// The control fields, continuation lines folded into their field.
fn control(deb: &Path) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut last = String::new();
    for line in dpkg_deb(&["-f", deb.to_str().unwrap()]).lines() {
        if line.starts_with(' ') {
            fields
                .entry(last.clone())
                .and_modify(|v: &mut String| *v += line);
        } else if let Some((k, v)) = line.split_once(": ") {
            last = k.to_string();
            fields.insert(last.clone(), v.to_string());
        }
    }
    fields
}

/// Path → (mode string, owner) from `dpkg-deb -c`.
fn contents(deb: &Path) -> BTreeMap<String, (String, String)> {
    dpkg_deb(&["-c", deb.to_str().unwrap()])
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let path = cols.get(5)?.trim_start_matches('.');
            Some((path.to_string(), (cols[0].to_string(), cols[1].to_string())))
        })
        .collect()
}

fn check_package(deb: &Path, arch: &str) -> tempfile::TempDir {
    assert_eq!(
        deb.file_name().unwrap().to_str().unwrap(),
        format!("qvit-run_{VERSION}_{arch}.deb")
    );
    let f = control(deb);
    assert_eq!(f["Package"], "qvit-run");
    assert_eq!(f["Version"], VERSION);
    assert_eq!(f["Architecture"], arch);
    assert_eq!(f["Section"], "science");
    assert_eq!(f["Priority"], "optional");
    assert_eq!(f["Suggests"], "mender-client");
    assert!(f["Maintainer"].contains('@'), "{:?}", f["Maintainer"]);
    assert!(f["Depends"].contains("libc6"), "{:?}", f["Depends"]);
    assert!(
        f["Description"].starts_with("qvit device runtime"),
        "{:?}",
        f["Description"]
    );
    assert!(f["Description"].contains("Mender update module"));

    let files = contents(deb);
    let exec = "-rwxr-xr-x";
    for (path, mode) in [
        ("/usr/bin/qvit-run", exec),
        ("/usr/share/mender/modules/v3/qvit", exec),
        ("/usr/share/doc/qvit-run/README.md", "-rw-r--r--"),
        ("/usr/share/doc/qvit-run/copyright", "-rw-r--r--"),
    ] {
        let got = files
            .get(path)
            .unwrap_or_else(|| panic!("{path} not in {arch} package: {files:?}"));
        assert_eq!(got.0, mode, "{path}");
        assert!(
            ["root/root", "0/0"].contains(&got.1.as_str()),
            "{path} owned by {}",
            got.1
        );
    }
    let shipped: Vec<&str> = files
        .keys()
        .map(String::as_str)
        .filter(|p| !p.ends_with('/'))
        .collect();
    assert_eq!(
        shipped,
        [
            "/usr/bin/qvit-run",
            "/usr/share/doc/qvit-run/README.md",
            "/usr/share/doc/qvit-run/copyright",
            "/usr/share/mender/modules/v3/qvit",
        ],
        "the package's files"
    );

    let root = tempfile::tempdir().unwrap();
    dpkg_deb(&["-x", deb.to_str().unwrap(), root.path().to_str().unwrap()]);
    let repo = common::repo();
    for (shipped, source) in [
        ("usr/share/mender/modules/v3/qvit", "device/mender/qvit"),
        ("usr/share/doc/qvit-run/README.md", "device/README.md"),
    ] {
        assert_eq!(
            std::fs::read(root.path().join(shipped)).unwrap(),
            std::fs::read(repo.join(source)).unwrap(),
            "{shipped} differs from {source}"
        );
    }
    let size_kib: u64 = f["Installed-Size"].parse().unwrap();
    let binary = std::fs::metadata(root.path().join("usr/bin/qvit-run"))
        .unwrap()
        .len();
    assert!(
        size_kib * 1024 >= binary && size_kib * 1024 < binary + 256 * 1024,
        "Installed-Size {size_kib} KiB for a {binary}-byte binary"
    );
    root
}

/// ELF machine number of a 64-bit little-endian ELF executable (header fields from the
/// System V ABI: magic, class 2 = 64-bit, data 1 = little-endian, e_machine at byte 18).
fn elf64_machine(bytes: &[u8]) -> u16 {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(bytes[4], 2, "not a 64-bit ELF");
    assert_eq!(bytes[5], 1, "not little-endian");
    let e_type = u16::from_le_bytes([bytes[16], bytes[17]]);
    assert!(
        e_type == 2 || e_type == 3,
        "not an executable (e_type {e_type})"
    );
    u16::from_le_bytes([bytes[18], bytes[19]])
}

#[test]
#[ignore = "needs QVIT_DEB_ARM64 (scripts/test.sh builds the package and runs this)"]
fn arm64_package_has_the_fields_files_and_an_aarch64_binary() {
    let deb = package("QVIT_DEB_ARM64");
    let root = check_package(&deb, "arm64");
    let bin = root.path().join("usr/bin/qvit-run");
    let bytes = std::fs::read(&bin).unwrap();
    assert_eq!(elf64_machine(&bytes), 183, "EM_AARCH64 is 183");
    let interp = b"/lib/ld-linux-aarch64.so.1";
    assert!(
        bytes.windows(interp.len()).any(|w| w == interp),
        "not linked against the aarch64 glibc loader"
    );
    // Stripped: no symbol table section name left.
    assert!(
        !bytes.windows(8).any(|w| w == b".symtab\0"),
        "binary not stripped"
    );
    fleet::need("qemu-aarch64", "qemu-user");
    let o = run(
        "qemu-aarch64",
        &[
            "-L",
            "/usr/aarch64-linux-gnu",
            bin.to_str().unwrap(),
            "--version",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("qvit-run {VERSION}")
    );
}

#[test]
#[ignore = "needs QVIT_DEB_AMD64 (scripts/test.sh builds the package and runs this)"]
fn amd64_package_has_the_fields_files_and_an_x86_64_binary() {
    let deb = package("QVIT_DEB_AMD64");
    let root = check_package(&deb, "amd64");
    let bytes = std::fs::read(root.path().join("usr/bin/qvit-run")).unwrap();
    assert_eq!(elf64_machine(&bytes), 62, "EM_X86_64 is 62");
}
