#!/usr/bin/env bash
# Fuzzing of record: runs every cargo-fuzz target (fuzz/fuzz_targets/) from a seed corpus of
# valid inputs (device/examples/fuzz_seeds.rs) plus every input that ever crashed a target
# (fuzz/regressions/), under AddressSanitizer, with overflow checks on, and with libFuzzer's
# memory limit set to a Raspberry Pi 3's 1 GB (a larger allocation or peak is a finding).
#
#   scripts/fuzz-campaign.sh                 the campaign: bundle_decode 10 M executions, the
#                                            others 1 M each, one target at a time; writes
#                                            bench-results/fuzz-campaign.{md,json}
#   scripts/fuzz-campaign.sh --smoke 30      each target 30 s (scripts/test.sh); no report
#   scripts/fuzz-campaign.sh TARGET...       the campaign on some targets only
#
# Environment: FUZZ_RUNS_BUNDLE_DECODE, FUZZ_RUNS (the others), FUZZ_NICE (default 19).
# A crash stops the target: its input is in fuzz/artifacts/TARGET/, the script exits 1, and
# the input belongs in fuzz/regressions/TARGET/ once fixed (device/tests/fuzz_regressions.rs
# replays that directory in every `cargo test`).
#
# Toolchain: cargo-fuzz needs nightly's -Z flags. With a nightly toolchain installed it is
# used; without one (this project's machines have only stable, and no other toolchain can be
# fetched) stable runs with RUSTC_BOOTSTRAP=1, which unlocks the same flags. cargo-fuzz itself
# comes from crates.io (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

args="$*"
smoke=""
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=$2; shift 2 ;;
    -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(bundle_decode npy_read image_preprocess bundle_run)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz-campaign: cargo-fuzz is not installed (cargo install cargo-fuzz --locked; scripts/setup.sh does)" >&2
  exit 3
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  tc=(+nightly)
  shown="cargo +nightly"
  toolchain="nightly ($(rustc +nightly --version))"
else
  tc=()
  export RUSTC_BOOTSTRAP=1
  shown="RUSTC_BOOTSTRAP=1 cargo"
  toolchain="stable with RUSTC_BOOTSTRAP=1 ($(rustc --version))"
fi
nice_level=${FUZZ_NICE:-19}

echo "fuzz-campaign: toolchain $toolchain"
# Seeds: small valid bundles, .npy files and images; then every recorded crash input.
cargo run -q -p qvit-device --example fuzz_seeds -- fuzz/corpus
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  if [ -d "fuzz/regressions/$t" ]; then cp fuzz/regressions/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true; fi
done

# -O: optimised; -a: debug assertions, so an arithmetic overflow is a crash, not a wrapped size.
build_cmd=(cargo "${tc[@]}" fuzz build -O -a)
echo "fuzz-campaign: ${build_cmd[*]}"
(cd fuzz && nice -n "$nice_level" "${build_cmd[@]}")

runs_for() {
  case "$1" in
    bundle_decode) echo "${FUZZ_RUNS_BUNDLE_DECODE:-10000000}" ;;
    *) echo "${FUZZ_RUNS:-1000000}" ;;
  esac
}

# libFuzzer prints its totals with -print_final_stats=1; `stat::NAME: VALUE`.
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }
# The last status line's `cov: N ft: M corp: K/...`.
field() { grep -Eo "$1: [0-9]+" "$2" | tail -1 | grep -Eo '[0-9]+' || echo 0; }

