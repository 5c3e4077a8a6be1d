#!/usr/bin/env bash
# Quantized qvit against its peers, in one run:
#  1. x86_64 wall time and peak RSS of qvit-run (f32, W8A8, W4A8, W4A4 bundles, and a mixed
#     4/6/8-bit DeiT-Tiny) next to onnxruntime (fp32 and its static int8 QDQ model) and tract
#     (f32, one thread) on DeiT-Tiny (seeded weights) and DINOv2 ViT-S/14, at 1 and 2 threads,
#     with the load average before every measurement;
#  2. aarch64 dynamic instructions per inference under qemu-user (no ARM board here): qvit-run and
#     tract_bench run once with one timed inference and once with two; the difference is one
#     inference (model loading, plan building and first-run setup cancel out).
# Writes bench-results/quantized-speed-x86_64.{json,md} and bench-results/quantized-insn-aarch64.md.
#
# Usage (repo root): scripts/bench-quantized.sh
# Environment: ITERS (timed runs, default 30), WARMUP (default 3), PYTHON (default ../venv/bin/python when present, else python3),
#   INSN_MODEL=deit_tiny|fashion_vit (model counted under qemu, default deit_tiny),
#   TRACT_AARCH64=auto|build|skip (auto: count tract only if its aarch64 build already exists,
#   since building tract for aarch64 takes tens of minutes; build: build it here).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PY=${PYTHON:-$(if [ -x ../venv/bin/python ]; then echo ../venv/bin/python; else echo python3; fi)}
ITERS=${ITERS:-30}
WARMUP=${WARMUP:-3}
INSN_MODEL=${INSN_MODEL:-deit_tiny}
TRACT_AARCH64=${TRACT_AARCH64:-auto}
IMAGENET=${IMAGENET:-../shared/data/imagenet-sample}
DINOV2=${DINOV2:-../shared/models/vit-s14-dinov2/vit_s14_backbone.onnx}
A64=aarch64-unknown-linux-gnu
# aarch64 builds go to their own target directory so a long tract build does not hold the lock
# of target/ (shared with everyone's x86_64 builds).
# Relative, so the commands written into bench-results/ name no machine paths.
A64_TARGET_DIR=${A64_TARGET_DIR:-target-bench-a64}
out_json=bench-results/quantized-speed-x86_64.json
out_md=bench-results/quantized-speed-x86_64.md
insn_md=bench-results/quantized-insn-aarch64.md
bundles=target/bench-quantized
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'echo "bench-quantized.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
t_start=$(date +%s)
# The commit the binaries are built from (others may commit while this runs).
commit=$(git rev-parse --short HEAD)
[ -z "$(git status --porcelain -- kernels device host scripts)" ] ||
    commit="$commit (+ uncommitted changes in kernels/, device/, host/ or scripts/)"
mkdir -p "$bundles" bench-results "$work/raw"

say() { echo "[bench-quantized $(date -u +%H:%M:%S)] $*" >&2; }
load1() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------- builds
say "building qvit (debug), qvit-run and tract_bench (release, x86_64)"
cargo build -q -p qvit-host
cargo build -q --release -p qvit-device --bin qvit-run
cargo build -q --release -p qvit-host --example tract_bench
QVIT=target/debug/qvit
RUN=target/release/qvit-run
TRACT=target/release/examples/tract_bench

# ---------------------------------------------------------------- models and bundles
deit_onnx=target/ort-peer/deit_tiny_op17.synthweights.onnx
deit_qdq=target/ort-peer/deit_tiny_synth.qdq_minmax_pc.onnx
s14_qdq=target/ort-peer/vit_s14_dinov2.qdq_minmax_pc.onnx
# The ORT peer scripts own these files (same seeded DeiT weights for all three runtimes).
if [ ! -f "$deit_onnx" ] || [ ! -f "$deit_qdq" ]; then
    say "regenerating the ORT DeiT-Tiny files"
    "$PY" scripts/ort-peer/quantize_static.py --models deit_tiny_synth --variants qdq_minmax_pc
fi
if [ ! -f "$s14_qdq" ]; then
    say "regenerating the ORT ViT-S/14 QDQ model"
    "$PY" scripts/ort-peer/quantize_static.py --models vit_s14_dinov2 --variants qdq_minmax_pc
fi

