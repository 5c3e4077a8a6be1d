//! The summary over all boxes: a table for people, `{"boxes": [...]}` for scripts.

use super::steps::BoxReport;
use qvit_device::bench_report::{BenchReport, Latency};
use serde_json::Value;

/// `{"boxes": [{"host", "ok", "error", "bench", …}]}`.
pub fn json(reports: &[BoxReport]) -> Value {
    serde_json::json!({ "boxes": reports })
}

/// A fixed-width table, one row per box; latency columns only when benchmarked.
pub fn table(reports: &[BoxReport], bench: bool) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut head = vec!["host", "status", "arch"];
    if bench {
        head.extend(["p50 ms", "p90 ms", "min ms", "peak RSS", "tier", "cpu"]);
    } else {
        head.push("installed");
    }
    rows.push(head.into_iter().map(String::from).collect());
    for r in reports {
        let mut row = vec![
            r.host.clone(),
            if r.ok { "ok" } else { "FAILED" }.to_string(),
            r.arch.clone().unwrap_or_else(|| "-".into()),
        ];
        if bench {
            let b = r.bench.as_ref().map(|b| &b.run);
            let ms = |f: fn(&Latency) -> f64| {
                b.map_or("-".into(), |b| format!("{:.2}", f(&b.latency_ms)))
            };
            let text = |f: fn(&BenchReport) -> &str| b.map_or("-".into(), |b| f(b).to_string());
            let rss = b
                .and_then(|b| b.peak_rss_bytes)
                .map_or("-".into(), |v| format!("{:.1} MiB", v as f64 / 1048576.0));
            row.extend([
                ms(|l| l.p50),
                ms(|l| l.p90),
                ms(|l| l.min),
                rss,
                text(|b| &b.kernel_tier),
                text(|b| &b.cpu),
            ]);
        } else {
            row.push(r.bundle.clone().unwrap_or_else(|| "-".into()));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for r in reports.iter().filter(|r| !r.ok) {
        out.push_str(&format!(
            "{}: {}\n",
            r.host,
            r.error.as_deref().unwrap_or("failed")
        ));
    }
    let ok = reports.iter().filter(|r| r.ok).count();
    out.push_str(&format!("{ok} of {} boxes ok\n", reports.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::super::steps::BoxBench;
    use super::*;

    fn report(host: &str, ok: bool, p50: Option<f64>) -> BoxReport {
        BoxReport {
            host: host.into(),
            ok,
            error: (!ok).then(|| "ssh could not connect".into()),
            arch: ok.then(|| "aarch64".into()),
            bench: p50.map(|v| BoxBench {
                host: host.into(),
                arch: "aarch64".into(),
                board: None,
                run: BenchReport {
                    model: "m".into(),
                    bundle: "m.qvit".into(),
                    latency_ms: Latency::of(&[v / 2.0, v, v * 2.0]).unwrap(),
                    load_ms: 1.0,
                    peak_rss_bytes: Some(3 * 1048576),
                    kernel_tier: "neon".into(),
                    cpu: "Cortex-A72".into(),
                    cpu_features: vec!["asimd".into()],
                    commit: "abc".into(),
                    threads: 1,
                    iters: 3,
                    warmup: 0,
                    timestamp: "2026-01-01T00:00:00Z".into(),
                    profile: None,
                    profile_by_op: None,
                    profile_ms: None,
                    measured_ms: None,
                },
            }),
            ..Default::default()
        }
    }

    #[test]
    fn table_lists_every_box_and_the_failures() {
        let t = table(
            &[report("pi4", true, Some(12.5)), report("pi3", false, None)],
            true,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("host"));
        assert!(
            lines[1].starts_with("pi4") && lines[1].contains("12.50") && lines[1].contains("25.00")
        );
        assert!(lines[1].contains("3.0 MiB") && lines[1].contains("Cortex-A72"));
        assert!(lines[2].starts_with("pi3") && lines[2].contains("FAILED"));
        assert_eq!(lines[3], "pi3: ssh could not connect");
        assert_eq!(lines[4], "1 of 2 boxes ok");
        // Columns line up: "status" starts at the same offset in every row.
        let col = lines[0].find("status").unwrap();
        assert_eq!(&lines[1][col..col + 2], "ok");
    }

    #[test]
    fn json_has_the_issue_shape() {
        let reports = [report("pi4", true, Some(1.0)), report("pi3", false, None)];
        let v = json(&reports);
        assert_eq!(v["boxes"][0]["host"], "pi4");
        assert_eq!(v["boxes"][0]["ok"], true);
        assert!(v["boxes"][0]["error"].is_null());
        assert_eq!(v["boxes"][0]["bench"]["kernel_tier"], "neon");
        assert_eq!(v["boxes"][0]["bench"]["host"], "pi4");
        assert_eq!(v["boxes"][0]["bench"]["latency_ms"]["p90"], 2.0);
        // What a script reads back is what was written.
        let back: BoxBench = serde_json::from_value(v["boxes"][0]["bench"].clone()).unwrap();
        assert_eq!(Some(&back), reports[0].bench.as_ref());
        assert_eq!(v["boxes"][1]["ok"], false);
        assert!(v["boxes"][1]["bench"].is_null());
    }
}
