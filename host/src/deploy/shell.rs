//! Remote paths and POSIX shell quoting for the commands qvit sends over ssh.

use anyhow::{Result, bail};

/// Quotes `s` as one word for a POSIX shell: single quotes, with each `'` written as `'\''`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Characters allowed in remote paths. scp (SFTP or legacy mode) and the remote login shell
/// interpret others differently, so refusing them is the only way one path means one file on
/// every box.
fn is_safe_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '/' | ',' | '=' | '@')
}

/// Normalises the `--dir` argument into the path used in remote commands: `~` and `~/x` become
/// home-relative paths (ssh commands and scp both start in the login's home), trailing slashes
/// go. Refuses empty paths, a leading `-` and characters outside `[A-Za-z0-9._+,=@/-]`.
pub fn remote_dir(dir: &str) -> Result<String> {
    let rel = match dir {
        "~" | "~/" => ".",
        d => d.strip_prefix("~/").unwrap_or(d),
    };
    let trimmed = rel.trim_end_matches('/');
    let path = if trimmed.is_empty() && rel.starts_with('/') {
        "/"
    } else {
        trimmed
    };
    if path.is_empty() {
        bail!("--dir is empty");
    }
    check_safe(path, "--dir")?;
    Ok(path.to_string())
}

/// Refuses a remote path component or path with characters scp or the shell would interpret.
pub fn check_safe(s: &str, what: &str) -> Result<()> {
    if s.starts_with('-') {
        bail!("{what} {s:?} starts with '-'");
    }
    if let Some(c) = s.chars().find(|&c| !is_safe_path_char(c)) {
        bail!(
            "{what} {s:?} contains {c:?}; remote paths may only use letters, digits and ._+,=@/- \
             (rename the file or choose another --dir)"
        );
    }
    Ok(())
}

/// `dir/name`, without doubling a `/` when `dir` is the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The quoted word, read back by a real shell, is the original string.
    #[test]
    fn quote_round_trips_through_sh() {
        for s in [
            "plain",
            "with space",
            "it's",
            "'",
            "''",
            "$HOME `id` \\n \"x\" *?",
            "",
            "a\nb",
        ] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(s)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), s, "quoting {s:?}");
        }
    }

    #[test]
    fn remote_dir_normalises_home_and_slashes() {
        assert_eq!(remote_dir("~").unwrap(), ".");
        assert_eq!(remote_dir("~/models/").unwrap(), "models");
        assert_eq!(remote_dir("/opt/qvit/").unwrap(), "/opt/qvit");
        assert_eq!(remote_dir("/").unwrap(), "/");
        assert_eq!(join("/", "m.qvit"), "/m.qvit");
        assert_eq!(join("qvit", "m.qvit"), "qvit/m.qvit");
    }

    #[test]
    fn remote_dir_refuses_what_the_shell_or_scp_would_interpret() {
        for bad in [
            "", "-rf", "a b", "x;rm", "$HOME/q", "a*", "it's", "~user/x", "a\nb",
        ] {
            assert!(remote_dir(bad).is_err(), "{bad:?} accepted");
        }
    }
}