calib=$work/calib16
mkdir -p "$calib"
# sed reads its whole input (head would exit early and SIGPIPE sort under pipefail).
find "$(cd "$IMAGENET" && pwd)" -maxdepth 1 -type f | LC_ALL=C sort | sed -n 1,16p | while read -r f; do
    ln -s "$f" "$calib/$(basename "$f")"
done

quant_log=$work/quantize-commands.txt
: >"$quant_log"
# make_bundles NAME ONNX SHAPE PRESET CALIB
make_bundles() {
    local name=$1 onnx=$2 shape=$3 preset=$4 cal=$5
    local cmd
    cmd=("$QVIT" quantize "$onnx" --input-shape "$shape" --float --preset "$preset" -o "$bundles/$name.f32.qvit")
    echo "${cmd[*]}" >>"$quant_log"
    "${cmd[@]}" >/dev/null
    for wa in "8 8" "4 8" "4 4"; do
        read -r w a <<<"$wa"
        cmd=("$QVIT" quantize "$onnx" --input-shape "$shape" --preset "$preset" --calib "$cal" --calib-limit 16
            --wbits "$w" --abits "$a" -o "$bundles/$name.w${w}a${a}.qvit")
        echo "${cmd[*]}" >>"$quant_log"
        "${cmd[@]}" >/dev/null
    done
}
say "quantizing DeiT-Tiny and ViT-S/14 (f32, W8A8, W4A8, W4A4; 16 calibration images)"
make_bundles deit_tiny "$deit_onnx" 1,3,224,224 imagenet "$calib"
# A mixed-precision DeiT-Tiny: 4-bit weights (nibbles in memory) beside 6- and 8-bit ones, and
# 6/8-bit activations. The seeded weights carry no relevance structure, so random relevance
# makes the mix (LRP on them keeps uniform 4 bits).
cmd=("$QVIT" quantize "$deit_onnx" --input-shape 1,3,224,224 --preset imagenet --calib "$calib" --calib-limit 16
    --mixed --budget 4.5 --abudget 6 --allocate random:3 --bits-choices 4,6,8 -o "$bundles/deit_tiny.mixed.qvit")
echo "${cmd[*]}" >>"$quant_log"
"${cmd[@]}" >/dev/null
make_bundles vit_s14 "$DINOV2" 1,3,224,224 imagenet "$calib"

# ---------------------------------------------------------------- x86_64 timing
index=$work/index.tsv
: >"$index"
# measure ID KIND COMMAND...: load average before, then the command's JSON stdout into raw/ID.json.
measure() {
    local id=$1 kind=$2
    shift 2
    local load
    load=$(load1)
    say "$id (load $load)"
    "$@" >"$work/raw/$id.json"
    printf '%s\t%s\t%s\t%s\n' "$id" "$kind" "$load" "$*" >>"$index"
}
time_model() {
    local name=$1 fp32=$2 qdq=$3 shape=$4 variants=$5
    for t in 1 2; do
        for v in $variants; do
            measure "$name|qvit $v|$t" qvit "$RUN" bench "$bundles/$name.$v.qvit" --threads "$t" \
                --iters "$ITERS" --warmup "$WARMUP" --json
        done
        measure "$name|onnxruntime fp32|$t" ort "$PY" scripts/ort-peer/bench_ort.py "$fp32" --shape "$shape" \
            --threads "$t" --iters "$ITERS" --warmup "$WARMUP"
        measure "$name|onnxruntime int8 QDQ|$t" ort "$PY" scripts/ort-peer/bench_ort.py "$qdq" --shape "$shape" \
            --threads "$t" --iters "$ITERS" --warmup "$WARMUP"
    done
    measure "$name|tract f32|1" tract "$TRACT" "$fp32" "$shape" --iters "$ITERS" --warmup "$WARMUP"
}
say "timing on x86_64 ($ITERS runs after $WARMUP warm-up each)"
time_model deit_tiny "$deit_onnx" "$deit_qdq" 1,3,224,224 "f32 w8a8 w4a8 w4a4 mixed"
time_model vit_s14 "$DINOV2" "$s14_qdq" 1,3,224,224 "f32 w8a8 w4a8 w4a4"
t_timing=$(date +%s)

# ---------------------------------------------------------------- aarch64 instruction counts
say "building qvit-run for aarch64 and the qemu plugin"
CARGO_TARGET_DIR=$A64_TARGET_DIR cargo build -q --release --target "$A64" -p qvit-device --bin qvit-run
RUN64=$A64_TARGET_DIR/$A64/release/qvit-run
TRACT64=$A64_TARGET_DIR/$A64/release/examples/tract_bench
plugin=$work/libinsn.so
gcc -O2 -Wall -Wextra -shared -fPIC -o "$plugin" scripts/qemu-insn/insn.c