mkdir -p bench-results
json_rows=()
status=0
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
for t in "${targets[@]}"; do
  log="fuzz/artifacts/$t/campaign.log"
  if [ -n "$smoke" ]; then
    limit=(-max_total_time="$smoke")
  else
    limit=(-runs="$(runs_for "$t")")
  fi
  run_cmd=(cargo "${tc[@]}" fuzz run -O -a "$t" "corpus/$t" -- "${limit[@]}"
    -rss_limit_mb=1024 -malloc_limit_mb=1024 -timeout=30 -print_final_stats=1
    "-artifact_prefix=artifacts/$t/")
  echo "fuzz-campaign: ${run_cmd[*]}"
  start=$(date +%s)
  if (cd fuzz && nice -n "$nice_level" "${run_cmd[@]}") > "$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
    tail -40 "$log" >&2
  fi
  secs=$(( $(date +%s) - start ))
  execs=$(stat number_of_executed_units "$log")
  rate=$(stat average_exec_per_sec "$log")
  rss=$(stat peak_rss_mb "$log")
  cov=$(field cov "$log")
  ft=$(field ft "$log")
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  findings=$(find "fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  echo "fuzz-campaign: $t $result: ${execs:-?} executions in ${secs} s, cov $cov, ft $ft, corpus $corpus, peak RSS ${rss:-?} MB, findings $findings"
  json_rows+=("{\"target\": \"$t\", \"executions\": ${execs:-null}, \"exec_per_sec\": ${rate:-null}, \"seconds\": $secs, \"edges\": $cov, \"features\": $ft, \"corpus\": $corpus, \"peak_rss_mb\": ${rss:-null}, \"findings\": $findings, \"result\": \"$result\", \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"commit\": \"$commit\", \"toolchain\": \"$toolchain\", \"command\": \"$shown fuzz run -O -a $t corpus/$t -- -runs=$(runs_for "$t") -rss_limit_mb=1024 -malloc_limit_mb=1024 -timeout=30 -print_final_stats=1 -artifact_prefix=artifacts/$t/\"}")
done

[ -z "$smoke" ] || exit "$status"

# The report: this run's rows, plus the rows of the targets not run this time, kept from the
# previous report with their own date and commit (a rerun of one target replaces only its row).
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
printf '%s\n' "${json_rows[@]}" | python3 - "$cpu ($(nproc) cores)" "$nice_level" "${all[@]}" <<'PY'
import json, sys
machine, nice, order = sys.argv[1], sys.argv[2], sys.argv[3:]
new = {r["target"]: r for r in map(json.loads, sys.stdin.read().splitlines())}
path = "bench-results/fuzz-campaign.json"
try:
    old = json.load(open(path))
except (OSError, ValueError):
    old = {"targets": []}
rows = {}
for r in old.get("targets", []):
    # Rows of reports written before rows carried their own date keep the report's.
    for k in ("date", "commit", "toolchain"):
        r.setdefault(k, old.get(k))
    runs = 10000000 if r["target"] == "bundle_decode" else 1000000
    cargo = "cargo +nightly" if str(r["toolchain"]).startswith("nightly") else "RUSTC_BOOTSTRAP=1 cargo"
    r.setdefault("command", f"{cargo} fuzz run -O -a {r['target']} corpus/{r['target']} -- "
                 f"-runs={runs} -rss_limit_mb=1024 -malloc_limit_mb=1024 -timeout=30 "
                 f"-print_final_stats=1 -artifact_prefix=artifacts/{r['target']}/")
    rows[r["target"]] = r
rows.update(new)
targets = [rows[t] for t in order if t in rows]
latest = max(targets, key=lambda r: r["date"] or "")
json.dump({"date": latest["date"], "commit": latest["commit"], "machine": machine,
           "targets": targets}, open(path, "w"), indent=1)
open(path, "a").write("\n")
fmt = lambda v: "?" if v is None else str(v)
md = ["# Fuzzing campaign", "",
      f"Written by `scripts/fuzz-campaign.sh` on {machine}, shared with other work (the fuzzer ran",
      f"under `nice -n {nice}`). Each row is the last campaign run of its target, with its date and commit",
      "(`scripts/fuzz-campaign.sh TARGET` reruns one target and keeps the other rows).", "",
      "Every target ran under AddressSanitizer with overflow checks on (`cargo fuzz run -O -a`) and",
      "libFuzzer's limits of 1024 MB (peak RSS and any single allocation, a Raspberry Pi 3's memory)",
      "and 30 s per input, from the seeds of `device/examples/fuzz_seeds.rs` plus `fuzz/regressions/`.",
      "Edges and features are libFuzzer's coverage counters (instrumented edges reached, and",
      "edge-and-hit-count features) at the end of the run; corpus is the number of inputs kept.", "",
      "| target | executions | exec/s | seconds | edges | features | corpus | peak RSS MB | findings | result | date | commit |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"]
for r in targets:
    md.append("| " + " | ".join(fmt(r.get(k)) for k in (
        "target", "executions", "exec_per_sec", "seconds", "edges", "features", "corpus",
        "peak_rss_mb", "findings", "result", "date", "commit")) + " |")
md += ["", "Toolchains: " + "; ".join(sorted({f"{r['target']}: {r.get('toolchain')}" for r in targets})) + ".",
       "", "Commands (from `fuzz/`, after `cargo fuzz build -O -a` with the same toolchain):", "", "```sh"]
md += [r["command"] for r in targets if r.get("command")]
md += ["```", ""]
bad = [r["target"] for r in targets if r.get("result") != "ok" or r.get("findings")]
md.append("No crash, out-of-memory, timeout or leak." if not bad else
          "Not clean: " + ", ".join(bad) + ". Findings are in `fuzz/artifacts/<target>/`; each becomes "
          "a regression input in `fuzz/regressions/<target>/`.")
open("bench-results/fuzz-campaign.md", "w").write("\n".join(md) + "\n")
PY
echo "fuzz-campaign: wrote bench-results/fuzz-campaign.md and .json"
exit "$status"
