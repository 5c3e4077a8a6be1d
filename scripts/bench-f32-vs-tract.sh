#!/usr/bin/env bash
# The device f32 executor against tract f32 on the same imported models, 1 thread, same run.
# Writes bench-results/f32-vs-tract.json (machine, commit, median ms per model and the ratio).
# QVIT_BENCH_LARGE=1 adds the 22 M-parameter DINOv2 ViT-S/14 from ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
# The dev profile optimises tract and the runtime (opt-level 3) and shares the test build cache.
cargo bench --profile dev -p qvit-host --bench f32_vs_tract -- --noplot "$@"
python3 - <<'PY'
import json, os, platform, subprocess, glob, datetime
def median_ms(group, fn):
    p = f"target/criterion/{group}/{fn}/new/estimates.json"
    return json.load(open(p))["median"]["point_estimate"] / 1e6 if os.path.exists(p) else None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
rows = []
for d in sorted(glob.glob("target/criterion/f32_*")):
    g = os.path.basename(d)
    q, t = median_ms(g, "qvit"), median_ms(g, "tract")
    if q and t:
        rows.append({"model": g[4:], "qvit_ms": round(q, 3), "tract_ms": round(t, 3), "qvit_over_tract": round(q / t, 3)})
out = {"what": "f32 inference latency, 1 thread, median of criterion samples", "machine": cpu, "cores": os.cpu_count(),
       "commit": commit, "date": datetime.date.today().isoformat(), "results": rows}
os.makedirs("bench-results", exist_ok=True)
json.dump(out, open("bench-results/f32-vs-tract.json", "w"), indent=1)
for r in rows:
    print(f"{r['model']:>12}: qvit {r['qvit_ms']:8.3f} ms  tract {r['tract_ms']:8.3f} ms  ratio {r['qvit_over_tract']:.2f}")
PY