case $INSN_MODEL in
deit_tiny)
    insn_prefix=$bundles/deit_tiny insn_onnx=$deit_onnx insn_shape=1,3,224,224
    ;;
fashion_vit)
    insn_onnx=models/fashion-vit/fashion_vit.onnx insn_shape=1,1,28,28
    insn_prefix=$bundles/fashion_vit
    make_bundles fashion_vit "$insn_onnx" "$insn_shape" fashion-mnist models/fashion-vit/calib512-images-idx3-ubyte
    ;;
*) echo "INSN_MODEL must be deit_tiny or fashion_vit" >&2 && exit 2 ;;
esac

insn_rows=$work/insn.tsv
: >"$insn_rows"
# insns CPU LOG PROGRAM ARGS...: runs under qemu with the plugin; stdout to LOG.out, prints the count.
insns() {
    local cpu=$1 log=$2
    shift 2
    : >"$log"
    QEMU_CPU=$cpu qemu-aarch64 -L /usr/aarch64-linux-gnu -plugin "$plugin,out=$log" "$@" >"$log.out"
    sed -n 's/.*insns=\([0-9]*\).*/\1/p' "$log"
}
# count_one LABEL CPU TIER_FROM_JSON(yes|no) PROGRAM ARGS... (ARGS end before --iters)
count_one() {
    local label=$1 cpu=$2 tiered=$3
    shift 3
    local s0 s1 i1 i2 tier="—" secs
    s0=$(date +%s)
    i1=$(insns "$cpu" "$work/i1.txt" "$@" --iters 1 --warmup 0)
    s1=$(date +%s)
    i2=$(insns "$cpu" "$work/i2.txt" "$@" --iters 2 --warmup 0)
    secs=$(($(date +%s) - s0))
    if [ "$tiered" = yes ]; then
        tier=$(sed -n 's/.*"kernel_tier": "\([^"]*\)".*/\1/p' "$work/i2.txt.out")
    fi
    local cmd="QEMU_CPU=$cpu qemu-aarch64 -L /usr/aarch64-linux-gnu -plugin libinsn.so,out=FILE ${*} --iters {1,2} --warmup 0"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$cpu" "$tier" "$i1" "$i2" "$((i2 - i1))" "$secs" "$cmd" >>"$insn_rows"
    say "insns $label $cpu: $((i2 - i1)) per inference (iters=1 run took $((s1 - s0)) s)"
}
say "counting aarch64 instructions ($INSN_MODEL)"
for cpu in cortex-a53 max,sve=off; do
    for v in f32 w8a8 w4a8 w4a4 $([ "$INSN_MODEL" = deit_tiny ] && echo mixed); do
        count_one "qvit $v" "$cpu" yes "$RUN64" bench "$insn_prefix.$v.qvit" --threads 1 --json
    done
done
# tract last: its aarch64 build is the slow one. A failed (or interrupted) build leaves it unmeasured.
case $TRACT_AARCH64 in
build | auto)
    if [ "$TRACT_AARCH64" = build ] || [ -x "$TRACT64" ]; then
        say "building tract_bench for aarch64 (nice 19)"
        CARGO_TARGET_DIR=$A64_TARGET_DIR nice -n 19 cargo build -q --release --target "$A64" \
            -p qvit-host --example tract_bench || say "aarch64 tract_bench build failed: tract not counted"
    fi
    ;;
skip) ;;
*) echo "TRACT_AARCH64 must be auto, build or skip" >&2 && exit 2 ;;
esac
if [ "$TRACT_AARCH64" != skip ] && [ -x "$TRACT64" ]; then
    for cpu in cortex-a53 max,sve=off; do
        count_one "tract f32" "$cpu" no "$TRACT64" "$insn_onnx" "$insn_shape"
    done
fi
t_end=$(date +%s)

# ---------------------------------------------------------------- reports
export ITERS WARMUP INSN_MODEL commit out_json out_md insn_md index insn_rows quant_log work
export cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
export date_utc="$(date -u '+%Y-%m-%d %H:%M UTC')"
export rustc_v="$(rustc --version)" qemu_v="$(qemu-aarch64 --version | head -1)"
export secs_total=$((t_end - t_start)) secs_timing=$((t_timing - t_start)) secs_insn=$((t_end - t_timing))
export tract64_state="$TRACT_AARCH64" tract64_present="$([ -x "$TRACT64" ] && echo yes || echo no)"
"$PY" - <<'EOF'
import json, os

