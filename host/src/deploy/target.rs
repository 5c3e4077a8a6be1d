//! The boxes to deploy to: ssh destinations `user@host[:port]`, Host aliases of the ssh config,
//! and `@FILE` lists of them.

use anyhow::{Context, Result, bail};
use std::path::Path;

/// One box as ssh and scp are told to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// As the user wrote it; used in messages, the summary and result file names.
    pub label: String,
    /// The destination for ssh: `user@host`, `host` or a Host alias (never with the port).
    pub dest: String,
    /// The same for scp's `dest:path` syntax (IPv6 addresses in brackets).
    pub scp_dest: String,
    /// Port given as `:port`; `None` leaves it to the ssh config (default 22).
    pub port: Option<u16>,
}

/// Parses `user@host[:port]`, `host`, `alias`, `[v6addr]:port` or `user@[v6addr]`.
pub fn parse_target(s: &str) -> Result<Target> {
    let s = s.trim();
    if s.is_empty() {
        bail!("empty host");
    }
    if s.starts_with('-') {
        bail!("host {s:?} starts with '-'");
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "/'\"`$;&|<>\\".contains(*c))
    {
        bail!("host {s:?} contains {c:?}");
    }
    let (user, rest) = match s.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u), r),
        Some(_) => bail!("host {s:?} has an empty user name"),
        None => (None, s),
    };
    let (host, port, v6) = if let Some(inner) = rest.strip_prefix('[') {
        let (addr, after) = inner
            .split_once(']')
            .with_context(|| format!("host {s:?}: missing ']'"))?;
        let port = match after {
            "" => None,
            p => Some(parse_port(p.strip_prefix(':').unwrap_or("x"), s)?),
        };
        (addr, port, true)
    } else {
        match rest.matches(':').count() {
            0 => (rest, None, false),
            1 => {
                let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
                (h, Some(parse_port(p, s)?), false)
            }
            // A bare IPv6 address: no port possible without brackets.
            _ => (rest, None, true),
        }
    };
    if host.is_empty() {
        bail!("host {s:?} has no host name");
    }
    let user_at = user.map(|u| format!("{u}@")).unwrap_or_default();
    Ok(Target {
        label: s.to_string(),
        dest: format!("{user_at}{host}"),
        scp_dest: if v6 {
            format!("{user_at}[{host}]")
        } else {
            format!("{user_at}{host}")
        },
        port,
    })
}

fn parse_port(p: &str, whole: &str) -> Result<u16> {
    match p.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => bail!("host {whole:?}: bad port {p:?}"),
    }
}

/// Expands the HOST arguments (`@FILE` read as one host per line, `#` comments and blank lines
/// skipped) into targets, dropping repeats so one box never gets two concurrent deploys.
pub fn expand(args: &[String]) -> Result<Vec<Target>> {
    let mut names = Vec::new();
    for arg in args {
        match arg.strip_prefix('@') {
            Some(file) => names.extend(read_list(Path::new(file))?),
            None => names.push(arg.clone()),
        }
    }
    let mut targets: Vec<Target> = Vec::new();
    for name in names {
        let t = parse_target(&name)?;
        if !targets.iter().any(|o| o.label == t.label) {
            targets.push(t);
        }
    }
    if targets.is_empty() {
        bail!("no hosts given (the @FILE lists are empty)");
    }
    Ok(targets)
}

fn read_list(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading host list {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> (String, String, Option<u16>) {
        let t = parse_target(s).unwrap();
        (t.dest, t.scp_dest, t.port)
    }

    #[test]
    fn destinations() {
        let s = |x: &str| x.to_string();
        assert_eq!(t("pi4"), (s("pi4"), s("pi4"), None));
        assert_eq!(t("pi@10.0.0.7"), (s("pi@10.0.0.7"), s("pi@10.0.0.7"), None));
        assert_eq!(
            t("pi@10.0.0.7:2222"),
            (s("pi@10.0.0.7"), s("pi@10.0.0.7"), Some(2222))
        );
        assert_eq!(
            t("jetson.local:22"),
            (s("jetson.local"), s("jetson.local"), Some(22))
        );
        assert_eq!(
            t("root@[::1]:2200"),
            (s("root@::1"), s("root@[::1]"), Some(2200))
        );
        assert_eq!(t("fe80::1"), (s("fe80::1"), s("[fe80::1]"), None));
    }

    #[test]
    fn refuses_bad_destinations() {
        for bad in [
            "",
            "-oProxyCommand=x",
            "a b",
            "pi@",
            "@pi",
            "pi:0",
            "pi:99999",
            "pi:x",
            "[::1",
            "[::1]x",
            "a;b",
            "h/x",
        ] {
            assert!(parse_target(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn host_files_with_comments_and_repeats() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let list = dir.join("fleet.txt");
        std::fs::write(&list, "# fleet\npi@a\n\n  pi@b:2222  # lab\npi@a\n").unwrap();
        let got = expand(&[
            format!("@{}", list.display()),
            "jet".into(),
            "pi@b:2222".into(),
        ])
        .unwrap();
        let labels: Vec<_> = got.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["pi@a", "pi@b:2222", "jet"]);
        assert!(expand(&[format!("@{}", dir.join("missing").display())]).is_err());
    }
}
