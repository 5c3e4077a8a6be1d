use super::*;
use std::os::unix::fs::PermissionsExt;

/// A fresh directory under the system temp dir, removed on drop.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new(tag: &str) -> Dir {
        let prefix = format!("qvit-outfile-{tag}-");
        Dir(tempfile::Builder::new().prefix(&prefix).tempdir().unwrap())
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.0.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

#[test]
fn replaces_whole_and_keeps_permissions() {
    let d = Dir::new("replace");
    let p = d.join("out.bin");
    write(&p, b"first version, longer than the second").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    write(&p, b"second").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"second");
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(d.names(), ["out.bin"], "no temporary left");
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temporary() {
    let d = Dir::new("fail");
    let p = d.join("out.bin");
    write(&p, b"good").unwrap();
    let err = write_with(&p, |w| {
        w.write_all(&[7; 100_000])?;
        Err(std::io::Error::other("disk full (simulated)"))
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("out.bin") && err.to_string().contains("disk full"),
        "{err}"
    );
    assert_eq!(fs::read(&p).unwrap(), b"good");
    assert_eq!(d.names(), ["out.bin"]);
}

#[test]
fn a_symlink_keeps_pointing_at_the_new_content() {
    let d = Dir::new("link");
    let real = d.join("real.bin");
    let link = d.join("link.bin");
    write(&real, b"old").unwrap();
    std::os::unix::fs::symlink("real.bin", &link).unwrap();
    write(&link, b"new").unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&real).unwrap(), b"new");
}

#[test]
fn a_directory_is_not_replaced() {
    let d = Dir::new("dir");
    let sub = d.join("sub");
    fs::create_dir(&sub).unwrap();
    fs::write(sub.join("keep"), b"x").unwrap();
    let err = write(&sub, b"data").unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
    assert_eq!(fs::read(sub.join("keep")).unwrap(), b"x");
    assert_eq!(d.names(), ["sub"]);
    assert!(write(d.join("missing-dir/x.bin"), b"x").is_err());
}

#[test]
fn outputs_that_are_inputs_are_refused() {
    let d = Dir::new("same");
    let input = d.join("in.npy");
    fs::write(&input, b"input").unwrap();
    let sub = d.join("sub");
    fs::create_dir(&sub).unwrap();
    let hard = d.join("hard.npy");
    fs::hard_link(&input, &hard).unwrap();
    let soft = d.join("soft.npy");
    std::os::unix::fs::symlink(&input, &soft).unwrap();
    let dotted = sub.join("../in.npy");
    for out in [&input, &hard, &soft, &dotted] {
        let err = check_outputs(&[Path::new("other"), &input], &[out]).unwrap_err();
        assert!(
            matches!(&err, Error::OutputIsInput { output, input: i }
                if output == &out.display().to_string() && i == &input.display().to_string()),
            "{out:?}: {err}"
        );
    }
    let fresh = d.join("out.npy");
    check_outputs(&[&input], &[&fresh, &sub.join("out.npy")]).unwrap();
    // Two outputs naming one file, existing or not.
    for (a, b) in [(&fresh, &sub.join("../out.npy")), (&hard, &input)] {
        let err = check_outputs(&[], &[a, b]).unwrap_err();
        assert!(err.to_string().contains("same file"), "{err}");
    }
    assert_eq!(fs::read(&input).unwrap(), b"input");
}