env = os.environ
rows = []
for line in open(env["index"]):
    rid, kind, load, cmd = line.rstrip("\n").split("\t")
    model, runtime, threads = rid.split("|")
    raw = json.load(open(os.path.join(env["work"], "raw", rid + ".json")))
    if kind == "qvit":
        lat = raw["latency_ms"]
        p50, mn, extra = lat["p50"], lat["min"], {"kernel_tier": raw["kernel_tier"],
                                                 "peak_rss_bytes": raw["peak_rss_bytes"]}
    elif kind == "ort":
        r = raw["run"]["results"][0]
        p50, mn = r["median_ms"], r["min_ms"]
        extra = {"onnxruntime": raw["onnxruntime_version"]}
    else:
        p50, mn, extra = raw["p50_ms"], raw["min_ms"], {}
    rows.append(dict(model=model, runtime=runtime, threads=int(threads), p50_ms=round(p50, 3),
                     min_ms=round(mn, 3), loadavg_before=load, command=cmd, **extra))

def find(model, runtime, t):
    return next((r for r in rows if r["model"] == model and r["runtime"] == runtime and r["threads"] == t), None)

for r in rows:
    q = find(r["model"], "qvit w8a8", r["threads"])
    r["peer_p50_over_qvit_w8a8_p50"] = round(r["p50_ms"] / q["p50_ms"], 3)
    r["peer_min_over_qvit_w8a8_min"] = round(r["min_ms"] / q["min_ms"], 3)

insn = []
for line in open(env["insn_rows"]):
    label, cpu, tier, i1, i2, d, secs, cmd = line.rstrip("\n").split("\t")
    insn.append(dict(runtime=label, qemu_cpu=cpu, kernel_tier=tier, insns_iters1=int(i1),
                     insns_iters2=int(i2), insns_per_inference=int(d), wall_s=int(secs), command=cmd))

quant_cmds = [l.strip() for l in open(env["quant_log"]) if l.strip()]
doc = dict(cpu=env["cpu_model"], date=env["date_utc"], commit=env["commit"], rustc=env["rustc_v"],
           iters=int(env["ITERS"]), warmup=int(env["WARMUP"]), script="scripts/bench-quantized.sh",
           script_seconds=int(env["secs_total"]), quantize_commands=quant_cmds, timings=rows,
           aarch64_insns=dict(model=env["INSN_MODEL"], qemu=env["qemu_v"], runs=insn))
with open(env["out_json"], "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")

names = {"deit_tiny": "DeiT-Tiny (seeded weights)", "vit_s14": "DINOv2 ViT-S/14"}

def rss_mb(r):
    # qvit-run reports its peak resident set (VmHWM); the peers' scripts do not.
    b = r.get("peak_rss_bytes")
    return f"{b / 1e6:.1f}" if b else "–"
tiers = sorted({r["kernel_tier"] for r in rows if "kernel_tier" in r})
L = []
L.append("# Quantized qvit vs onnxruntime and tract: x86_64 latency\n")
L.append(f"Generated by `scripts/bench-quantized.sh`. Machine: {env['cpu_model']} (2 logical CPUs), "
         f"date {env['date_utc']}, commit {env['commit']}, {env['rustc_v']}. qvit-run kernel tier: "
         f"{', '.join(tiers)}. onnxruntime {next(r['onnxruntime'] for r in rows if 'onnxruntime' in r)}; "
         "tract-onnx 0.23.9.\n")
L.append("The machine is shared with other workers' builds and jobs while this runs: the 1/5/15-minute load "
         "averages before each measurement are listed. Absolute times move with the load; ratios between "
         "measurements taken minutes apart carry that noise.\n")
L.append(f"Each row: {env['ITERS']} timed runs after {env['WARMUP']} warm-up runs on a fixed seeded random "
         "input of shape 1×3×224×224, batch 1. p50 = median run, min = fastest run (ms). "
         "Ratio = peer time / qvit W8A8 time at the same thread count (> 1: qvit W8A8 is faster). "
         "tract runs single-threaded, so it has a 1-thread row only. Peak RSS is qvit-run's own `VmHWM` "
         "(loading included; 1 MB = 10⁶ bytes).\n")
L.append("DeiT-Tiny is timm DeiT-Tiny (`models/fixtures/deit_tiny_op17.onnx`, weightless) with the seeded "
         "N(0, 0.02²) weights written by `scripts/ort-peer` (`target/ort-peer/deit_tiny_op17.synthweights.onnx`); "
         "all three runtimes run that same file. onnxruntime int8 QDQ = `target/ort-peer/*.qdq_minmax_pc.onnx` "
         "(static, MinMax calibration, per-channel int8 weights, uint8 activations). qvit bundles were calibrated on "
         "the first 16 images of `imagenet-sample` (sorted; `calib16` in the commands is a temporary folder of "
         "symlinks to them).\n")
for model in ["deit_tiny", "vit_s14"]:
    L.append(f"\n## {names[model]}\n")
    L.append("| runtime | threads | p50 ms | min ms | p50 ratio vs qvit W8A8 | min ratio vs qvit W8A8 | peak RSS MB | load avg before |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if r["model"] != model:
            continue
        L.append(f"| {r['runtime']} | {r['threads']} | {r['p50_ms']:.2f} | {r['min_ms']:.2f} | "
                 f"{r['peer_p50_over_qvit_w8a8_p50']:.2f} | {r['peer_min_over_qvit_w8a8_min']:.2f} | "
                 f"{rss_mb(r)} | {r['loadavg_before']} |")
L.append("\n## Commands\n")
L.append("Bundles:\n\n```sh")
L += quant_cmds
L.append("```\n\nMeasurements (in the order run):\n\n```sh")
L += [f"{r['command']}" for r in rows]
L.append("```\n")
L.append(f"Timing part of the script: {env['secs_timing']} s (including builds and quantization); whole script "
         f"{env['secs_total']} s.\n")
open(env["out_md"], "w").write("\n".join(L))

M = []
M.append("# qvit on aarch64: dynamic instructions per inference (qemu-user TCG plugin)\n")
M.append(f"Generated by `scripts/bench-quantized.sh` on {env['date_utc']} (host: {env['cpu_model']}), "
         f"commit {env['commit']}, {env['qemu_v']}, {env['rustc_v']}; release builds for "
         "aarch64-unknown-linux-gnu (generic aarch64, kernel tier chosen at run time).\n")
model_txt = {"deit_tiny": "DeiT-Tiny (seeded weights, same bundles as the x86_64 table; input 1×3×224×224)",
             "fashion_vit": "the default model fashion_vit (input 1×1×28×28)"}[env["INSN_MODEL"]]
M.append(f"Model: {model_txt}. Each program runs twice under `qemu-aarch64` with the plugin "
         "`scripts/qemu-insn/insn.c`: with `--iters 1 --warmup 0` and with `--iters 2 --warmup 0`; "
         "the difference is the instruction count of one (second, warm) inference, without loading, "
         "planning or first-run setup. qvit-run uses `--threads 1` (the plugin counts single-threaded guests). "
         "Counts do not depend on the host's load; between two runs of this script they differed by under "
         "0.01% for qvit-run and about 0.2% for tract (allocation and hashing paths). They are instruction "
         "counts, not cycles or time.\n")
M.append("| runtime | QEMU_CPU | kernel tier | insns, 1 inference run | insns, 2 inference run | insns per inference | insns / qvit W8A8 insns (same CPU) | qemu wall s (both runs) |")
M.append("|---|---|---|---:|---:|---:|---:|---:|")
for r in insn:
    q = next(x for x in insn if x["runtime"] == "qvit w8a8" and x["qemu_cpu"] == r["qemu_cpu"])
    M.append(f"| {r['runtime']} | {r['qemu_cpu']} | {r['kernel_tier']} | {r['insns_iters1']:,} | {r['insns_iters2']:,} | "
             f"{r['insns_per_inference']:,} | {r['insns_per_inference'] / q['insns_per_inference']:.2f} | {r['wall_s']} |")
if not any(r["runtime"].startswith("tract") for r in insn):
    M.append(f"\ntract f32 for aarch64: not measured (TRACT_AARCH64={env['tract64_state']}, "
             f"aarch64 tract_bench built: {env['tract64_present']}).\n")
M.append("\n## Commands\n\n```sh")
M += [r["command"] for r in insn]
M.append("```\n")
M.append(f"Instruction-count part of the script: {env['secs_insn']} s (including the aarch64 builds).\n")
open(env["insn_md"], "w").write("\n".join(M))
EOF
say "wrote $out_json, $out_md, $insn_md in $(($(date +%s) - t_start)) s"
